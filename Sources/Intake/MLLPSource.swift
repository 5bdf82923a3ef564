import Foundation
import Logging
import OpenSSLKit
import PasserelleCore
import Synchronization
import TestHooks
#if canImport(Glibc)
import Glibc
#endif

/// The MLLP listener as an ``IntakeSource``: each received message is a claim; its ACK, built by
/// ``acknowledge(_:_:)``, goes back on its connection before the next message of that
/// connection is read (one message at a time per connection; connections run side by side).
/// AA once journaled, AE with the reason when refused, AR when the journal is unavailable.
///
/// Poison guard: the gateway cannot take a message again after a crash (the sender resends it),
/// so each message in flight has a marker, `work/.mllp-in-flight/<SHA-256 of the bytes>`, holding
/// how many times it was started without an answer. A message arriving with
/// `[folders] max_processing_attempts` interrupted starts is not processed again: it is answered
/// AE with the reason and written to error/ (with its reason file) for a human.
public final class MLLPSource: IntakeSource {
    public let settings: MLLPSettings
    /// Its work/ holds the in-flight markers, its error/ the set-aside messages.
    public let scanner: InboxScanner
    public let loader: IntakeLoader
    public let maxProcessingAttempts: Int
    let logger: Logger
    let acks = HL7AcknowledgementBuilder()
    private let listener = Mutex<MLLPListener?>(nil)
    private let stream: AsyncStream<Claim>
    private let feed: AsyncStream<Claim>.Continuation
    /// Claims handed to the stream and not yet begun: answered AR when the stream ends (stop).
    private let waiting = Waiting()

    static let inFlightFolderName = ".mllp-in-flight"

    /// One received message and the slot its ACK goes into.
    public final class Claim: Sendable {
        public let data: Data
        /// SHA-256 (hex) of the message bytes.
        public let digest: String
        /// The message as parsed by ``MLLPSource/load(_:)`` (or its MSH alone when set aside): addresses the ACK.
        let message = Mutex<HL7Message?>(nil)
        let answer = Reply()

        init(data: Data) {
            self.data = data
            digest = Digest.sha256(data).hexString
        }
    }

    public var origin: IntakeOrigin { .mllp }

    public init(settings: MLLPSettings, scanner: InboxScanner, loader: IntakeLoader = IntakeLoader(), maxProcessingAttempts: Int = 3,
                logger: Logger = Logger(label: "passerelle.mllp")) {
        self.settings = settings
        self.scanner = scanner
        self.loader = loader
        self.maxProcessingAttempts = maxProcessingAttempts
        self.logger = logger
        (stream, feed) = AsyncStream.makeStream(of: Claim.self)
        feed.onTermination = { [waiting, acks] _ in
            // Nobody will process these any more: the sender resends them later.
            for claim in waiting.takeAll() {
                claim.answer.send(Self.stoppingACK(acks, claim, language: scanner.language))
            }
        }
    }

    /// Starts listening; returns the port actually bound (useful with port 0).
    public func start() throws(MLLPListenerError) -> UInt16 {
        let started = try MLLPListener(settings: settings, handler: { [weak self] data in
            guard let self else { return Data() }
            return await self.received(data)
        }, oversize: { [acks, settings, scanner] in
            Self.ack(acks, nil, .error, [HL7ErrorDetail(condition: .applicationInternalError,
                                                         text: IntakeNotice.tooLarge(limit: settings.maxMessageBytes).text(scanner.language))])
        }, onError: { [logger] in logger.warning("MLLP", metadata: ["error": "\($0)"]) })
        listener.withLock { $0 = started }
        return started.port
    }

    /// The port bound, once started.
    public var port: UInt16? { listener.withLock { $0?.port } }

    /// Stops accepting; connections in progress end after their current message.
    public func stop() {
        listener.withLock { $0?.stop(); $0 = nil }
    }

    /// One stream per source: the listener feeds it from its connection threads.
    public func claims() -> AsyncStream<Claim> { stream }

    /// From a connection thread (through the listener's bridge): queues the message and waits for its ACK.
    func received(_ data: Data) async -> Data {
        let claim = Claim(data: data)
        waiting.insert(claim)
        if case .terminated = feed.yield(claim) {
            waiting.remove(claim)
            return Self.stoppingACK(acks, claim, language: scanner.language)
        }
        return await claim.answer.wait()
    }

    public func label(_ claim: Claim) -> String {
        if let id = claim.message.withLock({ $0?.controlID }) { return "mllp:\(id)" }
        return "mllp:sha256:\(claim.digest.prefix(16))"
    }

    public func begin(_ claim: Claim) async -> RefusalReason? {
        waiting.remove(claim)
        let inFlight = scanner.work.appendingPathComponent(Self.inFlightFolderName)
        let counter = AttemptCounter(file: inFlight.appendingPathComponent(claim.digest))
        let interrupted = counter.read()
        if interrupted >= maxProcessingAttempts {
            let reason = RefusalReason.interruptedTooOften(attempts: interrupted, key: "[folders] max_processing_attempts")
            await setAside(claim, reason: reason, attempts: interrupted, folder: inFlight)
            counter.remove()
            return reason
        }
        counter.write(interrupted + 1)
        CrashPoint.reached(.mllpReceived)
        return nil
    }

    /// The message made the process die `attempts` times: not parsed again (only its MSH, for the
    /// ACK), kept in error/ with its reason.
    func setAside(_ claim: Claim, reason: RefusalReason, attempts: Int, folder inFlight: URL) async {
        logger.error("an MLLP message stopped the gateway repeatedly while being processed; answered AE, kept in error/",
                     metadata: ["sha256": "\(claim.digest.prefix(16))", "attempts": "\(attempts)"])
        claim.message.withLock { $0 = Self.header(of: claim.data) }
        let file = inFlight.appendingPathComponent("mllp-\(claim.digest.prefix(16)).hl7")
        mkdir(inFlight.path, 0o700)
        unlink(file.path)
        if let failure = DurableFiles.writeNew(claim.data, to: file.path) {
            logger.error("cannot keep the set-aside MLLP message", metadata: ["error": "\(failure)"])
        } else {
            do { try await scanner.refuse([file], reason: reason) } catch {
                logger.error("cannot move the set-aside MLLP message to error/", metadata: ["error": "\(error)"])
                unlink(file.path)
            }
        }
    }

    public func load(_ claim: Claim) throws(ClaimLoadFailure) -> LoadedClaim {
        let message: HL7Message
        do { message = try HL7Message(data: claim.data) } catch { throw .refused(.invalidMessage(.parse(error))) }
        claim.message.withLock { $0 = message }
        do {
            return LoadedClaim(item: try loader.load(message), sha256: claim.digest, name: "mllp:\(message.controlID)")
        } catch {
            throw .refused(error)
        }
    }

    public func acknowledge(_ claim: Claim, _ outcome: IntakeOutcome) async {
        let message = claim.message.withLock { $0 }
        let ack: Data = switch outcome {
        case .accepted, .duplicate: Self.ack(acks, message, .accept, [])
        case .acceptedInPart(let accepted, let reason):
            // AE: the sender must know a part will never go; an information ERR says what does.
            Self.ack(acks, message, .error, Self.details(reason, message: message, language: scanner.language)
                     + [Self.acceptedPart(accepted, language: scanner.language)])
        case .refused(let reason): Self.ack(acks, message, .error, Self.details(reason, message: message, language: scanner.language))
        case .unavailable:
            Self.ack(acks, message, .reject, [HL7ErrorDetail(condition: .applicationInternalError,
                                                             text: IntakeNotice.journalUnavailable.text(scanner.language))])
        }
        // Answered: a crash before the ACK is written leads to a resend, handled anew.
        AttemptCounter(file: scanner.work.appendingPathComponent(Self.inFlightFolderName).appendingPathComponent(claim.digest)).remove()
        claim.answer.send(ack)
    }

    /// The MSH segment alone, parsed to address the ACK (bounded: the rest is never parsed again).
    static func header(of data: Data) -> HL7Message? {
        let head = data.prefix(4096)
        let end = head.firstIndex(where: { $0 == 0x0D || $0 == 0x0A }) ?? head.endIndex
        return try? HL7Message(data: Data(head[head.startIndex..<end]))
    }

    /// The ERR of a refusal: its text is the reason's, word for word what a refused file's
    /// `NAME.error.txt` says; a message error also names its HL7 condition and location.
    static func detail(_ reason: RefusalReason, language: IntakeLanguage) -> HL7ErrorDetail {
        if case .invalidMessage(let e) = reason {
            var detail = HL7ErrorDetail(e, language: language)
            detail.text = reason.text(language)
            return detail
        }
        return HL7ErrorDetail(condition: .applicationInternalError, text: reason.text(language))
    }

    /// The ERRs of a refusal: one per refused routing part (ERR-3 207 with the ANS application
    /// error code in ERR-5, ERR-2 at the field concerned), else the one ``detail(_:language:)``.
    static func details(_ reason: RefusalReason, message: HL7Message?, language: IntakeLanguage) -> [HL7ErrorDetail] {
        guard case .routing(let refusals) = reason, !refusals.isEmpty else { return [detail(reason, language: language)] }
        return refusals.map { refusal in
            switch refusal {
            case .identityNotQualified:
                // PID-32: the identity reliability code; the document carries no INS for such an identity.
                HL7ErrorDetail(condition: .applicationInternalError, location: HL7ErrorLocation(segment: "PID", field: 32),
                               applicationError: .insMissing, text: refusal.text(language))
            case .forbiddenCombination(let rule, _, _):
                HL7ErrorDetail(condition: .applicationInternalError, location: metaOBX(rule.flag.rawValue, in: message),
                               applicationError: .other, text: refusal.text(language))
            case .deletionNoticeWithoutDocument:
                HL7ErrorDetail(condition: .applicationInternalError, location: documentOBX(in: message),
                               applicationError: .other, text: refusal.text(language))
            case .noProfessionalRecipient:
                HL7ErrorDetail(condition: .applicationInternalError, location: metaOBX(MetaDMPMSSFlag.destMSSantePS.rawValue, in: message),
                               applicationError: .other, text: refusal.text(language))
            }
        }
    }

    /// The information ERR of an input accepted in part: what is sent.
    static func acceptedPart(_ accepted: [Destination], language: IntakeLanguage) -> HL7ErrorDetail {
        let names = accepted.map { $0.name(language) }.joined(separator: ", ")
        return HL7ErrorDetail(condition: .success, severity: .information,
                              text: language == .fr ? "accepté et transmis pour \(names) seulement" : "accepted and sent for \(names) only")
    }

    /// OBX-5 of the MetaDMPMSS OBX whose OBX-3 is `code` (the flag a matrix rule is about).
    static func metaOBX(_ code: String, in message: HL7Message?) -> HL7ErrorLocation? {
        guard let obxs = message?.segments("OBX"),
              let index = obxs.firstIndex(where: { $0.field(3).value.trimmingWhitespace().uppercased() == code }) else {
            return HL7ErrorLocation(segment: "OBX", field: 3)
        }
        return HL7ErrorLocation(segment: "OBX", occurrence: index + 1, field: 5)
    }

    /// OBX-5 of the OBX carrying the document (the first of type ED).
    static func documentOBX(in message: HL7Message?) -> HL7ErrorLocation? {
        let index = message?.segments("OBX").firstIndex { $0[2] == "ED" } ?? 0
        return HL7ErrorLocation(segment: "OBX", occurrence: index + 1, field: 5)
    }

    static func stoppingACK(_ acks: HL7AcknowledgementBuilder, _ claim: Claim, language: IntakeLanguage) -> Data {
        ack(acks, header(of: claim.data), .reject, [HL7ErrorDetail(condition: .applicationInternalError,
                                                                   text: IntakeNotice.stopping.text(language))])
    }

    static func ack(_ acks: HL7AcknowledgementBuilder, _ message: HL7Message?, _ code: HL7AckCode, _ errors: [HL7ErrorDetail]) -> Data {
        let id = "ACK" + String(UInt64(Date().timeIntervalSince1970 * 1000)) + String(UInt16.random(in: 0...UInt16.max))
        return Data(acks.acknowledgement(for: message, code: code, errors: errors, controlID: id).utf8)
    }
}

extension MLLPSource {
    /// The claims queued and not begun yet.
    final class Waiting: Sendable {
        private let table = Mutex<[ObjectIdentifier: Claim]>([:])
        func insert(_ claim: Claim) { table.withLock { $0[ObjectIdentifier(claim)] = claim } }
        func remove(_ claim: Claim) { table.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(claim)) } }
        func takeAll() -> [Claim] { table.withLock { t in defer { t = [:] }; return Array(t.values) } }
    }
}

/// A one-shot answer: the first ``send(_:)`` wins; ``wait()`` returns it.
final class Reply: Sendable {
    private let state = Mutex<(value: Data?, waiter: CheckedContinuation<Data, Never>?)>((nil, nil))

    func send(_ data: Data) {
        let waiter: CheckedContinuation<Data, Never>? = state.withLock { s in
            guard s.value == nil else { return nil }
            s.value = data
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume(returning: data)
    }

    func wait() async -> Data {
        await withCheckedContinuation { (c: CheckedContinuation<Data, Never>) in
            let ready: Data? = state.withLock { s in
                if let value = s.value { return value }
                s.waiter = c
                return nil
            }
            if let ready { c.resume(returning: ready) }
        }
    }
}
