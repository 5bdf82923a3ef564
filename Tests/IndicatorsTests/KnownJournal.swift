import Foundation
import Journal
import PasserelleCore
import TestSupport

/// A journal whose content is known line by line, built through the ``JournalStore`` API as
/// the gateway would (accept → build → enqueue → claim → complete → acknowledge).
///
/// October 2026, Europe/Paris. FINESS A = 750712184, B = 920000650.
/// Stays discharged in October: A: S1 (31 Oct 23:30 +01:00), S2 (1 Oct 00:30 +02:00, i.e.
/// 30 Sep in UTC), S3 (no document), S4; B: S5, S6 (no document). Outside: S0 (30 Sep 23:30
/// +02:00), S9 (1 Nov 00:30 +01:00, i.e. 31 Oct in UTC).
/// Document sets first received in October (A unless noted):
/// - ldl-1 LDL (S1), replaced twice, DMP accepted each time, to the patient: delivered and read
/// - ldl-2 LDL (S4), DMP accepted, then deleted
/// - cro-3 CRO (S2), DMP accepted, to a professional: delivered
/// - ord-4 prescription without stay, DMP accepted, to a professional: sent
/// - ldl-5 LDL (S2), identity PROV: held back, never queued
/// - bio-6 biology, refused by the DMP (XDSPatientIdDoesNotMatch)
/// - img-7 imaging, DMP network failures until the retries ran out
/// - img-9 imaging, received 1 Oct 00:10 +02:00 (30 Sep in UTC), DMP accepted
/// - bio-8 biology, DMP transmission still queued
/// - B: ldl-12 LDL (S5), DMP accepted, patient sent, professional refused for good (SMTP 550)
/// Outside October: ldl-11 (30 Sep 23:50 +02:00, S0) and ldl-10 (1 Nov 00:10 +01:00 = 31 Oct
/// 23:10 UTC, S9), both DMP accepted.
struct KnownJournal {
    static let a = "750712184"
    static let b = "920000650"
    static let refusalCode = "XDSPatientIdDoesNotMatch"

    let folder: URL
    let path: String
    var store: any JournalStore
    /// The database's URL (PostgreSQL; no password in it).
    var postgresURL: String?

    static func date(_ iso: String) -> Date {
        let f = ISO8601DateFormatter()
        return f.date(from: iso)!
    }

    /// On SQLite by default; `postgresql: true` builds the same journal in a fresh database of
    /// the test PostgreSQL server (the aggregates must agree on both backends).
    init(postgresql: Bool = false) async throws {
        folder = try TestPaths.temporaryDirectory("indicators")
        path = folder.appendingPathComponent("journal.sqlite").path
        // Two attempts, then a transient failure is final.
        let policy = RetryPolicy(initialDelay: 1, multiplier: 1, maxDelay: 1, jitter: 0, maxAttempts: 2, deadline: 3600)
        let created = Self.date("2026-09-01T00:00:00Z")
        if postgresql {
            let url = try PostgresTestServer.createDatabase(prefix: "indicators")
            postgresURL = url
            store = try PostgresJournalStore(configuration: PostgresTestServer.configuration(url),
                                             cache: folder.appendingPathComponent("blobs"), policy: policy, random: { 0 }, now: created)
        } else {
            store = try SQLiteJournalStore(path: path, blobs: BlobStore(root: folder.appendingPathComponent("blobs")), policy: policy,
                                           random: { 0 }, now: created)
        }
        try await build()
    }

    func stay(_ id: String, _ finess: String, _ discharged: String) async throws {
        try await store.recordStay(JournalStay(stayID: id, finess: finess, admittedAt: Self.date(discharged).addingTimeInterval(-86400 * 3),
                                               dischargedAt: Self.date(discharged)), now: Self.date(discharged))
    }

    enum Step { case ok(TransmissionState, [AcknowledgementKind]), fail(FailureCause), exhaust }

    /// Accepts one document row, then (unless `targets` is empty) builds, queues and runs its transmissions.
    func document(_ setID: String, version: Int = 1, action: DocumentAction = .new, kind: DocumentKind, finess: String = a,
                  stay: String?, status: String = "QUAL", at iso: String, targets: [(Destination, Step)] = [],
                  queueOnly: Bool = false) async throws {
        let now = Self.date(iso)
        let id = version == 1 ? setID : "\(setID).v\(version)"
        let doc = JournalDocument(id: id, setID: setID, version: version, kind: kind, maskedINS: "2**********89",
                                  patientKey: "pk-\(setID)", identityStatus: status, finess: finess, stayID: stay,
                                  receivedAt: now, action: action)
        let result = try await store.accept(doc, content: Data("\(id)".utf8), input: nil,
                                            stay: stay.map { JournalStay(stayID: $0, finess: finess) }, now: now)
        guard case .accepted = result else { throw KnownJournalError.notAccepted(id) }
        guard !targets.isEmpty else { return }
        _ = try await store.markBuilt(documentID: id, version: version, built: Data("<cda>\(id)</cda>".utf8), now: now)
        _ = try await store.enqueue(documentID: id, version: version, targets: targets.map(\.0), now: now)
        if queueOnly { return }
        for (target, step) in targets {
            var t = now.addingTimeInterval(1)
            guard let claim = try await store.claimNext(target: target, now: t, lease: 60, owner: "test") else {
                throw KnownJournalError.nothingToClaim(id)
            }
            guard claim.document.id == id else { throw KnownJournalError.wrongClaim(id, claim.document.id) }
            switch step {
            case .ok(let state, let acks):
                _ = try await store.complete(claim, owner: "test", outcome: .success(state: state), now: t)
                for ack in acks {
                    t = t.addingTimeInterval(60)
                    _ = try await store.acknowledge(transmissionID: claim.transmission.id, kind: ack, detail: nil, now: t)
                }
            case .fail(let cause):
                _ = try await store.complete(claim, owner: "test", outcome: .failure(cause), now: t)
            case .exhaust:
                _ = try await store.complete(claim, owner: "test", outcome: .failure(.network("connection reset")), now: t)
                t = t.addingTimeInterval(5)
                guard let again = try await store.claimNext(target: target, now: t, lease: 60, owner: "test") else {
                    throw KnownJournalError.nothingToClaim(id)
                }
                let r = try await store.complete(again, owner: "test", outcome: .failure(.network("connection reset")), now: t)
                guard r.state == .failed else { throw KnownJournalError.notFailed(id) }
            }
        }
    }

    func build() async throws {
        let a = Self.a, b = Self.b
        try await stay("S0", a, "2026-09-30T23:30:00+02:00")
        try await stay("S1", a, "2026-10-31T23:30:00+01:00")
        try await stay("S2", a, "2026-10-01T00:30:00+02:00")
        try await stay("S3", a, "2026-10-15T11:00:00+02:00")
        try await stay("S4", a, "2026-10-10T10:00:00+02:00")
        try await stay("S5", b, "2026-10-20T10:00:00+02:00")
        try await stay("S6", b, "2026-10-21T10:00:00+02:00")
        try await stay("S9", a, "2026-11-01T00:30:00+01:00")

        let dmpOK: (Destination, Step) = (.dmp, .ok(.acknowledged, []))
        try await document("ldl-1", kind: .dischargeLetter, stay: "S1", at: "2026-10-02T09:00:00+02:00",
                           targets: [dmpOK, (.mssantePatient, .ok(.sent, [.delivered, .read]))])
        try await document("ldl-1", version: 2, action: .replace, kind: .dischargeLetter, stay: "S1", at: "2026-10-03T09:00:00+02:00",
                           targets: [dmpOK])
        try await document("ldl-1", version: 3, action: .replace, kind: .dischargeLetter, stay: "S1", at: "2026-10-04T09:00:00+02:00",
                           targets: [dmpOK])
        try await document("ldl-2", kind: .dischargeLetter, stay: "S4", at: "2026-10-05T09:00:00+02:00", targets: [dmpOK])
        try await document("ldl-2", version: 2, action: .delete, kind: .dischargeLetter, stay: "S4", at: "2026-10-06T09:00:00+02:00")
        try await document("cro-3", kind: .operativeReport, stay: "S2", at: "2026-10-07T09:00:00+02:00",
                           targets: [dmpOK, (.mssantePS, .ok(.sent, [.delivered]))])
        try await document("ord-4", kind: .prescription, stay: nil, at: "2026-10-08T09:00:00+02:00",
                           targets: [dmpOK, (.mssantePS, .ok(.sent, []))])
        try await document("ldl-5", kind: .dischargeLetter, stay: "S2", status: "PROV", at: "2026-10-09T09:00:00+02:00")
        try await document("bio-6", kind: .biologyReport, stay: nil, at: "2026-10-10T09:00:00+02:00",
                           targets: [(.dmp, .fail(.dmpBusinessRefusal(code: Self.refusalCode, "patient id mismatch")))])
        try await document("img-7", kind: .imagingReport, stay: nil, at: "2026-10-11T09:00:00+02:00", targets: [(.dmp, .exhaust)])
        try await document("img-9", kind: .imagingReport, stay: nil, at: "2026-10-01T00:10:00+02:00", targets: [dmpOK])
        try await document("ldl-12", kind: .dischargeLetter, finess: b, stay: "S5", at: "2026-10-20T12:00:00+02:00",
                           targets: [dmpOK, (.mssantePatient, .ok(.sent, [])),
                                     (.mssantePS, .fail(.smtpPermanent(code: 550, "mailbox unknown")))])
        try await document("ldl-11", kind: .dischargeLetter, stay: "S0", at: "2026-09-30T23:50:00+02:00", targets: [dmpOK])
        try await document("ldl-10", kind: .dischargeLetter, stay: "S9", at: "2026-11-01T00:10:00+01:00", targets: [dmpOK])
        // Last, so that no other claim picks it up: it stays queued.
        try await document("bio-8", kind: .biologyReport, stay: nil, at: "2026-10-12T09:00:00+02:00", targets: [(.dmp, .exhaust)],
                           queueOnly: true)
    }
}

enum KnownJournalError: Error { case notAccepted(String), nothingToClaim(String), wrongClaim(String, String), notFailed(String) }
