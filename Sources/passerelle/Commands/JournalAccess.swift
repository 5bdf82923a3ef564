import ArgumentParser
import Foundation
import Gateway
import Journal
import PasserelleCore

/// What `run`, `status`, `show` and `resend` share: the configuration and the journal.
enum JournalAccess {
    /// Loads the configuration or prints every problem and exits 1.
    static func configuration(_ global: GlobalOptions) throws -> PasserelleConfiguration {
        do {
            return try PasserelleConfiguration.load(from: global.configPath)
        } catch {
            printError("Configuration \(global.configPath) is invalid:")
            for problem in error.problems { printError("  \(problem)") }
            throw ExitCode.failure
        }
    }

    /// Opens the journal named by `[journal]`, or prints why not and exits 1.
    static func journal(_ c: PasserelleConfiguration) throws -> any JournalStore {
        do { return try Journals.open(c.journal) } catch {
            printError(error.description)
            throw ExitCode.failure
        }
    }

    /// The journal with its operator commands (both stores have them).
    static func operatorQueue(_ c: PasserelleConfiguration) throws -> any OperatorQueue {
        guard let queue = try journal(c) as? any OperatorQueue else {
            printError("this journal backend has no operator commands")
            throw ExitCode.failure
        }
        return queue
    }

    /// `--patient`: the INS (or - to read it from stdin, out of shell history and process
    /// lists), hashed with the journal's patient key; never printed or stored.
    static func patientKey(_ option: String, _ c: PasserelleConfiguration) throws -> String {
        var value = option
        if option == "-" { value = readLine(strippingNewline: true) ?? "" }
        value = value.trimmingCharacters(in: .whitespaces)
        guard value.count == 15, value.allSatisfy(\.isASCII) else {
            printError("--patient: an INS matricule has 15 characters (NIR or NIA)")
            throw ExitCode.failure
        }
        let secret: Data
        do { secret = try PatientKeySecret.load(GatewayService.patientKeyFile(c)) } catch {
            printError(error.description)
            throw ExitCode.failure
        }
        return PatientKey.derive(matricule: value, secret: secret)
    }

    // Human-facing times: ``QueueOutput/human(_:)`` ([report] time_zone, with the offset).

    /// "3 h 12 min" style age.
    static func age(since date: Date, now: Date = Date()) -> String {
        let s = Int(max(0, now.timeIntervalSince(date)))
        if s < 120 { return "\(s) s" }
        if s < 7200 { return "\(s / 60) min" }
        if s < 172_800 { return "\(s / 3600) h \(s % 3600 / 60) min" }
        return "\(s / 86_400) d \(s % 86_400 / 3600) h"
    }
}
