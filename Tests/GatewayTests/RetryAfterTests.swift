import DMP
import Foundation
import Journal
import PasserelleCore
import TestEndpoints
import Testing
import TestSupport

/// The DMP's Retry-After, through the real service, endpoint and journal: the next attempt is
/// the later of the backoff (1–2 s in the harness) and the server's wait.
@Suite(.serialized) struct RetryAfterTests {
    /// One document sent while the endpoint answers `failure` once; `linger` seconds more of
    /// service after its first failure (the backoff alone would retry within 2 s). The
    /// transmission, its attempts, and the journaled wait from the first attempt's end to the next.
    static func firstFailure(_ failure: DMPTestEndpoint.Failure, linger: Double = 0) async throws
        -> (transmission: Transmission, attempts: [Attempt], wait: TimeInterval, stored: Int) {
        let h = try Harness()
        defer { h.cleanUp() }
        h.endpoint.fail(failure)
        let service = try h.service()
        let running = Task { try await service.run() }
        try h.drop("a.json", sidecar: Documents.metadata())
        try h.drop("a.pdf", Documents.pdf())
        let journal = try h.journal()
        let waiting = try await Harness.waitUntil(timeout: 30) {
            try await journal.transmissions(matching: TransmissionFilter(states: [.retryWait])).count == 1
        }
        if linger > 0 { try await Task.sleep(for: .seconds(linger)) }
        service.stop()
        try await running.value
        #expect(waiting)
        let t = try #require(try await journal.transmissions(matching: TransmissionFilter()).first)
        let attempts = try await journal.attempts(transmissionID: t.id)
        let first = try #require(attempts.first)
        let wait = try #require(t.nextAttemptAt).timeIntervalSince(first.endedAt ?? first.startedAt)
        return (t, attempts, wait, h.endpoint.storedDocuments.count)
    }

    @Test func busyDMPRetryAfterSetsTheJournaledNextAttempt() async throws {
        let (t, attempts, wait, stored) = try await Self.firstFailure(.httpStatus(503, retryAfter: 600), linger: 3)
        #expect(attempts.map(\.outcome) == ["transient"], "the server's wait was not honoured")
        #expect(t.state == .retryWait)
        #expect(wait >= 599 && wait <= 601, "next attempt \(wait) s after the 503, Retry-After 600")
        #expect(t.lastError?.contains("HTTP 503") == true && t.lastError?.contains("asks to wait 600 s") == true, "\(t.lastError ?? "")")
        #expect(stored == 0)
    }

    /// A Retry-After far away (an HTTP-date next year) waits the client's cap, one hour, not a year.
    @Test func farRetryAfterIsCappedToAnHour() async throws {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        let header = formatter.string(from: Date().addingTimeInterval(365 * 86_400))
        let (t, _, wait, _) = try await Self.firstFailure(.httpStatusRetryAfter(503, header: header))
        #expect(wait >= 3599 && wait <= 3601, "next attempt \(wait) s after the 503")
        #expect(t.lastError?.contains("asks to wait 3600 s") == true, "\(t.lastError ?? "")")
    }
}
