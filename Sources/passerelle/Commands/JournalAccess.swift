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

    /// `2026-11-23T10:15:00Z` style, UTC, for operators' terminals and scripts alike.
    static func stamp(_ date: Date?) -> String {
        guard let date else { return "-" }
        return Date.ISO8601FormatStyle().format(date)
    }

    /// "3 h 12 min" style age.
    static func age(since date: Date, now: Date = Date()) -> String {
        let s = Int(max(0, now.timeIntervalSince(date)))
        if s < 120 { return "\(s) s" }
        if s < 7200 { return "\(s / 60) min" }
        if s < 172_800 { return "\(s / 3600) h \(s % 3600 / 60) min" }
        return "\(s / 86_400) d \(s % 86_400 / 3600) h"
    }
}
