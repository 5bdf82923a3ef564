import Foundation
import Journal
import PasserelleCore
import Testing
import TestSupport

/// Documents per second through the whole pipeline (inbox → journal → CDA → DMP endpoint over
/// mutual TLS, 2 connections), in-process. A figure for the report more than a test.
@Suite(.serialized) struct ThroughputTests {
    @Test func hundredDocumentsThroughThePipeline() async throws {
        let h = try Harness(quiet: 0)
        defer { h.cleanUp() }
        let total = 100
        let pdf = Documents.pdf("Débit")
        for i in 0..<total {
            try h.drop(String(format: "t%03d.json", i), sidecar: Documents.metadata(DocumentKind.allCases[i % DocumentKind.allCases.count]))
            try h.drop(String(format: "t%03d.pdf", i), pdf)
        }
        let journal = try h.journal()
        let service = try h.service()
        let started = Date()
        let running = Task { try await service.run() }
        let done = try await Harness.waitUntil(timeout: 120) {
            try await journal.transmissions(matching: TransmissionFilter(states: [.acknowledged])).count == total
        }
        let elapsed = Date().timeIntervalSince(started)
        service.stop()
        try await running.value
        #expect(done)
        #expect(h.endpoint.storedDocuments.count == 2 * total)
        print("throughput: \(total) documents inbox → DMP endpoint in \(String(format: "%.1f", elapsed)) s = \(String(format: "%.1f", Double(total) / elapsed)) docs/s (\(h.endpoint.connectionCount) TLS connections)")
    }
}
