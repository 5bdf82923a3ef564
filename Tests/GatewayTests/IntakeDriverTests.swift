import Admission
import DMP
import Foundation
import Gateway
import IHE
import Intake
import Journal
import OpenSSLKit
import PasserelleCore
import Synchronization
import Testing
import TestSupport

/// The one intake adapter: both sources through it, claims in flight at once, the start-up backlog.
@Suite(.serialized) struct IntakeDriverTests {
    /// Counts the claims between ``IntakeSource/begin(_:)`` and ``IntakeSource/acknowledge(_:_:)``.
    final class Probe: Sendable {
        struct State { var current = 0, peak = 0, entered = 0; var outcomes: [String: String] = [:] }
        let state = Mutex(State())

        func enter() { state.withLock { $0.entered += 1; $0.current += 1; $0.peak = max($0.peak, $0.current) } }
        func leave(_ claim: String, _ outcome: IntakeOutcome) {
            state.withLock {
                $0.current -= 1
                $0.outcomes[claim] = switch outcome {
                case .accepted: "accepted"
                case .acceptedInPart(_, let r): "accepted in part \(r.code)"
                case .duplicate: "duplicate"
                case .refused(let r): "refused \(r.code)"
                case .unavailable: "unavailable"
                }
            }
        }
        var snapshot: State { state.withLock { $0 } }
    }

    /// Wraps a source: its ``begin(_:)`` holds every claim until `barrier` claims have begun. A
    /// serial driver never gets past the first one (the barrier then gives up, and the peak says
    /// 1); a driver running `barrier` claims at once opens it.
    struct Barrier<Inner: IntakeSource>: IntakeSource {
        let inner: Inner
        let barrier: Int
        let probe: Probe
        var origin: IntakeOrigin { inner.origin }

        func claims() -> AsyncStream<Inner.Claim> { inner.claims() }
        func label(_ claim: Inner.Claim) -> String { inner.label(claim) }
        func begin(_ claim: Inner.Claim) async -> RefusalReason? {
            probe.enter()
            // Not a timing assertion: the wait only bounds how long a wrong (serial) driver hangs.
            let deadline = ContinuousClock.now + .seconds(20)
            while probe.snapshot.entered < barrier && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(5)) }
            return await inner.begin(claim)
        }
        func load(_ claim: Inner.Claim) throws(ClaimLoadFailure) -> LoadedClaim { try inner.load(claim) }
        func acknowledge(_ claim: Inner.Claim, _ outcome: IntakeOutcome) async {
            await inner.acknowledge(claim, outcome)
            probe.leave(inner.label(claim), outcome)
        }
    }

    /// ADT messages, one claim each.
    struct MessageList: IntakeSource {
        let messages: [Data]
        let loader = IntakeLoader()
        var origin: IntakeOrigin { .mllp }

        func claims() -> AsyncStream<Int> {
            AsyncStream { continuation in
                for i in messages.indices { continuation.yield(i) }
                continuation.finish()
            }
        }
        func label(_ claim: Int) -> String { "message-\(claim)" }
        func begin(_ claim: Int) async -> RefusalReason? { nil }
        func load(_ claim: Int) throws(ClaimLoadFailure) -> LoadedClaim {
            do { return LoadedClaim(item: try loader.loadMessage(messages[claim]), sha256: Digest.sha256(messages[claim]).hexString, name: "message-\(claim)") } catch {
                throw .refused(error)
            }
        }
        func acknowledge(_ claim: Int, _ outcome: IntakeOutcome) async {}
    }

    static func adt(_ i: Int) -> Data {
        Data(Harness.adtA01.replacingOccurrences(of: "V100^", with: "V\(i)^").replacingOccurrences(of: "|ADT1|", with: "|ADT\(i)|").utf8)
    }

    @Test(.timeLimit(.minutes(1)))
    func runsUpToTheConfiguredNumberOfClaimsAtOnceThroughTheRealPipeline() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        let service = try h.service()
        let n = 4
        let probe = Probe()
        let source = Barrier(inner: MessageList(messages: (0..<(3 * n)).map(Self.adt)), barrier: n, probe: probe)
        await IntakeDriver(source: source, pipeline: service.pipeline, wake: service.workers.poke(_:), concurrency: n).run()

        let state = probe.snapshot
        #expect(state.peak == n, "claims in flight at once: \(state.peak), expected \(n)")
        #expect(state.current == 0 && state.entered == 3 * n)
        #expect(state.outcomes.count == 3 * n && state.outcomes.values.allSatisfy { $0 == "accepted" }, "\(state.outcomes)")
        let journal = try h.journal()
        for i in 0..<(3 * n) {
            #expect(try await journal.stay(finess: "750803447", stayID: "V\(i)") != nil, "stay V\(i) journaled before its acknowledgement")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func theWatchedFolderRunsItsClaimsAtOnceEachLeavingWorkOnlyOnceJournaled() async throws {
        let h = try Harness(folders: "intake_concurrency = 3")
        defer { h.cleanUp() }
        let service = try h.service()
        #expect(service.intakeConcurrency == 3)
        // A backlog: two PDF pairs and four stays, all settled (taken on the first pass).
        var ids: [String] = []
        for i in 0..<2 {
            let metadata = Documents.metadata()
            ids.append(DocumentEntryMapper.uniqueId(try #require(metadata.id)))
            try h.drop("doc\(i).json", sidecar: metadata)
            try h.drop("doc\(i).pdf", Documents.pdf())
        }
        for i in 0..<4 { try h.drop("stay\(i).hl7", Self.adt(20 + i)) }
        for name in h.files(in: h.inbox) {
            try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-600)], ofItemAtPath: h.inbox.appendingPathComponent(name).path)
        }
        let probe = Probe()
        let driver = IntakeDriver(source: Barrier(inner: service.folder, barrier: 3, probe: probe), pipeline: service.pipeline,
                                  wake: service.workers.poke(_:), concurrency: service.intakeConcurrency)
        let running = Task { await driver.run() }
        let settled = await Harness.waitUntil(timeout: 40) { probe.snapshot.outcomes.count == 6 }
        running.cancel()
        await running.value
        let state = probe.snapshot
        #expect(settled, "\(state.outcomes)")
        #expect(state.peak == 3, "claims in flight at once: \(state.peak)")
        #expect(state.outcomes.values.allSatisfy { $0 == "accepted" }, "\(state.outcomes)")
        #expect(h.files(in: h.inbox).isEmpty && h.files(in: h.error).isEmpty)
        #expect(h.files(in: h.work).isEmpty, "every claim left work/, no in-flight counter left: \(h.files(in: h.work))")
        #expect(h.files(in: h.done).count == 6)
        let journal = try h.journal()
        for id in ids { #expect(try await journal.document(id: id, version: 1) != nil) }
        for i in 0..<4 { #expect(try await journal.stay(finess: "750803447", stayID: "V\(20 + i)") != nil) }
    }

    @Test(.timeLimit(.minutes(1)))
    func aRefusedFileAndARefusedMLLPMessageSayTheSame() async throws {
        let h = try Harness(extra: """
            [mllp]
            enabled = true
            port = 0
            """)
        defer { h.cleanUp() }
        let events = RecordingEvents()
        let service = try GatewayService.make(configuration: try h.configuration(), templates: TestPaths.templates,
                                              pollInterval: 0.1, events: events)
        let running = Task { try await service.run() }
        defer { service.stop() }
        #expect(await Harness.waitUntil(timeout: 10) { service.mllpPort != nil })
        let port = try #require(service.mllpPort)

        // A wrong INS key, as a file and as an MLLP message.
        let example = try Data(contentsOf: Harness.fixtures.appendingPathComponent("oru-ex0-biology-new.hl7"))
        let wrong = Data(String(decoding: example, as: UTF8.self).replacingOccurrences(of: "279035121518989", with: "279035121518988").utf8)
        try h.drop("wrong.hl7", wrong)
        let socket = try await Socket.connect(host: "127.0.0.1", port: port, timeout: 10)
        defer { socket.close() }
        try await socket.write(MLLPFrame.wrap(wrong))
        let ack = try await MLLPServiceTests.readFrame(socket)
        #expect(MLLPServiceTests.fields(ack, "MSA")?[1] == "AE", "\(ack)")
        let err = try #require(MLLPServiceTests.fields(ack, "ERR"))
        #expect(err[2].hasPrefix("PID^1^3"), "the message error keeps its HL7 location")
        let ackText = err[8].replacingOccurrences(of: "\\.br\\", with: "\n").replacingOccurrences(of: "\\F\\", with: "|")
            .replacingOccurrences(of: "\\S\\", with: "^").replacingOccurrences(of: "\\T\\", with: "&")
            .replacingOccurrences(of: "\\R\\", with: "~").replacingOccurrences(of: "\\E\\", with: "\\")

        let reasonFile = h.error.appendingPathComponent("wrong.hl7.error.txt")
        #expect(await Harness.waitUntil(timeout: 20) { FileManager.default.fileExists(atPath: reasonFile.path) })
        let report = try String(contentsOf: reasonFile, encoding: .utf8)
        // The report is "Passerelle refused NAME on DATE.\n\n<reason>\n": the reason is the ACK's text.
        let reason = try #require(report.components(separatedBy: "\n\n").dropFirst().first).trimmingCharacters(in: .newlines)
        #expect(!reason.isEmpty)
        #expect(ackText == reason, "ACK: \(ackText)\nfile: \(reason)")
        #expect(!ack.contains("279035121518988") && !report.contains("279035121518988"), "the INS is never quoted")
        #expect(events.events.contains("refused invalid_message inbox") && events.events.contains("refused invalid_message mllp"), "\(events.events)")
        service.stop()
        try await running.value
    }

    @Test(.timeLimit(.minutes(1)))
    func aBacklogPresentAtStartIsClaimedWithoutWaitingTheQuietPeriod() async throws {
        // A long quiet period: had the backlog waited for it, the claim could not come before 30 s.
        let h = try Harness(quiet: 30)
        defer { h.cleanUp() }
        let old = Date().addingTimeInterval(-600)
        try h.drop("backlog.json", sidecar: Documents.metadata())
        try h.drop("backlog.pdf", Documents.pdf())
        try h.drop("stay.hl7", Data(Harness.adtA01.utf8))
        for name in ["backlog.json", "backlog.pdf", "stay.hl7"] {
            try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: h.inbox.appendingPathComponent(name).path)
        }
        // Written just now: it may still be growing, so it waits for its quiet period.
        try h.drop("fresh.hl7", Self.adt(7))
        let service = try h.service()
        let start = ContinuousClock.now
        let running = Task { try await service.run() }
        defer { service.stop() }
        let claimed = await Harness.waitUntil(timeout: 20) {
            !h.files(in: h.inbox).contains("backlog.pdf") && !h.files(in: h.inbox).contains("stay.hl7")
        }
        let elapsed = ContinuousClock.now - start
        #expect(claimed)
        #expect(elapsed < .seconds(5), "first claims \(elapsed) after the start: the 30 s quiet period was waited")
        #expect(h.files(in: h.inbox) == ["fresh.hl7"], "a file written just before the start still waits")
        let journal = try h.journal()
        #expect(await Harness.waitUntil(timeout: 20) { (try? await journal.stay(finess: "750803447", stayID: "V100")) != nil })
        service.stop()
        try await running.value
    }

    @Test(.timeLimit(.minutes(1)))
    func mllpMessagesLeftWhenIntakeStopsAreAnsweredARNotLeftHanging() async throws {
        let root = try TestPaths.temporaryDirectory("mllp-stop")
        defer { try? FileManager.default.removeItem(at: root) }
        let folders = ["inbox", "work", "error"].map { root.appendingPathComponent($0) }
        for folder in folders { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
        let source = MLLPSource(settings: MLLPSettings(idleTimeout: 30), scanner: InboxScanner(inbox: folders[0], work: folders[1], error: folders[2],
                                                                                                  language: .en))
        let port = try source.start()
        defer { source.stop() }
        // A consumer that takes the first claim and never processes it (nor the ones queued behind it).
        let (taken, tookOne) = AsyncStream.makeStream(of: Void.self)
        let consumer = Task {
            for await _ in source.claims() {
                tookOne.yield()
                try? await Task.sleep(for: .seconds(3600))
            }
        }
        let first = try await Socket.connect(host: "127.0.0.1", port: port, timeout: 10)
        defer { first.close() }
        try await first.write(MLLPFrame.wrap(Data(Self.adt(1))))
        var takenIterator = taken.makeAsyncIterator()
        _ = await takenIterator.next()
        let second = try await Socket.connect(host: "127.0.0.1", port: port, timeout: 10)
        defer { second.close() }
        try await second.write(MLLPFrame.wrap(Data(Self.adt(2))))
        // The second message is queued once its connection thread handed it over; then intake stops.
        try await Task.sleep(for: .milliseconds(300))
        consumer.cancel()
        for (socket, id) in [(first, "ADT1"), (second, "ADT2")] {
            let ack = try await MLLPServiceTests.readFrame(socket)
            #expect(MLLPServiceTests.fields(ack, "MSA")?[1] == "AR" && MLLPServiceTests.fields(ack, "MSA")?[2] == id, "\(ack)")
            #expect(ack.contains("stopping"), "\(ack)")
        }
        // After the stop, a message on an open connection is answered AR at once.
        try await first.write(MLLPFrame.wrap(Data(Self.adt(3))))
        #expect(MLLPServiceTests.fields(try await MLLPServiceTests.readFrame(first), "MSA")?[1] == "AR")
    }
}
