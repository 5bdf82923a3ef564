import Foundation
import Journal
import PasserelleCore

/// Median, 90th percentile and shares within one and seven days of a set of delays.
public struct DelayStats: Sendable, Hashable, Codable {
    /// Delays measured.
    public var count: Int
    /// Nearest-rank median and 90th percentile, in hours rounded to 0.1; nil without delays.
    public var medianHours: Double?
    public var p90Hours: Double?
    /// Delays of at most 24 h / 7 days.
    public var withinOneDay: Int
    public var withinSevenDays: Int
    /// Their shares in percent (0.1); nil without delays.
    public var withinOneDayRate: Double?
    public var withinSevenDaysRate: Double?

    public init(seconds: [Double]) {
        let sorted = seconds.map { max($0, 0) }.sorted()
        count = sorted.count
        func rank(_ p: Double) -> Double? {
            guard !sorted.isEmpty else { return nil }
            let index = max(Int((p * Double(sorted.count)).rounded(.up)) - 1, 0)
            return (sorted[index] / 360).rounded() / 10
        }
        medianHours = rank(0.5)
        p90Hours = rank(0.9)
        withinOneDay = sorted.prefix { $0 <= 86_400 }.count
        withinSevenDays = sorted.prefix { $0 <= 7 * 86_400 }.count
        let rate = { (n: Int) in sorted.isEmpty ? nil : (Double(n) * 1000 / Double(sorted.count)).rounded() / 10 }
        withinOneDayRate = rate(withinOneDay)
        withinSevenDaysRate = rate(withinSevenDays)
    }

    // Explicit nulls keep the JSON shape stable.
    public func encode(to encoder: any Encoder) throws {
        enum Keys: String, CodingKey {
            case count, medianHours, p90Hours, withinOneDay, withinSevenDays, withinOneDayRate, withinSevenDaysRate
        }
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(count, forKey: .count)
        try c.encode(medianHours, forKey: .medianHours)
        try c.encode(p90Hours, forKey: .p90Hours)
        try c.encode(withinOneDay, forKey: .withinOneDay)
        try c.encode(withinSevenDays, forKey: .withinSevenDays)
        try c.encode(withinOneDayRate, forKey: .withinOneDayRate)
        try c.encode(withinSevenDaysRate, forKey: .withinSevenDaysRate)
    }
}

/// Delays of one group: all (every key nil), one kind, one kind in one FINESS, one target.
public struct DelayLine: Sendable, Hashable, Codable {
    public var kind: String?
    public var finess: String?
    public var target: String?
    public var stats: DelayStats

    public func encode(to encoder: any Encoder) throws {
        enum Keys: String, CodingKey { case kind, finess, target, stats }
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(kind, forKey: .kind)
        try c.encode(finess, forKey: .finess)
        try c.encode(target, forKey: .target)
        try c.encode(stats, forKey: .stats)
    }

    /// `ldl · 750712184`, `dmp`, `toutes` (human formats).
    var scope: String { [kind, finess, target].compactMap { $0 }.joined(separator: " · ").nonEmpty ?? "ensemble" }
}

/// The transmission delays of the report's period (same documents as the indicator lines).
public struct DelayReport: Sendable, Hashable, Codable {
    /// D1 documents: stay discharge → first registration in the DMP under a qualified INS, per
    /// set; the whole first, then per kind, then per kind and FINESS.
    public var dischargeToDmp: [DelayLine]
    /// Every successful transmission: reception of the version → its success (DMP registration,
    /// SMTP relay acceptance); all targets first, then per target.
    public var receptionToAcknowledgement: [DelayLine]

    public init(dischargeToDmp: [DelayLine] = [], receptionToAcknowledgement: [DelayLine] = []) {
        self.dischargeToDmp = dischargeToDmp
        self.receptionToAcknowledgement = receptionToAcknowledgement
    }

    /// From the journal's samples; `d1Kinds` are the kinds of the D1 domain.
    public static func make(_ samples: [DelaySample], d1Kinds: [DocumentKind]) -> DelayReport {
        // D1: per set, the first qualified DMP registration against its stay's discharge.
        var firstAck: [String: DelaySample] = [:]
        for s in samples where s.target == .dmp && s.qualified && d1Kinds.contains(s.kind) && s.dischargedAt != nil {
            if let known = firstAck[s.setID], known.acknowledgedAt <= s.acknowledgedAt { continue }
            firstAck[s.setID] = s
        }
        let d1 = firstAck.values.map { (kind: $0.kind.shortName, finess: $0.finess, seconds: $0.acknowledgedAt.timeIntervalSince($0.dischargedAt!)) }
        var discharge = [DelayLine(kind: nil, finess: nil, target: nil, stats: DelayStats(seconds: d1.map(\.seconds)))]
        for kind in Set(d1.map(\.kind)).sorted() {
            let ofKind = d1.filter { $0.kind == kind }
            discharge.append(DelayLine(kind: kind, finess: nil, target: nil, stats: DelayStats(seconds: ofKind.map(\.seconds))))
            for finess in Set(ofKind.map(\.finess)).sorted() {
                discharge.append(DelayLine(kind: kind, finess: finess, target: nil,
                                           stats: DelayStats(seconds: ofKind.filter { $0.finess == finess }.map(\.seconds))))
            }
        }
        let all = samples.map { (target: $0.target.rawValue, seconds: $0.acknowledgedAt.timeIntervalSince($0.receivedAt)) }
        var reception = [DelayLine(kind: nil, finess: nil, target: nil, stats: DelayStats(seconds: all.map(\.seconds)))]
        for target in Destination.allCases.map(\.rawValue) where all.contains(where: { $0.target == target }) {
            reception.append(DelayLine(kind: nil, finess: nil, target: target,
                                       stats: DelayStats(seconds: all.filter { $0.target == target }.map(\.seconds))))
        }
        return DelayReport(dischargeToDmp: discharge, receptionToAcknowledgement: reception)
    }
}

extension DelayStats {
    /// `5,2 h` below two days, `3,4 j` above; `—` without delays.
    static func duration(_ hours: Double?) -> String {
        guard let hours else { return "—" }
        let text = hours < 48 ? String(format: "%.1f h", hours) : String(format: "%.1f j", hours / 24)
        return text.replacingOccurrences(of: ".", with: ",")
    }

    static func percent(_ rate: Double?) -> String {
        rate.map { String(format: "%.1f %%", $0).replacingOccurrences(of: ".", with: ",") } ?? "—"
    }

    /// The human columns: count, median, p90, ≤ 1 day, ≤ 7 days.
    var cells: [String] {
        [String(count), Self.duration(medianHours), Self.duration(p90Hours), Self.percent(withinOneDayRate), Self.percent(withinSevenDaysRate)]
    }
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}
