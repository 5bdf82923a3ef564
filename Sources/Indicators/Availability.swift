import Foundation
import Journal
import PasserelleCore

/// One target's reachability over the period, from the attempts: an outage runs from the start
/// of a transient failure (network, timeout, HTTP 5xx, SMTP 4xx…) to the end of the last
/// transient failure before the target answered again (a success or a definitive answer such
/// as a refusal). That is what the journal proves: a lower bound, short of the truth by at
/// most one retry interval per outage (nobody tried in between).
public struct TargetAvailability: Sendable, Hashable, Codable {
    public var target: String
    /// Attempts ended in the period.
    public var attempts: Int
    public var outages: Int
    /// Time unreachable within the period, in seconds.
    public var unreachableSeconds: Int
    public var longestOutageSeconds: Int
    /// Start of the longest outage (nil without outage).
    public var longestOutageStart: Date?
    /// True when the last attempt of the period still failed: the outage goes on.
    public var ongoing: Bool

    public func encode(to encoder: any Encoder) throws {
        enum Keys: String, CodingKey {
            case target, attempts, outages, unreachableSeconds, longestOutageSeconds, longestOutageStart, ongoing
        }
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(target, forKey: .target)
        try c.encode(attempts, forKey: .attempts)
        try c.encode(outages, forKey: .outages)
        try c.encode(unreachableSeconds, forKey: .unreachableSeconds)
        try c.encode(longestOutageSeconds, forKey: .longestOutageSeconds)
        try c.encode(longestOutageStart, forKey: .longestOutageStart)
        try c.encode(ongoing, forKey: .ongoing)
    }
}

/// Service availability for the period (HOP'EN prerequisite "disponibilité").
public struct AvailabilityReport: Sendable, Hashable, Codable {
    /// Seconds of the period elapsed when the report was made, in whole days (up to the last
    /// local midnight; the whole period once it is over).
    public var periodSeconds: Int
    /// Seconds during which at least one `passerelle run` was up (union of the runs).
    public var runningSeconds: Int
    /// Percent (0.1); nil when no run was recorded (a journal from before schema version 6).
    public var runningRate: Double?
    /// Runs that overlap the period.
    public var runs: Int
    public var targets: [TargetAvailability]

    public init(periodSeconds: Int = 0, runningSeconds: Int = 0, runningRate: Double? = nil, runs: Int = 0, targets: [TargetAvailability] = []) {
        self.periodSeconds = periodSeconds
        self.runningSeconds = runningSeconds
        self.runningRate = runningRate
        self.runs = runs
        self.targets = targets
    }

    public func encode(to encoder: any Encoder) throws {
        enum Keys: String, CodingKey { case periodSeconds, runningSeconds, runningRate, runs, targets }
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(periodSeconds, forKey: .periodSeconds)
        try c.encode(runningSeconds, forKey: .runningSeconds)
        try c.encode(runningRate, forKey: .runningRate)
        try c.encode(runs, forKey: .runs)
        try c.encode(targets, forKey: .targets)
    }

    public static func make(runs: [ServiceRun], attempts: [AttemptSample], from: Date, until: Date, now: Date) -> AvailabilityReport {
        let end = min(until, max(now, from))
        let period = end.timeIntervalSince(from)
        // Union of the runs clipped to the period (several nodes may run at once).
        var running = 0.0, cursor = from
        for run in runs.sorted(by: { $0.startedAt < $1.startedAt }) {
            let start = max(run.startedAt, cursor), stop = min(run.endedAt, end)
            if stop > start { running += stop.timeIntervalSince(start); cursor = stop }
        }
        var targets: [TargetAvailability] = []
        for target in Destination.allCases {
            let mine = attempts.filter { $0.target == target && $0.outcome != "interrupted" }
            guard !mine.isEmpty else { continue }
            var outages: [(Date, Date)] = [], down: Date?, lastFailure: Date?
            for a in mine {
                if a.outcome == "transient" {
                    if down == nil { down = a.startedAt }
                    lastFailure = a.endedAt
                } else if let since = down, let last = lastFailure {
                    outages.append((since, last))
                    down = nil
                }
            }
            let ongoing = down != nil
            if let since = down, let last = lastFailure { outages.append((since, last)) }
            let clipped = outages.map { (max($0.0, from), min($0.1, end)) }.filter { $0.1 > $0.0 }
            let longest = clipped.max { $0.1.timeIntervalSince($0.0) < $1.1.timeIntervalSince($1.0) }
            targets.append(TargetAvailability(
                target: target.rawValue, attempts: mine.filter { $0.endedAt >= from && $0.endedAt < end }.count, outages: clipped.count,
                unreachableSeconds: Int(clipped.reduce(0) { $0 + $1.1.timeIntervalSince($1.0) }.rounded()),
                longestOutageSeconds: Int((longest.map { $0.1.timeIntervalSince($0.0) } ?? 0).rounded()), longestOutageStart: longest?.0,
                ongoing: ongoing))
        }
        return AvailabilityReport(periodSeconds: Int(period.rounded()), runningSeconds: Int(running.rounded()),
                                  runningRate: runs.isEmpty || period <= 0 ? nil : (running * 1000 / period).rounded() / 10,
                                  runs: runs.count, targets: targets)
    }

    /// `3 h 05 min`, `2 j 4 h`, `45 s`.
    static func duration(_ seconds: Int) -> String {
        if seconds < 60 { return "\(seconds) s" }
        let minutes = seconds / 60
        if minutes < 60 { return "\(minutes) min" }
        if minutes < 48 * 60 { return String(format: "%d h %02d min", minutes / 60, minutes % 60) }
        return "\(minutes / 1440) j \(minutes % 1440 / 60) h"
    }

    /// Title and rows of the human formats.
    func rows(timeZone: String) -> [[String]] {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: timeZone)
        var rows = [["Élément", "Disponible", "Indisponible", "Interruptions", "Plus longue", "Tentatives"]]
        rows.append(["Passerelle (passerelle run)",
                     runningRate.map { "\(Self.duration(runningSeconds)) (\(String(format: "%.1f", $0).replacingOccurrences(of: ".", with: ",")) %)" }
                        ?? "non enregistré",
                     runningRate == nil ? "—" : Self.duration(max(periodSeconds - runningSeconds, 0)), "", "", ""])
        for t in targets {
            let longest = t.longestOutageStart.map { "\(Self.duration(t.longestOutageSeconds)) dès \(formatter.string(from: $0))" } ?? "—"
            rows.append(["Cible \(t.target)", "", Self.duration(t.unreachableSeconds) + (t.ongoing ? " (en cours)" : ""),
                         String(t.outages), longest, String(t.attempts)])
        }
        return rows
    }
}
