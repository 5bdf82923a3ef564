import Delivery
import DMP
import Foundation
import IHE
import Journal
import PasserelleCore
import TestHooks
import Testing
import TestSupport

/// The crash suite: `passerelle run` as a separate process is killed a few hundred times while
/// PDF + sidecar and HL7 v2 (MDM) drops flow to the DMP-style endpoint (in this test process),
/// to the MSSanté relay (aiosmtpd, its own process) and back as DSNs through Dovecot (IMAP).
/// Two kinds of kill alternate: SIGKILL at a random moment, and the test hook
/// `PASSERELLE_CRASH_AT` (``CrashPoint``) that makes the process die at a named stage, so every
/// stage is hit whatever the timing. Then one run without kills drains the queue, and the
/// endpoints' own records are checked: every document stored by the DMP once, every mail
/// stored by the relay once per target, every acknowledgement read.
///
/// `PASSERELLE_CRASH_KILLS` sets the number of kills (default 200, a few minutes); a long run:
/// `PASSERELLE_CRASH_KILLS=2000 swift test --skip-build --filter CrashSuiteTests`.
@Suite(.serialized) struct CrashSuiteTests {
    static var killCount: Int { ProcessInfo.processInfo.environment["PASSERELLE_CRASH_KILLS"].flatMap(Int.init) ?? 200 }

    static let professionals = ["dr.alpha@medecin.mssante.fr", "dr.beta@medecin.mssante.fr"]
    /// Seconds an interrupted MSSanté send waits for its DSN ([mssante] uncertain_grace_seconds):
    /// more than one acknowledgement poll (5 s), so a DSN is always read before the grace ends.
    static let grace = 10

    /// How likely the process dies at a point when that point is the one armed for a run: high
    /// where the point is reached rarely (once per document or per mail), lower where it is
    /// reached in bursts, so that the run gets somewhere before it dies.
    static let armed: [(CrashPoint, Double)] = [
        (.claimed, 0.5), (.accepted, 0.6), (.beforeSend, 0.3),
        (.messageIDRecorded, 0.4), (.afterSend, 0.3), (.ackFetched, 0.5), (.ackRecorded, 0.5),
    ]

    /// One document of the run: its DMP uniqueId and the targets it must reach.
    struct Planned {
        var uniqueID: String
        var targets: Set<Destination>
        var drop: (Harness) throws -> Void
    }

    static func plan(_ count: Int) throws -> [Planned] {
        try (0..<count).map { i in
            let id = SampleMetadata.oidDocumentID()
            let pdf = Documents.pdf("Crash suite document \(i)")
            if i % 3 == 2 {
                // An HL7 v2 MDM^T02 carrying a PDF (the ANS example), unmasked and sent to the
                // professionals too: DMP, professionals and patient.
                let message = try mailedToEveryone(HL7PDFTests.withPDF("mdm-ex1-imaging-masked.hl7", pdf, documentID: id.root))
                return Planned(uniqueID: id.root, targets: [.dmp, .mssantePS, .mssantePatient]) {
                    try $0.drop(String(format: "mdm%04d.hl7", i), message)
                }
            }
            var metadata = SampleMetadata.document(kind: DocumentKind.allCases[i % DocumentKind.allCases.count], id: id,
                                                   destinations: i % 3 == 1 ? [.dmp, .mssantePS, .mssantePatient] : [.dmp, .mssantePS])
            metadata.mssante = MSSanteMessage(recipients: professionals)
            let name = String(format: "doc%04d", i)
            return Planned(uniqueID: DocumentEntryMapper.uniqueId(id), targets: Set(metadata.destinations)) { h in
                try h.drop("\(name).json", sidecar: metadata)
                try h.drop("\(name).pdf", pdf)
            }
        }
    }

    /// The MDM example with MASQUE_PS and DESTMSSANTEPS turned over and our two professionals as
    /// result-copy recipients (PRT RCT with their mail address, after the document's OBX).
    static func mailedToEveryone(_ message: Data) -> Data {
        var segments = String(decoding: message, as: UTF8.self).split(separator: "\r").map(String.init)
        for i in segments.indices where segments[i].hasPrefix("OBX|") {
            var fields = segments[i].split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            if fields[3].hasPrefix("MASQUE_PS^") { fields[5] = "N" + fields[5].dropFirst() }
            if fields[3].hasPrefix("DESTMSSANTEPS^") { fields[5] = "Y" + fields[5].dropFirst() }
            segments[i] = fields.joined(separator: "|")
        }
        // Participations count after the document's OBX.
        let at = segments.firstIndex { $0.hasPrefix("OBX|") }.map { $0 + 1 } ?? segments.endIndex
        segments.insert(contentsOf: professionals.map { "PRT||UC||RCT^Results Copies To^participation|||||||||||^^X.400^\($0)" }, at: at)
        return Data(segments.joined(separator: "\r").utf8)
    }

    @Test(.timeLimit(.minutes(30)))
    func killedHundredsOfTimesEveryDocumentReachesEveryTargetOnce() async throws {
        let imap = try TestIMAPServer(certificateUser: "passerelle.ch-test.fr (org_auth_cli)")
        defer { imap.stop() }
        // The relay puts a success DSN into that mailbox for every mail it takes, as an MTA would.
        let smtp = try TestSMTPServer(mode: "starttls", extra: ["--dsn-maildir", imap.maildir.path])
        defer { smtp.stop() }
        // These kills are the suite's, not caused by an input: the poison-input guard must not set
        // aside a document the suite killed the process on repeatedly.
        let h = try Harness(lease: 5, quiet: 0, folders: "max_processing_attempts = 100")
        defer { h.cleanUp() }
        let configuration = try String(contentsOfFile: h.configPath, encoding: .utf8)
            .replacingOccurrences(of: "[mssante]\nenabled = false", with: TestConfiguration.mssanteSection(
                smtpPort: smtp.port, imapPort: imap.port, mailbox: "passerelle@hopital.mssante.fr",
                extra: "uncertain_grace_seconds = \(Self.grace)")) + "\n" + HL7PDFTests.defaults + "\n"
        try configuration.write(toFile: h.configPath, atomically: true, encoding: .utf8)
        let logURL = h.root.appendingPathComponent("passerelle.log")
        FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)

        let kills = Self.killCount
        let planned = try Self.plan(max(30, kills / 2))
        var dropped = 0
        func drop(_ count: Int) throws {
            for _ in 0..<count where dropped < planned.count {
                try planned[dropped].drop(h)
                dropped += 1
            }
        }

        // Kills: two runs out of three die at a named point (each point in turn), the third at
        // a random moment. A hook run whose point is not reached in time is killed too.
        let started = Date()
        var hookKills: [CrashPoint: Int] = [:]
        var timedKills = 0
        var hookTurn = 0
        var unexpectedExits: [Int32] = []
        var generator = SystemRandomNumberGenerator()
        for cycle in 0..<kills {
            var environment: [String: String] = [:]
            var point: CrashPoint?
            if cycle % 3 != 2 {
                let (armedPoint, probability) = Self.armed[hookTurn % Self.armed.count]
                hookTurn += 1
                point = armedPoint
                environment["PASSERELLE_CRASH_AT"] = "\(armedPoint.rawValue):\(probability)"
                // Fresh work for the intake and send points; the DSNs of earlier mails for the others.
                if armedPoint != .ackFetched && armedPoint != .ackRecorded { try drop(1) }
            }
            let process = try CrashTests.start(h, log: log, environment: environment)
            let limit = point == nil ? Double.random(in: 0.1...1.5, using: &generator) : 3
            let deadline = Date().addingTimeInterval(limit)
            while process.isRunning && Date() < deadline { try await Task.sleep(nanoseconds: 20_000_000) }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                timedKills += 1
            }
            process.waitUntilExit()
            if process.terminationReason == .exit {
                if process.terminationStatus == 137, let point { hookKills[point, default: 0] += 1 } else {
                    unexpectedExits.append(process.terminationStatus)
                    if unexpectedExits.count >= 3 { break }  // it cannot start: say why below, do not loop
                }
            }
        }
        try drop(planned.count)
        let killPhase = Date().timeIntervalSince(started)

        // A last run without kills drains everything, then stops gracefully on SIGTERM.
        let final = try CrashTests.start(h, log: log)
        // Let it start (signal handlers, the start-up poll) even when nothing is left to do.
        try await Task.sleep(nanoseconds: 5_000_000_000)
        let journal = try h.journal()
        let expectedTransmissions = planned.reduce(0) { $0 + $1.targets.count }
        let drained = try await Harness.waitUntil(timeout: 240) {
            let all = try await journal.transmissions(matching: TransmissionFilter())
            if all.contains(where: { $0.state == .failed }) { return true }  // reported below
            let settled = all.filter { $0.target == .dmp ? $0.state == .acknowledged : $0.state == .delivered }
            return settled.count == expectedTransmissions && h.files(in: h.inbox).isEmpty && h.files(in: h.work).isEmpty
                && imap.count("INBOX") == 0
        }
        let elapsed = Date().timeIntervalSince(started)
        kill(final.processIdentifier, SIGTERM)
        final.waitUntilExit()
        try log.close()
        let logText = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
        let all = try await journal.transmissions(matching: TransmissionFilter())
        let states = Dictionary(grouping: all, by: { "\($0.target.rawValue):\($0.state.rawValue)" }).mapValues(\.count)
        #expect(!all.contains { $0.state == .failed }, "failed: \(all.filter { $0.state == .failed }.prefix(3).map { "\($0.target.rawValue) \($0.lastError ?? "")" })")
        #expect(unexpectedExits.isEmpty, "passerelle exited by itself: \(unexpectedExits); log tail: \(logText.suffix(2000))")
        #expect(drained, "not drained: \(states), inbox \(h.files(in: h.inbox).count), work \(h.files(in: h.work)), error \(h.files(in: h.error)), IMAP inbox \(imap.count("INBOX")); log tail: \(logText.suffix(3000))")
        #expect(final.terminationStatus == 0, "SIGTERM is a clean stop")
        #expect(h.files(in: h.error).isEmpty, "nothing refused: \(h.files(in: h.error))")
        #expect(imap.count("Passerelle-non-reconnus") == 0, "every DSN matched its transmission")

        // The DMP's side: every document stored once under its own id (a resend after a crash is
        // recognised by the DMP as the document it holds), nothing else.
        let expectedIDs = Set(planned.map(\.uniqueID))
        let stored = h.endpoint.storedDocuments
        let storedIDs = Set(stored.map(\.uniqueId)).intersection(expectedIDs)
        #expect(storedIDs == expectedIDs, "DMP lost: \(expectedIDs.subtracting(storedIDs).count)")
        #expect(stored.count == 2 * planned.count, "each document + its submission-set signature, nothing twice: \(stored.count)")
        #expect(h.endpoint.rejections.allSatisfy { $0.contains("XDSDuplicateUniqueIdInRegistry") }, "\(h.endpoint.rejections.prefix(3))")

        // The relay's side: each (document, MSSanté target) stored exactly once, each
        // (Message-ID, recipient) once.
        let mails = try smtp.received()
        var perTarget: [String: Int] = [:]
        var perRecipient: [String: Int] = [:]
        var unknown = 0
        for mail in mails {
            let data = try #require(Data(base64Encoded: mail.data))
            let documents = Self.documentIDs(inXDMOf: data, among: expectedIDs)
            guard documents.count == 1, let document = documents.first else { unknown += 1; continue }
            let target: Destination = mail.rcpt_tos.contains { $0.hasSuffix("@patient.mssante.fr") } ? .mssantePatient : .mssantePS
            perTarget["\(document) \(target.rawValue)", default: 0] += 1
            let messageID = try #require(Self.header("Message-ID", in: data))
            #expect(messageID.hasPrefix("<") && messageID.hasSuffix(">"), "\(messageID)")
            for recipient in mail.rcpt_tos { perRecipient["\(messageID) \(recipient)", default: 0] += 1 }
            if target == .mssantePS { #expect(Set(mail.rcpt_tos) == Set(Self.professionals)) }
        }
        let expectedMails = Set(planned.flatMap { p in p.targets.subtracting([.dmp]).map { "\(p.uniqueID) \($0.rawValue)" } })
        let lostMails = expectedMails.subtracting(perTarget.keys)
        let duplicatedMails = perTarget.filter { $0.value > 1 }
        #expect(unknown == 0, "mails naming no planned document")
        #expect(lostMails.isEmpty, "MSSanté lost: \(lostMails.count)")
        #expect(duplicatedMails.isEmpty, "MSSanté duplicated: \(duplicatedMails)")
        #expect(Set(perTarget.keys) == expectedMails)
        #expect(perRecipient.values.allSatisfy { $0 == 1 }, "a (Message-ID, recipient) stored twice")

        // The journal's side, for the figures.
        #expect(all.count == expectedTransmissions)
        var interrupted = 0, confirmedByDSN = 0, possibleDuplicates = 0
        for t in all {
            let attempts = try await journal.attempts(transmissionID: t.id)
            interrupted += attempts.filter { $0.outcome == "interrupted" }.count
            possibleDuplicates += attempts.filter { $0.response?.hasPrefix(MSSanteTransmissionSender.possibleDuplicate) == true }.count
            // Settled by its DSN: the last attempt was interrupted and no send followed it.
            if t.target != .dmp, attempts.last?.outcome == "interrupted" { confirmedByDSN += 1 }
        }
        let hooks = Self.armed.map { "\($0.0.rawValue)=\(hookKills[$0.0, default: 0])" }.joined(separator: " ")
        for (point, _) in Self.armed { #expect(hookKills[point, default: 0] > 0, "no crash at \(point.rawValue)") }
        print("""
            crash suite: \(planned.count) documents (\(expectedTransmissions) transmissions: DMP, MSSanté PS, MSSanté patient), \
            \(hookKills.values.reduce(0, +) + timedKills) kills (hook: \(hooks); SIGKILL at random or point not reached: \(timedKills)), \
            \(interrupted) interrupted sends taken back, \(h.endpoint.rejections.count) DMP resends recognised, \
            \(confirmedByDSN) interrupted mails settled by their DSN, \(possibleDuplicates) resent after the grace; \
            relay: \(mails.count) mails, lost \(lostMails.count), duplicated \(duplicatedMails.count); \
            DMP: lost \(expectedIDs.subtracting(storedIDs).count); kills \(String(format: "%.0f", killPhase)) s, \
            \(String(format: "%.0f", elapsed)) s in all
            """)
    }

    /// The planned document ids whose quoted form appears in the mail's XDM archive (stored
    /// ZIP entries: METADATA.XML and the CDA carry the id as an attribute value).
    static func documentIDs(inXDMOf mail: Data, among ids: Set<String>) -> [String] {
        let text = String(decoding: mail, as: UTF8.self)
        guard let name = text.range(of: "IHE_XDM.zip"), let blank = text.range(of: "\r\n\r\n", range: name.upperBound..<text.endIndex) else { return [] }
        let rest = text[blank.upperBound...]
        let body = rest.prefix { $0 != "-" }  // base64 lines up to the next boundary
        guard let zip = Data(base64Encoded: String(body), options: .ignoreUnknownCharacters) else { return [] }
        let archive = String(decoding: zip, as: UTF8.self)
        return ids.filter { archive.contains("\"\($0)\"") }
    }

    /// A header's value, folded lines joined (long Message-IDs are folded).
    static func header(_ name: String, in mail: Data) -> String? {
        let head = String(decoding: mail.prefix(16 * 1024), as: UTF8.self)
        var value: String?
        for line in head.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            if line.isEmpty { break }
            if line.first == " " || line.first == "\t" {
                if value != nil { value! += line.trimmingCharacters(in: .whitespaces) }
                continue
            }
            if value != nil { break }
            if line.lowercased().hasPrefix(name.lowercased() + ":") {
                value = line.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces)
            }
        }
        return value
    }
}
