import CurlKit
import DMP
import Foundation
import OpenSSLKit
import PasserelleCore
import Signing
import Testing
import TestEndpoints
import TestSupport

/// ITI-41 over real mutual TLS to the local DMP-style endpoint.
@Suite(.serialized) struct EndpointTests {
    static func endpoint(server: String = "server-localhost", dump: URL? = nil) throws -> DMPTestEndpoint {
        try DMPTestEndpoint(DMPTestEndpoint.Configuration(
            serverIdentity: Fixtures.pki("\(server).p12"), passphrase: Passphrase.read(file: TestPaths.testPKIPassphraseFile),
            clientCA: Fixtures.pki("ca.pem"), schema: TestPaths.shared.appendingPathComponent("conformance/xds/XDS.b_DocumentRepository.xsd"),
            dumpDirectory: dump))
    }

    static func client(_ endpoint: DMPTestEndpoint, identity: String = "org-auth", ca: String = "ca.pem",
                       total: Duration = .seconds(30), connections: Int = 4) throws -> DMPClient {
        let tls = TLSClientOptions(caBundle: Fixtures.pki(ca),
                                   clientIdentity: .pkcs12(Fixtures.pki("\(identity).p12"), passphrase: TLSPassphrase(try TestPaths.testPKIPassphrase())))
        return try DMPClient(endpoint: endpoint.url, tls: tls, timeouts: CurlTimeouts(connect: .seconds(5), total: total), maxConnections: connections)
    }

    /// A request addressed to `endpoint`.
    static func request(_ kind: DocumentKind, to endpoint: DMPTestEndpoint) throws -> ITI41Request {
        var builder = try Fixtures.requestBuilder()
        builder.endpoint = endpoint.url
        let m = Fixtures.metadata(kind: kind)
        let document = try Fixtures.cda(m)
        return try builder.build(try Fixtures.mapper.submission(cda: document, metadata: m), vihf: try Fixtures.vihf(for: document))
    }

    @Test func everyKindIsAcceptedAndEveryDumpIsValid() async throws {
        let dump = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dump) }
        let endpoint = try Self.endpoint(dump: dump)
        defer { endpoint.stop() }
        let client = try Self.client(endpoint)
        for kind in DocumentKind.allCases {
            let result = await client.send(try Self.request(kind, to: endpoint))
            #expect(result.outcome == .done(alreadyPresent: false, warnings: []), "\(kind): \(result.outcome) \(endpoint.rejections)")
            #expect(result.httpStatus == 200)
        }
        #expect(endpoint.storedDocuments.count == 2 * DocumentKind.allCases.count)  // each CDA + its signature
        #expect(endpoint.connectionCount == 1, "sequential requests reuse one TLS connection")
        let files = try FileManager.default.contentsOfDirectory(atPath: dump.path).filter { $0.hasSuffix(".mime") }.sorted()
        #expect(files.count == DocumentKind.allCases.count)
        for file in files {
            let body = dump.appendingPathComponent(file)
            let contentType = try String(contentsOf: body.deletingPathExtension().appendingPathExtension("content-type"), encoding: .utf8)
            let result = try XDSValidate.run(body: body, contentType: contentType)
            #expect(result.succeeded, "\(file): \(result.stdout)\(result.stderr)")
            // Both signatures, as they travelled, verified by xmlsec1.
            let signatures = try XMLSec1.verifyDumped(body: body, contentType: contentType)
            #expect(signatures.vihf.succeeded, "\(file) VIHF: \(signatures.vihf.stderr)")
            #expect(signatures.submissionSet.succeeded, "\(file) submission set signature: \(signatures.submissionSet.stderr)")
            // The embedded CDA, as it travelled, for the official CDA chain below.
            let parts = try MIMEMultipart.parse(try Data(contentsOf: body), boundary: MIMEMultipart.parameter("boundary", in: contentType) ?? "")
            for part in parts where String(decoding: part.body.prefix(400), as: UTF8.self).contains("<ClinicalDocument") {
                try part.body.write(to: dump.appendingPathComponent("\(file).cda.xml"))
            }
        }
        let cdas = try FileManager.default.contentsOfDirectory(atPath: dump.path).filter { $0.hasSuffix(".cda.xml") }.map { dump.appendingPathComponent($0).path }
        #expect(cdas.count == DocumentKind.allCases.count)
        let cda = try ProcessRunner.run(TestPaths.shared.appendingPathComponent("tools/cda-validate").path, cdas)
        #expect(cda.succeeded, "cda-validate: \(cda.stdout)\(cda.stderr)")
    }

    @Test func resendOfAStoredDocumentIsDone() async throws {
        let endpoint = try Self.endpoint()
        defer { endpoint.stop() }
        let client = try Self.client(endpoint)
        let m = Fixtures.metadata(kind: .biologyReport)
        let document = try Fixtures.cda(m)
        var builder = try Fixtures.requestBuilder()
        builder.endpoint = endpoint.url
        func send() async throws -> SubmissionOutcome {
            await client.send(try builder.build(try Fixtures.mapper.submission(cda: document, metadata: m), vihf: try Fixtures.vihf(for: document))).outcome
        }
        #expect(try await send() == .done(alreadyPresent: false, warnings: []))
        #expect(try await send() == .done(alreadyPresent: true, warnings: []))
    }

    @Test func endpointRefusesAWrongHash() async throws {
        let endpoint = try Self.endpoint()
        defer { endpoint.stop() }
        let m = Fixtures.metadata(kind: .prescription)
        let document = try Fixtures.cda(m)
        var submission = try Fixtures.mapper.submission(cda: document, metadata: m)
        submission.entries[0].hash = String(repeating: "a", count: 40)
        var builder = try Fixtures.requestBuilder()
        builder.endpoint = endpoint.url
        let result = await (try Self.client(endpoint)).send(try builder.build(submission, vihf: try Fixtures.vihf(for: document)))
        guard case .failed(_, let codes) = result.outcome else { Issue.record("\(result.outcome)"); return }
        #expect(codes == ["XDSNonIdenticalHash"])
        #expect(String(decoding: result.rawResponse, as: UTF8.self).contains("RegistryResponse"))
        #expect(endpoint.storedDocuments.isEmpty)
    }

    @Test func endpointRefusesBadSignaturesAndVIHF() async throws {
        let endpoint = try Self.endpoint()
        defer { endpoint.stop() }
        let client = try Self.client(endpoint)
        let m = Fixtures.metadata(kind: .operativeReport)
        let document = try Fixtures.cda(m)
        var builder = try Fixtures.requestBuilder()
        builder.endpoint = endpoint.url
        let submission = try Fixtures.mapper.submission(cda: document, metadata: m)

        // A VIHF whose content was altered after signing.
        let vihf = String(decoding: try Fixtures.vihf(for: document), as: UTF8.self).replacingOccurrences(of: "Passerelle", with: "Passerelli")
        let badVIHF = await client.send(try builder.build(submission, vihf: Data(vihf.utf8)))
        guard case .failed(_, let codes) = badVIHF.outcome else { Issue.record("altered VIHF: \(badVIHF.outcome)"); return }
        #expect(codes == ["Sender", "wsse:FailedAuthentication"])

        // A VIHF signed by a certificate from an unknown CA.
        let foreign = VIHFAssertionBuilder(configuration: try VIHFConfiguration(keys: Fixtures.vihfKeys),
                                           credentials: try SigningCredentials(pkcs12: Data(contentsOf: Fixtures.pki("unknown-sign.p12")),
                                                                               passphrase: Passphrase.read(file: TestPaths.testPKIPassphraseFile), trustStore: nil))
        let unknown = await client.send(try builder.build(submission, vihf: try foreign.assertion(patient: document.ins!, author: VIHFAuthor(Fixtures.author))))
        guard case .failed = unknown.outcome else { Issue.record("foreign VIHF: \(unknown.outcome)"); return }

        // A submission set signature from an unknown CA.
        builder.signer = SubmissionSetSigner(credentials: try SigningCredentials(pkcs12: Data(contentsOf: Fixtures.pki("unknown-sign.p12")),
                                                                                 passphrase: Passphrase.read(file: TestPaths.testPKIPassphraseFile), trustStore: nil))
        let badSignature = await client.send(try builder.build(submission, vihf: try Fixtures.vihf(for: document)))
        guard case .failed(let reason, _) = badSignature.outcome else { Issue.record("foreign signature: \(badSignature.outcome)"); return }
        #expect(reason.contains("submission set signature"))
        #expect(endpoint.storedDocuments.isEmpty)
        #expect(endpoint.rejections.count == 3)
    }

    /// The endpoint reads HTTP with HTTPWire's budgets: oversized headers and bodies are
    /// answered (431, 413), recorded as rejections, and never processed.
    @Test func oversizedHTTPIsAnsweredAndRecorded() async throws {
        let endpoint = try Self.endpoint()
        defer { endpoint.stop() }
        let identity = try PKCS12Bundle.load(path: Fixtures.pki("org-auth.p12"), passphrase: Passphrase.read(file: TestPaths.testPKIPassphraseFile))
        let tls = TLSConfiguration(trustedCAFile: Fixtures.pki("ca.pem"), identity: identity, timeout: 10)
        func exchange(_ raw: String) async throws -> String {
            let stream = try await TLSStream.connect(host: "localhost", port: endpoint.port, configuration: tls)
            defer { stream.close() }
            try await stream.write(raw)
            var answer = Data()
            while let chunk = try? await stream.read(maxLength: 65_536), !chunk.isEmpty { answer.append(chunk) }
            return String(decoding: answer, as: UTF8.self)
        }
        let headers = try await exchange("POST /dmp/repository HTTP/1.1\r\nHost: localhost\r\nX-Big: \(String(repeating: "a", count: 70_000))\r\n\r\n")
        #expect(headers.hasPrefix("HTTP/1.1 431 "))
        let body = try await exchange("POST /dmp/repository HTTP/1.1\r\nHost: localhost\r\nContent-Length: 300000000\r\n\r\n")
        #expect(body.hasPrefix("HTTP/1.1 413 "))
        #expect(endpoint.requestCount == 0)
        #expect(endpoint.rejections == ["HTTP: request headers larger than 65536 bytes", "HTTP: request body larger than 268435456 bytes"])
    }

    @Test func wrongClientCertificateIsAPermanentFailure() async throws {
        // Caught before sending: the certificate does not chain to the configured anchors.
        let passphrase = try Passphrase.read(file: TestPaths.testPKIPassphraseFile)
        let trust = try TrustStore(anchorsFile: Fixtures.pki("ca.pem"), crlFiles: [Fixtures.pki("ca.crl.pem")])
        for name in ["unknown-auth", "expired-auth", "revoked-auth"] {
            let bundle = try PKCS12Bundle.load(path: Fixtures.pki("\(name).p12"), passphrase: passphrase)
            #expect(throws: DMPError.self, "\(name)") { try DMPClient.checkAuthenticationCertificate(bundle, trustStore: trust) }
        }
        try DMPClient.checkAuthenticationCertificate(try PKCS12Bundle.load(path: Fixtures.pki("org-auth.p12"), passphrase: passphrase), trustStore: trust)

        // On the wire, TLS 1.2: the server refuses it in the handshake → permanent failure.
        let endpoint = try Self.endpoint()
        defer { endpoint.stop() }
        let tls12 = TLSClientOptions(caBundle: Fixtures.pki("ca.pem"), clientIdentity: .pkcs12(Fixtures.pki("unknown-auth.p12"),
                                     passphrase: TLSPassphrase(try TestPaths.testPKIPassphrase())), maximumVersion: .v1_2)
        let client = try DMPClient(endpoint: endpoint.url, tls: tls12)
        let result = await client.send(try Self.request(.dischargeLetter, to: endpoint))
        guard case .failed = result.outcome else { Issue.record("TLS 1.2: \(result.outcome)"); return }
        // An expired certificate of the right CA, too.
        let expired12 = TLSClientOptions(caBundle: Fixtures.pki("ca.pem"), clientIdentity: .pkcs12(Fixtures.pki("expired-auth.p12"),
                                         passphrase: TLSPassphrase(try TestPaths.testPKIPassphrase())), maximumVersion: .v1_2)
        let expired = await (try DMPClient(endpoint: endpoint.url, tls: expired12)).send(try Self.request(.dischargeLetter, to: endpoint))
        guard case .failed = expired.outcome else { Issue.record("expired, TLS 1.2: \(expired.outcome)"); return }
        // TLS 1.3: refused after the handshake; never accepted either way.
        let late = await (try Self.client(endpoint, identity: "unknown-auth")).send(try Self.request(.dischargeLetter, to: endpoint))
        #expect(!late.outcome.isDone)
        #expect(endpoint.requestCount == 0)
    }

    @Test(arguments: [("unknown-ca.pem", "server-localhost"), ("ca.pem", "expired-server"), ("ca.pem", "unknown-server")])
    func untrustedServerIsAPermanentFailure(ca: String, server: String) async throws {
        let endpoint = try Self.endpoint(server: server)
        defer { endpoint.stop() }
        let result = await (try Self.client(endpoint, ca: ca)).send(try Self.request(.dischargeLetter, to: endpoint))
        guard case .failed(_, let codes) = result.outcome else { Issue.record("\(result.outcome)"); return }
        #expect(codes == ["peerCertificate"], "\(result.outcome)")
        #expect(endpoint.requestCount == 0)
    }

    @Test func failureModesMapToTheRightDecision() async throws {
        let endpoint = try Self.endpoint()
        defer { endpoint.stop() }
        let client = try Self.client(endpoint, total: .seconds(3))
        func send() async throws -> SubmissionOutcome { await client.send(try Self.request(.imagingReport, to: endpoint)).outcome }

        endpoint.fail(.httpStatus(503, retryAfter: 7))
        #expect(try await send() == .retry(after: .seconds(7), reason: "HTTP 503 without a readable SOAP body"))

        // The HTTP-date form, read against the clock: a wait of about 90 s, surfaced on the result.
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        endpoint.fail(.httpStatusRetryAfter(429, header: formatter.string(from: Date().addingTimeInterval(90))))
        let dated = await client.send(try Self.request(.imagingReport, to: endpoint))
        let wait = try #require(dated.retryAfter, "\(dated.outcome)")
        #expect(wait >= .seconds(85) && wait <= .seconds(91), "\(wait)")
        #expect(dated.httpStatus == 429)

        endpoint.fail(.soapFault(code: "Receiver", reason: "maintenance"))
        #expect(try await send() == .retry(after: nil, reason: "SOAP fault Receiver: maintenance"))

        endpoint.fail(.soapFault(code: "Sender", reason: "requête invalide"))
        guard case .failed(_, ["Sender"]) = try await send() else { Issue.record("Sender fault not permanent"); return }

        endpoint.fail(.registryError(code: "XDSRegistryMetadataError"))
        guard case .failed(_, ["XDSRegistryMetadataError"]) = try await send() else { Issue.record("metadata error not permanent"); return }

        endpoint.fail(.partialSuccess(code: "XDSRegistryMetadataError"))
        guard case .failed(_, ["XDSRegistryMetadataError"]) = try await send() else { Issue.record("PartialSuccess with an error not permanent"); return }

        endpoint.fail(.registryError(code: "XDSRepositoryBusy"))
        guard case .retry = try await send() else { Issue.record("busy not retried"); return }

        endpoint.fail(.slow(seconds: 5))
        let slow = try await send()
        guard case .retry(_, let reason) = slow, reason.contains("timed out") || reason.contains("timeout") else { Issue.record("slow: \(slow)"); return }

        endpoint.fail(.closeMidResponse)
        let cut = try await send()
        guard case .retry = cut else { Issue.record("close mid-response: \(cut)"); return }

        // And after the failures, a normal request goes through.
        #expect(try await send() == .done(alreadyPresent: false, warnings: []))
    }
}
