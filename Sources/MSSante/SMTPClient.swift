import BlockingIO
import Foundation
import OpenSSLKit

/// An SMTP reply: code and text (lines joined with "\n").
public struct SMTPReply: Sendable, Hashable, CustomStringConvertible {
    public var code: Int
    public var text: String
    public init(code: Int, text: String) {
        self.code = code
        self.text = text
    }
    public var isPositive: Bool { (200..<400).contains(code) }
    /// 4xx: the server asks to try again later.
    public var isTransient: Bool { (400..<500).contains(code) }
    /// 5xx: permanent failure.
    public var isPermanent: Bool { code >= 500 }
    public var description: String { "\(code) \(text)" }
}

/// Errors of an SMTP session that stop the whole transaction (per-recipient refusals are
/// results, not errors: see ``SMTPRecipientOutcome``).
public enum SMTPError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// TCP or TLS failure (certificate refused, protocol or cipher mismatch, timeout...), with
    /// OpenSSL's or the system's text. Retry later unless the configuration is wrong.
    case transport(String)
    /// The server closed the connection or sent something that is not an SMTP reply.
    case protocolViolation(String)
    /// STARTTLS was required but not offered: nothing was sent in clear.
    case startTLSNotOffered(server: String)
    /// The server does not announce DSN (RFC 3461): delivery notifications would be lost.
    case dsnNotOffered(server: String)
    /// 4xx on the session or MAIL/DATA: try again later. The server's text is kept.
    case transient(command: String, reply: SMTPReply)
    /// 5xx on the session or MAIL/DATA: do not retry as is. The server's text is kept.
    case permanent(command: String, reply: SMTPReply)

    public var description: String {
        switch self {
        case let .transport(reason): "SMTP connection failed: \(reason)"
        case let .protocolViolation(reason): "SMTP protocol error: \(reason)"
        case let .startTLSNotOffered(server): "\(server) does not offer STARTTLS; refusing to send in clear"
        case let .dsnNotOffered(server): "\(server) does not offer DSN (RFC 3461); delivery notifications would be lost"
        case let .transient(command, reply): "SMTP \(command) temporarily refused (retry later): \(reply)"
        case let .permanent(command, reply): "SMTP \(command) refused: \(reply)"
        }
    }

    public var errorDescription: String? { description }

    /// True when the same message may succeed later (4xx, network, timeout). A relay that
    /// stops offering STARTTLS is misconfigured, or something in the path strips it (a
    /// downgrade attack): a fault of the peer, not of the message, retried like the other TLS
    /// faults (and never sent in clear).
    public var isTransient: Bool {
        switch self {
        case .transient, .transport, .protocolViolation, .startTLSNotOffered: true
        case .permanent, .dsnNotOffered: false
        }
    }
}

/// What happened to one recipient.
public enum SMTPRecipientOutcome: Sendable, Hashable {
    /// The server took responsibility for the message (final reply to DATA).
    case accepted(SMTPReply)
    /// 4xx on RCPT or DATA: send again later to this recipient.
    case retryLater(SMTPReply)
    /// 5xx on RCPT or DATA: permanent failure, with the server's text.
    case rejected(SMTPReply)
}

/// The result of one transaction: an outcome per recipient, in envelope order.
public struct SMTPDelivery: Sendable, Hashable {
    public var outcomes: [(recipient: String, outcome: SMTPRecipientOutcome)] { recipients.map { ($0, results[$0]!) } }
    public let recipients: [String]
    public let results: [String: SMTPRecipientOutcome]
    /// TLS version and cipher of the session, for the journal.
    public let tlsVersion: String
    public let cipher: String

    public static func == (a: SMTPDelivery, b: SMTPDelivery) -> Bool { a.recipients == b.recipients && a.results == b.results }
    public func hash(into hasher: inout Hasher) { hasher.combine(recipients) }
}

/// The SMTP envelope with its DSN parameters (RFC 3461).
public struct SMTPEnvelope: Sendable, Hashable {
    public var from: String
    public var recipients: [String]
    /// ENVID: comes back in DSNs to find the transmission.
    public var envelopeID: String
    public init(from: String, recipients: [String], envelopeID: String) {
        self.from = from
        self.recipients = recipients
        self.envelopeID = envelopeID
    }
}

/// How to reach the MSSanté operator's SMTP server.
public struct SMTPConfiguration: Sendable {
    public enum Security: Sendable, Hashable {
        /// Port 587: plain connection upgraded with STARTTLS (required).
        case startTLS
        /// Port 465: TLS from the first byte.
        case implicitTLS
    }

    /// The four TLS 1.2 suites MSSanté allows.
    public static let mssanteCipherList =
        "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256"

    public var host: String
    public var port: UInt16
    public var security: Security
    /// CA, client certificate (PKCS#12), versions, ciphers and timeout of every read/write.
    public var tls: TLSConfiguration
    /// Name sent in EHLO.
    public var clientName: String
    /// Refuse servers without DSN (on by default: acknowledgements depend on it).
    public var requireDSN: Bool

    /// MSSanté defaults: TLS 1.2 only, the four listed suites, the given CA and client certificate.
    public init(host: String, port: UInt16, security: Security, trustedCAFile: URL, clientCertificate: PKCS12Bundle?,
                cipherList: String = SMTPConfiguration.mssanteCipherList, timeout: TimeInterval = 30,
                clientName: String = "passerelle.localdomain", requireDSN: Bool = true) {
        self.host = host
        self.port = port
        self.security = security
        tls = TLSConfiguration(trustedCAFile: trustedCAFile, identity: clientCertificate, minimumVersion: .tls1_2,
                               maximumVersion: .tls1_2, cipherList: cipherList, timeout: timeout)
        self.clientName = clientName
        self.requireDSN = requireDSN
    }
}

/// A small ESMTP client (RFC 5321) with STARTTLS (RFC 3207) and DSN (RFC 3461) over
/// OpenSSLKit. libcurl cannot send the DSN parameters, hence this client. Each call opens
/// one session; ``send(batch:)`` runs several transactions over it (RSET between them).
public struct SMTPClient: Sendable {
    public let configuration: SMTPConfiguration
    let context: TLSContext

    public init(configuration: SMTPConfiguration) throws(SMTPError) {
        self.configuration = configuration
        do { context = try TLSContext(role: .client, configuration: configuration.tls) } catch {
            throw .transport(error.description)
        }
    }

    /// Sends `message` (a complete RFC 5322 message with CRLF line endings). Throws for
    /// failures that concern the whole transaction; per-recipient refusals are in the result.
    public func send(_ message: Data, envelope: SMTPEnvelope) async throws(SMTPError) -> SMTPDelivery {
        let results = try await send(batch: [(message, envelope)])
        return try results[0].get()
    }

    /// Sends a message produced in chunks (``MailBody``: large attachments streamed from their files).
    public func send(_ message: MailBody, envelope: SMTPEnvelope) async throws(SMTPError) -> SMTPDelivery {
        let results = try await send(sources: [(.body(message), envelope)])
        return try results[0].get()
    }

    /// A message in memory or produced in chunks.
    enum Source: Sendable {
        case data(Data)
        case body(MailBody)

        var count: Int {
            switch self {
            case .data(let d): d.count
            case .body(let b): b.count
            }
        }

        func chunks() -> () throws -> Data? {
            switch self {
            case .data(let d):
                var offset = d.startIndex
                return {
                    guard offset < d.endIndex else { return nil }
                    let end = d.index(offset, offsetBy: 64 << 10, limitedBy: d.endIndex) ?? d.endIndex
                    defer { offset = end }
                    return d[offset..<end]
                }
            case .body(let b): return b.chunks()
            }
        }
    }

    /// Sends several messages over one session. Throws when the session cannot be opened
    /// (TLS, greeting, EHLO); otherwise one result per message, in order: a transaction that
    /// fails (e.g. 4xx on MAIL) does not stop the next ones, unless the connection is lost,
    /// in which case that error is repeated for the messages left.
    public func send(batch: [(Data, SMTPEnvelope)]) async throws(SMTPError) -> [Result<SMTPDelivery, SMTPError>] {
        try await send(sources: batch.map { (.data($0.0), $0.1) })
    }

    func send(sources batch: [(Source, SMTPEnvelope)]) async throws(SMTPError) -> [Result<SMTPDelivery, SMTPError>] {
        // The session blocks on socket I/O: run it on a thread of its own, never on the
        // cooperative pool or Dispatch's small worker pool.
        let outcome: Result<[Result<SMTPDelivery, SMTPError>], SMTPError>
        do {
            outcome = try await BlockingExecutor.once("MSSante.smtp") {
                Result { () throws(SMTPError) in try self.sendBlocking(sources: batch) }
            }
        } catch {
            throw .transport("\(error)")  // only if the executor refused the call: a fresh one never does
        }
        return try outcome.get()
    }

    /// The blocking form of ``send(batch:)``, bounded by the configured timeout on every step.
    public func sendBlocking(batch: [(Data, SMTPEnvelope)]) throws(SMTPError) -> [Result<SMTPDelivery, SMTPError>] {
        try sendBlocking(sources: batch.map { (.data($0.0), $0.1) })
    }

    func sendBlocking(sources batch: [(Source, SMTPEnvelope)]) throws(SMTPError) -> [Result<SMTPDelivery, SMTPError>] {
        for (_, envelope) in batch {
            for address in [envelope.from] + envelope.recipients where !MSSanteRouting.isMailAddress(address) {
                throw .protocolViolation("refusing to send to a malformed address")
            }
        }
        let (tls, features) = try open()
        defer { tls.close() }
        var results: [Result<SMTPDelivery, SMTPError>] = []
        var lost: SMTPError?
        for (index, (message, envelope)) in batch.enumerated() {
            if let lost {
                results.append(.failure(lost))
                continue
            }
            if index > 0 {
                do {
                    try command(tls, "RSET")
                    try expect(try reply(tls), 250, "RSET")
                } catch {
                    lost = Self.wrap(error)
                    results.append(.failure(lost!))
                    continue
                }
            }
            do {
                results.append(.success(try transaction(tls, features: features, message: message, envelope: envelope)))
            } catch let error as SMTPError {
                if case .transient = error { results.append(.failure(error)) } else if case .permanent = error {
                    results.append(.failure(error))
                } else {
                    lost = error
                    results.append(.failure(error))
                }
            } catch {
                lost = Self.wrap(error)
                results.append(.failure(lost!))
            }
        }
        if lost == nil {
            try? command(tls, "QUIT")
            _ = try? reply(tls)
        }
        return results
    }

    /// Connects as a send does — greeting, STARTTLS (or TLS from the first byte), the handshake
    /// with the client certificate and the server checked against the CA, EHLO over TLS — then
    /// QUIT: nothing is sent. `passerelle config check --connect` uses it. Returns the session's
    /// TLS version and cipher.
    public func checkConnection() async throws(SMTPError) -> (tlsVersion: String, cipher: String) {
        let outcome: Result<(tlsVersion: String, cipher: String), SMTPError>
        do {
            outcome = try await BlockingExecutor.once("MSSante.smtp-check") {
                Result { () throws(SMTPError) in
                    let (tls, _) = try self.open()
                    defer { tls.close() }
                    let session = (tlsVersion: tls.protocolVersion, cipher: tls.cipher)
                    try? self.command(tls, "QUIT")
                    _ = try? self.reply(tls)
                    return session
                }
            }
        } catch {
            throw .transport("\(error)")
        }
        return try outcome.get()
    }

    private static func wrap(_ error: any Error) -> SMTPError {
        (error as? SMTPError) ?? .transport(String(describing: error))
    }

    /// Connects, greets and (for 587) upgrades with STARTTLS; returns the TLS stream and the
    /// EHLO keywords announced over TLS. Nothing is sent in clear beyond EHLO and STARTTLS.
    private func open() throws(SMTPError) -> (TLSStream, Set<String>) {
        let c = configuration
        let server = "\(c.host):\(c.port)"
        let tls: TLSStream
        do {
            switch c.security {
            case .implicitTLS:
                tls = try TLSStream.connect(host: c.host, port: c.port, context: context)
                do { try expect(try reply(tls), 220, "greeting") } catch {
                    tls.close()
                    throw error
                }
            case .startTLS:
                let plain = try Socket.connect(host: c.host, port: c.port, timeout: c.tls.timeout)
                defer { plain.close() }
                try expect(try reply(plain), 220, "greeting")
                let features = try ehlo(plain)
                guard features.contains("STARTTLS") else { throw SMTPError.startTLSNotOffered(server: server) }
                try command(plain, "STARTTLS")
                try expect(try reply(plain), 220, "STARTTLS")
                tls = try TLSStream.upgrade(plain, context: context, serverName: c.host)
            }
        } catch {
            throw Self.wrap(error)
        }
        do {
            let features = try ehlo(tls)
            if c.requireDSN && !features.contains("DSN") { throw SMTPError.dsnNotOffered(server: server) }
            return (tls, features)
        } catch {
            tls.close()
            throw Self.wrap(error)
        }
    }

    /// MAIL, RCPT for each recipient, DATA. Per-recipient refusals are results.
    private func transaction(_ connection: TLSStream, features: Set<String>, message: Source,
                             envelope: SMTPEnvelope) throws -> SMTPDelivery {
        let dsn = features.contains("DSN")
        var mail = "MAIL FROM:<\(envelope.from)>"
        if dsn { mail += " RET=HDRS ENVID=\(Self.xtext(envelope.envelopeID))" }
        if features.contains("SIZE") { mail += " SIZE=\(message.count)" }
        try command(connection, mail)
        try expect(try reply(connection), 250, "MAIL FROM")

        var results: [String: SMTPRecipientOutcome] = [:]
        var accepted: [String] = []
        for recipient in envelope.recipients {
            var rcpt = "RCPT TO:<\(recipient)>"
            if dsn { rcpt += " NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;\(Self.xtext(recipient))" }
            try command(connection, rcpt)
            let answer = try reply(connection)
            if answer.isPositive {
                accepted.append(recipient)
            } else {
                results[recipient] = answer.isTransient ? .retryLater(answer) : .rejected(answer)
            }
        }
        if !accepted.isEmpty {
            try command(connection, "DATA")
            try expect(try reply(connection), 354, "DATA")
            try Self.writeDotStuffed(message.chunks(), to: connection)
            let final = try reply(connection)
            for recipient in accepted {
                results[recipient] = final.isPositive ? .accepted(final) : final.isTransient ? .retryLater(final) : .rejected(final)
            }
        }
        return SMTPDelivery(recipients: envelope.recipients, results: results, tlsVersion: connection.protocolVersion,
                            cipher: connection.cipher)
    }

    // MARK: protocol pieces

    private func command(_ connection: any Connection, _ line: String) throws {
        try connection.write(Data((line + "\r\n").utf8))
    }

    /// Reads a (possibly multi-line) reply.
    private func reply(_ connection: any Connection) throws -> SMTPReply {
        var lines: [String] = []
        while true {
            guard let line = try connection.readLine(maxLength: 4096) else {
                throw SMTPError.protocolViolation("\(connection.peer) closed the connection")
            }
            let bytes = Array(line.utf8)
            guard bytes.count >= 3, let code = Int(String(decoding: bytes[0..<3], as: UTF8.self)), (200..<600).contains(code),
                  bytes.count == 3 || bytes[3] == UInt8(ascii: " ") || bytes[3] == UInt8(ascii: "-") else {
                throw SMTPError.protocolViolation("not an SMTP reply from \(connection.peer)")
            }
            lines.append(bytes.count > 4 ? String(decoding: bytes[4...], as: UTF8.self) : "")
            if bytes.count == 3 || bytes[3] == UInt8(ascii: " ") { return SMTPReply(code: code, text: lines.joined(separator: "\n")) }
        }
    }

    private func expect(_ answer: SMTPReply, _ code: Int, _ what: String) throws {
        guard answer.code == code else {
            throw answer.isTransient ? SMTPError.transient(command: what, reply: answer)
                : answer.isPositive ? SMTPError.protocolViolation("unexpected reply to \(what): \(answer)")
                : SMTPError.permanent(command: what, reply: answer)
        }
    }

    /// EHLO; returns the upper-cased extension keywords.
    private func ehlo(_ connection: any Connection) throws -> Set<String> {
        try command(connection, "EHLO \(configuration.clientName)")
        let answer = try reply(connection)
        try expect(answer, 250, "EHLO")
        return Set(answer.text.split(separator: "\n").dropFirst().compactMap {
            $0.split(separator: " ").first.map { $0.uppercased() }
        })
    }

    /// RFC 3461 xtext: `+` followed by two hex digits for `+`, `=` and anything outside 33...126.
    static func xtext(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if byte < 33 || byte > 126 || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "=") {
                out += String(format: "+%02X", byte)
            } else {
                out.append(Character(Unicode.Scalar(byte)))
            }
        }
        return out
    }

    /// Dot-stuffing and the terminating `CRLF.CRLF` (RFC 5321 §4.5.2), streamed in chunks of
    /// `chunkSize` bytes so a large message is never copied whole.
    static func writeDotStuffed(_ message: Data, to connection: any Connection, chunkSize: Int = 64 << 10) throws {
        try writeDotStuffed(Source.data(message).chunks(), to: connection)
    }

    /// ``writeDotStuffed(_:to:chunkSize:)`` over chunks (the line-start state carries across them).
    static func writeDotStuffed(_ next: () throws -> Data?, to connection: any Connection) throws {
        var atLineStart = true
        var lastTwo: [UInt8] = []
        var empty = true
        while let chunk = try next() {
            guard !chunk.isEmpty else { continue }
            empty = false
            var out = Data(capacity: chunk.count + 64)
            chunk.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                // Copy runs between line starts; a '.' at a line start gets a second '.'.
                var start = 0
                var i = 0
                let count = raw.count
                while i < count {
                    if atLineStart && raw[i] == UInt8(ascii: ".") {
                        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[start..<i]))
                        out.append(UInt8(ascii: "."))
                        start = i
                    }
                    // Jump to the next line feed.
                    if let lf = memchr(raw.baseAddress! + i, 0x0A, count - i) {
                        i = raw.baseAddress!.distance(to: UnsafeRawPointer(lf)) + 1
                        atLineStart = true
                    } else {
                        i = count
                        atLineStart = false
                    }
                }
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[start..<count]))
                if count > 0 { atLineStart = raw[count - 1] == 0x0A }
            }
            lastTwo = Array((lastTwo + Array(chunk.suffix(2))).suffix(2))
            try connection.write(out)
        }
        let terminator = (lastTwo == [0x0D, 0x0A] || empty) ? ".\r\n" : "\r\n.\r\n"
        try connection.write(Data(terminator.utf8))
    }
}

