import PasserelleCore
import Signing

/// `config check`: the `[vihf]` section must make a valid VIHF when the DMP is enabled
/// (every DMP request carries one), and must be valid whenever it is present.
struct VIHFConfigurationCheck: ConfigurationCheck {
    let name = "vihf"
    let isPreflight = false

    func run(_ configuration: PasserelleConfiguration) async -> [CheckFinding] {
        guard let section = configuration.vihf else {
            guard configuration.dmp.enabled else { return [] }
            return [CheckFinding(severity: .error, message: """
                \(configuration.file): [vihf] is missing; the DMP is enabled and every DMP request carries a VIHF \
                (see docs/passerelle.example.toml)
                """)]
        }
        do {
            let vihf = try VIHFConfiguration(keys: section.values)
            return [CheckFinding(severity: .ok, message: "\(vihf.lpsName) \(vihf.lpsVersion), structure \(vihf.structureIdentifier), \(vihf.secteurActivite)")]
        } catch {
            guard case .configuration(let key, let message) = error else {
                return [CheckFinding(severity: .error, message: "\(configuration.file): [vihf]: \(error)")]
            }
            let line = section.lines[key] ?? section.line
            return [CheckFinding(severity: .error, message: "\(configuration.file):\(line): vihf.\(key): \(message)")]
        }
    }
}
