import Foundation

extension PasserelleConfiguration {
    /// `[report]`, `[report.targets]` and `[report.thresholds]`: how `passerelle report` counts.
    ///
    /// The official SUN-ES formulas and thresholds changed from one window to the next, so which
    /// kinds count in which domain, the denominator and every target are data, not code. Every
    /// key is optional; ``default`` holds the values used when the file says nothing.
    public struct Report: Sendable, Hashable {
        /// What a SUN-ES volet 1 rate is divided by in its headline line.
        public enum Denominator: String, Sendable, Hashable, CaseIterable, Codable {
            /// Stays discharged in the period (from ADT / PV1).
            case stays
            /// Documents of the domain received by the gateway in the period.
            case documents
        }

        /// Month boundaries are midnight in this zone (IANA identifier).
        public var timeZone: String
        /// Kinds counted in each SUN-ES volet 1 domain.
        public var domainKinds: [SUNESDomain: [DocumentKind]]
        /// The denominator of each domain's headline line.
        public var denominators: [SUNESDomain: Denominator]
        /// Kinds that count as the discharge letter in `HN-D2-LDL`.
        public var dischargeLetterKinds: [DocumentKind]
        /// Identity statuses counted as "INS qualifiée".
        public var qualifiedStatuses: [String]
        /// Minimum rates in percent, by indicator code (reached when rate ≥ target).
        public var targets: [String: Int]
        /// Maximum rates in percent for the quality lines, by code (reached when rate ≤ threshold).
        public var thresholds: [String: Int]

        /// Every indicator code the report computes (and the only keys allowed in
        /// `[report.targets]` and `[report.thresholds]`). Refusal lines by error code
        /// (`Q-REFUS-DMP-<code>`) are details of `Q-REFUS-DMP` and have no target.
        public static let indicatorCodes = [
            "V1-D1-SEJ", "V1-D1-DOC", "V1-D2-SEJ", "V1-D2-DOC", "V1-D3-SEJ", "V1-D3-DOC",
            "V2-PAT", "V2-PAT-DSN", "V2-PAT-MDN", "V2-PS", "V2-PS-DSN", "V2-PS-MDN",
            "HN-D2-LDL",
            "Q-INS", "Q-REFUS-DMP", "Q-ECHEC-RETRY", "Q-ECHEC-DEF", "Q-ATTENTE", "Q-ECARTE", "Q-REMPL", "Q-SUPPR",
        ]

        /// The built-in definitions. The percentages are working values, not the official
        /// SUN-ES thresholds (which depend on the window): set yours in `[report.targets]`.
        public static let `default` = Report(
            timeZone: "Europe/Paris",
            domainKinds: [.d1: [.dischargeLetter, .prescription, .operativeReport], .d2: [.biologyReport], .d3: [.imagingReport]],
            denominators: [.d1: .stays, .d2: .documents, .d3: .documents],
            dischargeLetterKinds: [.dischargeLetter],
            qualifiedStatuses: [IdentityStatus.qualified.rawValue],
            targets: ["V1-D1-SEJ": 50, "V1-D2-DOC": 80, "V1-D3-DOC": 80, "V2-PAT": 10, "V2-PS-DSN": 95, "V2-PAT-DSN": 95,
                      "HN-D2-LDL": 80],
            thresholds: ["Q-INS": 10, "Q-REFUS-DMP": 2, "Q-ECHEC-RETRY": 1, "Q-ECHEC-DEF": 1])

        public init(timeZone: String, domainKinds: [SUNESDomain: [DocumentKind]], denominators: [SUNESDomain: Denominator],
                    dischargeLetterKinds: [DocumentKind], qualifiedStatuses: [String], targets: [String: Int],
                    thresholds: [String: Int]) {
            self.timeZone = timeZone
            self.domainKinds = domainKinds
            self.denominators = denominators
            self.dischargeLetterKinds = dischargeLetterKinds
            self.qualifiedStatuses = qualifiedStatuses
            self.targets = targets
            self.thresholds = thresholds
        }
    }
}
