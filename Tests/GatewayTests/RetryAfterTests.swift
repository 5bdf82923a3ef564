import DMP
import Foundation
import Gateway
import Journal
import PasserelleCore
import Testing
import TestSupport

/// The DMP's Retry-After, through the real service, endpoint and journal: the next attempt is
/// the later of the backoff (1–2 s in the harness) and the server's wait.
@Suite(.serialized) struct RetryAfterTests {
    @Test func busyDMPRetryAfterSetsTheJournaledNextAttempt() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        h.endpoint.fail(.httpStatus(503, retryAfter: 600))
        let service = try h.service()
        let running = Task { try await service.run() }
        try h.drop("a.json", sidecar: Documents.metadata())
        try h.drop("a.pdf", Documents.pdf())
        let journal = try h.journal()
        let waiting = try await Harness.waitUntil(timeout: 30) {
            try await journal.transmissions(matching: TransmissionFilter(states: [.retryWait])).count == 1
        }
        #expect(waiting)
        // With the backoff alone the second attempt would come within 2 s.
        try await Task.sleep(for: .seconds(3))
        service.stop()
        try await running.value
        let t = try #require(try await journal.transmissions(matching: TransmissionFilter()).first)
        let attempts = try await journal.attempts(transmissionID: t.id)
        #expect(attempts.map(\.outcome) == ["transient"], "the server's wait was not honoured")
        let failedAt = try #require(attempts.first?.endedAt ?? attempts.first?.startedAt)
        let next = try #require(t.nextAttemptAt)
        let wait = next.timeIntervalSince(failedAt)
        #expect(t.state == .retryWait)
        #expect(wait >= 599 && wait <= 601, "next attempt \(wait) s after the 503, Retry-After 600")
        #expect(t.lastError?.contains("HTTP 503") == true && t.lastError?.contains("asks to wait 600 s") == true, "\(t.lastError ?? "")")
        #expect(h.endpoint.storedDocuments.isEmpty)
    }

    /// A Retry-After far away (an HTTP-date next year) waits the client's cap, one hour, not a year.
    @Test func farRetryAfterIsCappedToAnHour() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        h.endpoint.fail(.httpStatusRetryAfter(503, header: formatter.string(from: Date().addingTimeInterval(365 * 86_400))))
        let service = try h.service()
        let running = Task { try await service.run() }
        try h.drop("a.json", sidecar: Documents.metadata())
        try h.drop("a.pdf", Documents.pdf())
        let journal = try h.journal()
        let waiting = try await Harness.waitUntil(timeout: 30) {
            try await journal.transmissions(matching: TransmissionFilter(states: [.retryWait])).count == 1
        }
        service.stop()
        try await running.value
        #expect(waiting)
        let t = try #require(try await journal.transmissions(matching: TransmissionFilter()).first)
        let attempt = try #require(try await journal.attempts(transmissionID: t.id).first)
        let wait = try #require(t.nextAttemptAt).timeIntervalSince(attempt.endedAt ?? attempt.startedAt)
        #expect(wait >= 3599 && wait <= 3601, "next attempt \(wait) s after the 503")
        #expect(t.lastError?.contains("asks to wait 3600 s") == true, "\(t.lastError ?? "")")
    }
}
