import Foundation
import Journal
import PasserelleCore

/// One indicator for one scope and period: the row of every output format.
public struct IndicatorLine: Sendable, Hashable, Codable {
    /// Whether a target is a floor (usage rates) or a ceiling (quality lines).
    public enum TargetKind: String, Sendable, Hashable, Codable {
        case minimum, maximum
    }

    /// `SUN-ES`, `HOP'EN` or `Qualité`.
    public var programme: String
    /// Stable code, e.g. `V1-D1-SEJ` (see docs/report.md).
    public var code: String
    /// French label, as shown to the ARS.
    public var label: String
    public var numerator: Int
    public var denominator: Int
    /// Percent, rounded to 0.1; nil when the denominator is 0.
    public var rate: Double?
    /// Target in percent, if one is configured.
    public var target: Int?
    public var targetKind: TargetKind
    /// Nil when there is no target or no denominator.
    public var reached: Bool?
    /// True for the line of each SUN-ES domain that uses the configured denominator.
    public var headline: Bool

    init(_ programme: String, _ code: String, _ label: String, _ numerator: Int, _ denominator: Int,
         settings: PasserelleConfiguration.Report, headline: Bool = false, targetKind: TargetKind = .minimum) {
        self.programme = programme
        self.code = code
        self.label = label
        self.numerator = numerator
        self.denominator = denominator
        rate = denominator == 0 ? nil : (Double(numerator) * 1000 / Double(denominator)).rounded() / 10
        self.targetKind = targetKind
        target = targetKind == .minimum ? settings.targets[code] : settings.thresholds[code]
        if let target, denominator > 0 {
            // Integer comparison: no rounding decides whether a target is reached.
            reached = targetKind == .minimum ? numerator * 100 >= target * denominator : numerator * 100 <= target * denominator
        }
        self.headline = headline
    }
}

/// What a numerator or a denominator counts: document sets with one of some measures
/// (optionally of some kinds, or refused with one code), or stays with a measure.
public enum Term: Sendable, Hashable {
    case sets([SetMeasure], kinds: [DocumentKind]? = nil, refusal: String? = nil)
    case stays(StayMeasure)

    /// The figure in a cell of counts. A set is in at most one of the measures summed
    /// (`produced` and `deleted` exclude each other), so the sum counts each set once.
    public func value(_ c: UsageCounts) -> Int {
        switch self {
        case let .sets(measures, kinds, refusal): measures.reduce(0) { $0 + c.value($1, kinds: kinds, refusal: refusal) }
        case let .stays(measure): c.value(measure)
        }
    }

    /// Whether a set row of the evidence counts in this term.
    public func includes(_ row: UsageEvidence.SetRow) -> Bool {
        guard case let .sets(measures, kinds, refusal) = self else { return false }
        return measures.contains(where: row.measures.contains) && (kinds?.contains(row.kind) ?? true)
            && (refusal == nil || row.refusalCode == refusal)
    }

    /// Whether a stay row of the evidence counts in this term.
    public func includes(_ row: UsageEvidence.StayRow) -> Bool {
        guard case let .stays(measure) = self else { return false }
        return row.measures.contains(measure)
    }
}

/// One indicator line's definition (see ``IndicatorCalculator/definitions(refusalCodes:settings:)``).
public struct LineDefinition: Sendable, Hashable {
    public var programme: String
    public var code: String
    public var label: String
    public var numerator: Term
    public var denominator: Term
    public var headline: Bool
    public var targetKind: IndicatorLine.TargetKind

    init(_ programme: String, _ code: String, _ label: String, _ numerator: Term, _ denominator: Term,
         headline: Bool = false, targetKind: IndicatorLine.TargetKind = .minimum) {
        self.programme = programme
        self.code = code
        self.label = label
        self.numerator = numerator
        self.denominator = denominator
        self.headline = headline
        self.targetKind = targetKind
    }
}

/// Documents of one kind: produced and sent to the DMP (the HTML bars).
public struct KindLine: Sendable, Hashable, Codable {
    /// Short name (`ldl`, `cr-bio`, …).
    public var kind: String
    public var loinc: String
    public var label: String
    /// The SUN-ES domain(s) the kind counts in, per the configuration (empty: none).
    public var domains: [String]
    public var produced: Int
    public var dmpAccepted: Int
}

/// The indicators of one scope: the whole structure (``finess`` nil) or one FINESS.
public struct ScopeReport: Sendable, Hashable, Codable {
    public var finess: String?
    public var lines: [IndicatorLine]
    public var kinds: [KindLine]
    /// Stays discharged in the period (also in the lines, repeated for readers).
    public var staysDischarged: Int
}

/// One month of the trend charts: the headline lines of the whole scope.
public struct TrendMonth: Sendable, Hashable, Codable {
    public var month: String
    public var lines: [IndicatorLine]
}

/// The usage report: the JSON format is this structure (docs/report.md).
public struct UsageReport: Sendable, Hashable, Codable {
    /// Bumped when a field changes meaning or disappears (additions keep it).
    /// 2: snake_case keys (1 had camelCase ones).
    public var formatVersion = 2
    public var title: String
    public var period: ReportPeriod
    public var generatedAt: Date
    /// FINESS the report is restricted to; empty for all.
    public var finessFilter: [String]
    /// The whole (selected) structure.
    public var total: ScopeReport
    /// One scope per FINESS with activity, when there are several.
    public var byFiness: [ScopeReport]
    /// Trailing months (oldest first), for the charts; may be empty.
    public var trend: [TrendMonth]
    /// Transmission delays of the period (added in format 2: additions keep the version).
    public var delays: DelayReport
    /// Service availability over the period (an addition too).
    public var availability: AvailabilityReport
}

/// Turns the journal's raw counts into indicator lines, following the configuration.
public enum IndicatorCalculator {
    static func domainLabel(_ domain: SUNESDomain) -> String {
        switch domain {
        case .d1: "Documents de sortie"
        case .d2: "CR de biologie"
        case .d3: "CR d'imagerie"
        }
    }

    /// Every line, in the report's order: volet 1, volet 2, HOP'EN, quality.
    public static func lines(_ c: UsageCounts, settings: PasserelleConfiguration.Report) -> [IndicatorLine] {
        definitions(refusalCodes: Array(c.dmpRefusals.keys), settings: settings).map { d in
            IndicatorLine(d.programme, d.code, d.label, d.numerator.value(c), d.denominator.value(c), settings: settings,
                          headline: d.headline, targetKind: d.targetKind)
        }
    }

    /// The one definition of every line: its numerator and denominator as measures of the
    /// journal. The report sums them (``lines(_:settings:)``), the evidence lists the rows
    /// behind them (``EvidencePackage``).
    public static func definitions(refusalCodes: [String], settings: PasserelleConfiguration.Report) -> [LineDefinition] {
        var lines: [LineDefinition] = []
        let produced = Term.sets([.produced])
        let stays = Term.stays(.discharged)
        for domain in SUNESDomain.allCases {
            let kinds = settings.domainKinds[domain] ?? []
            let accepted = Term.sets([.dmpAccepted], kinds: kinds)
            let headline = settings.denominators[domain] ?? .stays
            let name = domainLabel(domain)
            lines.append(LineDefinition("SUN-ES", "V1-\(domain.rawValue)-SEJ", "\(name) envoyés au DMP avec INS qualifiée, par séjour clos",
                                        accepted, stays, headline: headline == .stays))
            lines.append(LineDefinition("SUN-ES", "V1-\(domain.rawValue)-DOC", "\(name) envoyés au DMP avec INS qualifiée, par document produit",
                                        accepted, .sets([.produced], kinds: kinds), headline: headline == .documents))
        }
        for (code, who, sent, delivered, read) in [
            ("PAT", "aux patients (messagerie citoyenne)", SetMeasure.patientSent, SetMeasure.patientDelivered, SetMeasure.patientRead),
            ("PS", "aux professionnels", .professionalSent, .professionalDelivered, .professionalRead),
        ] {
            lines.append(LineDefinition("SUN-ES", "V2-\(code)", "Documents envoyés par MSSanté \(who), par document produit",
                                        .sets([sent]), produced))
            lines.append(LineDefinition("SUN-ES", "V2-\(code)-DSN", "Envois MSSanté \(who) remis (DSN)", .sets([delivered]), .sets([sent])))
            lines.append(LineDefinition("SUN-ES", "V2-\(code)-MDN", "Envois MSSanté \(who) lus (MDN)", .sets([read]), .sets([sent])))
        }
        lines.append(LineDefinition("HOP'EN", "HN-D2-LDL", "Séjours clos dont la lettre de liaison est dans le DMP",
                                    .stays(.withDischargeLetter), stays))
        let quality: [(String, String, Term, Term)] = [
            ("Q-INS", "Documents retenus : identité non qualifiée (pas d'envoi au DMP)", .sets([.unqualified]), produced),
            ("Q-REFUS-DMP", "Documents refusés par le DMP", .sets([.refused]), produced),
        ] + refusalCodes.sorted().map { code in
            ("Q-REFUS-DMP-\(code)", "Documents refusés par le DMP, code \(code)", Term.sets([.refused], refusal: code), produced)
        } + [
            ("Q-ECHEC-RETRY", "Échecs après épuisement des nouvelles tentatives", .sets([.failedAfterRetries]), produced),
            ("Q-ECHEC-DEF", "Échecs définitifs (hors refus DMP)", .sets([.failedPermanently]), produced),
            ("Q-ATTENTE", "Documents en attente d'envoi", .sets([.waiting]), produced),
            ("Q-ECARTE", "Documents écartés par un opérateur (hors échecs)", .sets([.discarded]), produced),
            ("Q-REMPL", "Documents remplacés (comptés une fois)", .sets([.replaced]), produced),
            ("Q-SUPPR", "Documents supprimés (comptés une fois, hors taux)", .sets([.deleted]), .sets([.produced, .deleted])),
        ]
        for (code, label, n, d) in quality {
            lines.append(LineDefinition("Qualité", code, label, n, d, targetKind: .maximum))
        }
        return lines
    }

    /// One line per known document kind, in catalogue order.
    public static func kindLines(_ c: UsageCounts, settings: PasserelleConfiguration.Report) -> [KindLine] {
        DocumentKind.allCases.map { kind in
            KindLine(kind: kind.shortName, loinc: kind.loincCode, label: kind.defaultTitle,
                     domains: SUNESDomain.allCases.filter { settings.domainKinds[$0]?.contains(kind) == true }.map(\.rawValue),
                     produced: c.kinds[kind]?.produced ?? 0, dmpAccepted: c.kinds[kind]?.dmpAccepted ?? 0)
        }
    }

    /// The lines drawn in the trend charts: each domain's headline, volet 2 sendings, HOP'EN.
    public static func isTrendLine(_ line: IndicatorLine) -> Bool {
        (line.code.hasPrefix("V1-") && line.headline) || line.code == "V2-PAT" || line.code == "V2-PS" || line.code == "HN-D2-LDL"
    }
}

/// Builds a ``UsageReport`` from a journal.
public enum UsageReporter {
    /// - Parameters:
    ///   - finess: FINESS to keep (empty: all).
    ///   - trendMonths: months of trend to compute (0: none; the HTML page wants 12).
    public static func make(store: any UsageCounting, period: ReportPeriod, finess: [String] = [],
                            settings: PasserelleConfiguration.Report, trendMonths: Int = 0, title: String = "Passerelle",
                            now: Date = Date()) async throws(ReportError) -> UsageReport {
        func query(_ boundaries: [Date]) -> UsageQuery {
            UsageQuery(boundaries: boundaries, finess: finess, qualifiedStatuses: settings.qualifiedStatuses,
                       dischargeLetterKinds: settings.dischargeLetterKinds)
        }
        let cells: [UsageCounts]
        do { cells = try await store.usageCounts(query([period.start, period.end])) } catch { throw .journal(error) }
        var total = UsageCounts(period: 0, finess: "")
        for cell in cells { total.add(cell) }
        func scope(_ c: UsageCounts, finess: String?) -> ScopeReport {
            ScopeReport(finess: finess, lines: IndicatorCalculator.lines(c, settings: settings),
                        kinds: IndicatorCalculator.kindLines(c, settings: settings), staysDischarged: c.staysDischarged)
        }
        let byFiness = cells.count > 1 ? cells.map { scope($0, finess: $0.finess) } : []

        var trend: [TrendMonth] = []
        if trendMonths > 0 {
            let months = try period.trailingMonths(trendMonths)
            let monthly: [UsageCounts]
            do { monthly = try await store.usageCounts(query(months.map(\.start) + [months.last!.end])) } catch { throw .journal(error) }
            trend = months.enumerated().map { index, month in
                var sum = UsageCounts(period: index, finess: "")
                for cell in monthly where cell.period == index { sum.add(cell) }
                return TrendMonth(month: month.label,
                                  lines: IndicatorCalculator.lines(sum, settings: settings).filter(IndicatorCalculator.isTrendLine))
            }
        }
        let samples: [DelaySample]
        do { samples = try await store.usageDelaySamples(query([period.start, period.end])) } catch { throw .journal(error) }
        let delays = DelayReport.make(samples, d1Kinds: settings.domainKinds[.d1] ?? [])
        let availability: AvailabilityReport
        do {
            let samples = try await store.availabilitySamples(from: period.start, until: period.end)
            // Whole days only: a period not over is measured up to the last local midnight, so
            // two reports of the same journal on the same day agree (the running day is not over).
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: period.timeZone) ?? .gmt
            availability = AvailabilityReport.make(runs: samples.runs, attempts: samples.attempts, from: period.start, until: period.end,
                                                   now: calendar.startOfDay(for: now))
        } catch { throw .journal(error) }
        return UsageReport(title: title, period: period, generatedAt: now, finessFilter: finess,
                           total: scope(total, finess: nil), byFiness: byFiness, trend: trend, delays: delays, availability: availability)
    }
}
