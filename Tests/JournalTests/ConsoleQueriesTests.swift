import Foundation
@testable import Journal
import PasserelleCore
import Testing
import TestSupport

/// What the console's pages read, on real SQLite and PostgreSQL: the queue's filters with
/// keyset paging, one document's history, the activity per hour.
@Suite("journal: console queries (queue filters, document history, hourly activity)")
struct ConsoleQueriesTests {
    static let t0 = JournalFixture.t0

    @Test("the queue filters by kind and pages by id after the last one shown", arguments: JournalBackend.allCases)
    func kindAndKeysetPaging(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        // Created out of id order: paging follows ids, not creation times.
        for n in 1...7 {
            try await f.queued(n, targets: [.dmp, .mssantePS], at: Self.t0.plus(Double(100 - n)), kind: n % 3 == 0 ? .biologyReport : .dischargeLetter)
        }
        let all = try await f.store.transmissions(matching: TransmissionFilter(order: .id))
        #expect(all.count == 14 && all.map(\.id) == all.map(\.id).sorted())

        var seen: [Int64] = []
        var after: Int64?
        repeat {
            let page = try await f.store.transmissions(matching: TransmissionFilter(afterID: after, order: .id, limit: 4))
            #expect(page.count <= 4)
            seen += page.map(\.id)
            after = page.count == 4 ? page.last?.id : nil
        } while after != nil
        #expect(seen == all.map(\.id), "every row once, in id order")

        let biology = try await f.store.transmissions(matching: TransmissionFilter(target: .dmp, kind: .biologyReport, order: .id))
        #expect(biology.map(\.documentID) == ["1.2.250.1.999.1.3", "1.2.250.1.999.1.6"])
        let afterFirst = try await f.store.transmissions(matching: TransmissionFilter(kind: .biologyReport, afterID: biology[0].id, order: .id))
        #expect(afterFirst.count == 3 && afterFirst.allSatisfy { $0.id > biology[0].id })
        #expect(try await f.store.transmissions(matching: TransmissionFilter(kind: .imagingReport)).isEmpty)
        // Combined with state, target and dates, as the page sends them.
        let window = try await f.store.transmissions(matching: TransmissionFilter(target: .mssantePS, states: [.queued], kind: .dischargeLetter,
                                                                                  from: Self.t0.plus(94), until: Self.t0.plus(98), order: .id))
        #expect(window.map(\.documentID) == ["1.2.250.1.999.1.4", "1.2.250.1.999.1.5"])
        #expect(TransmissionFilter(kind: .biologyReport, afterID: 9).selectionText == "kind=cr-bio after=9")
    }

    @Test("a document's history: versions, transmissions, attempts, acknowledgements, operator actions", arguments: JournalBackend.allCases)
    func documentHistory(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        let q = try #require(f.store as? any OperatorQueue)
        try await f.queued(1, targets: [.dmp, .mssantePS])
        try await f.queued(2)
        #expect(try await f.store.documentHistory(id: "1.2.250.1.999.1.404") == nil)

        let claim = try #require(try await f.store.claimNext(target: .dmp, now: Self.t0.plus(1), lease: 60, owner: "w"))
        #expect(claim.transmission.documentID == "1.2.250.1.999.1.1")
        _ = try await f.store.complete(claim, owner: "w", outcome: .failure(.permanent("refused")), now: Self.t0.plus(2))
        let mail = try #require(try await f.store.claimNext(target: .mssantePS, now: Self.t0.plus(3), lease: 60, owner: "w"))
        _ = try await f.store.complete(mail, owner: "w", outcome: .success(), now: Self.t0.plus(4))
        _ = try await f.store.acknowledge(transmissionID: mail.transmission.id, kind: .delivered, detail: "DSN", now: Self.t0.plus(5))
        let resend = try await q.resend(TransmissionFilter(transmissionIDs: [claim.transmission.id]), includingSucceeded: false,
                                        OperatorRequest(user: "console: alice", selection: "id"), now: Self.t0.plus(6))

        let history = try #require(try await f.store.documentHistory(id: "1.2.250.1.999.1.1"))
        #expect(history.versions.map(\.document.version) == [1])
        #expect(history.versions[0].document.maskedINS == "2**********89")
        let entries = history.versions[0].transmissions
        #expect(entries.map(\.transmission.target) == [.dmp, .mssantePS])
        #expect(entries[0].attempts.map(\.outcome) == ["permanent"])
        #expect(entries[0].operatorActions == [try #require(resend.action)])
        #expect(entries[0].transmission.state == .queued)
        #expect(entries[1].acknowledgements.map(\.kind) == [.delivered] && entries[1].operatorActions.isEmpty)
        #expect(try await f.store.documentVersions(id: "1.2.250.1.999.1.2").map(\.id) == ["1.2.250.1.999.1.2"])
    }

    @Test("documents in and acknowledged per hour, in both dialects", arguments: JournalBackend.allCases)
    func hourlyActivity(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        let hour = 3600.0
        let base = Date(timeIntervalSince1970: (Self.t0.timeIntervalSince1970 / hour).rounded(.down) * hour)
        // Two documents in the first hour, one in the third; the first two go to the DMP.
        try await f.queued(1, targets: [.dmp], at: base.plus(10))
        try await f.queued(2, targets: [.dmp], at: base.plus(20))
        try await f.queued(3, targets: [.mssantePS], at: base.plus(2 * hour + 5))
        let first = try #require(try await f.store.claimNext(target: .dmp, now: base.plus(30), lease: 60, owner: "w"))
        _ = try await f.store.complete(first, owner: "w", outcome: .success(), now: base.plus(31))
        // A failed DMP send acknowledges nothing.
        let second = try #require(try await f.store.claimNext(target: .dmp, now: base.plus(hour + 30), lease: 60, owner: "w"))
        _ = try await f.store.complete(second, owner: "w", outcome: .failure(.permanent("refused")), now: base.plus(hour + 31))
        // An MSSanté mail counts when its delivery notification arrives, not when it is sent.
        let mail = try #require(try await f.store.claimNext(target: .mssantePS, now: base.plus(2 * hour + 10), lease: 60, owner: "w"))
        _ = try await f.store.complete(mail, owner: "w", outcome: .success(), now: base.plus(2 * hour + 11))
        _ = try await f.store.acknowledge(transmissionID: mail.transmission.id, kind: .delivered, detail: nil, now: base.plus(2 * hour + 50))

        let rows = try await f.store.hourlyActivity(from: base, until: base.plus(3 * hour))
        #expect(rows == [
            HourlyActivity(hour: base, received: 2, acknowledged: 1),
            HourlyActivity(hour: base.plus(2 * hour), received: 1, acknowledged: 1),
        ])
        // Hours count back from the range's end (the last one ends there), and the start is exact.
        #expect(try await f.store.hourlyActivity(from: base.plus(15), until: base.plus(2 * hour + 20))
            == [HourlyActivity(hour: base.plus(20), received: 1, acknowledged: 1),
                HourlyActivity(hour: base.plus(hour + 20), received: 1, acknowledged: 0)])
        #expect(try await f.store.hourlyActivity(from: base.plus(4 * hour), until: base.plus(5 * hour)).isEmpty)
    }
}
