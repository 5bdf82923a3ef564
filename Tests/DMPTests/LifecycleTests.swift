import IHE
import CDA
import CurlKit
import DMP
import Foundation
import OpenSSLKit
import PasserelleCore
import Signing
import Testing
import TestEndpoints
import TestSupport

/// Replacement, deletion and the TD0.2 check through ``DMPSender``, end to end over mutual
/// TLS against the local endpoint.
@Suite(.serialized) struct LifecycleTests {
    static func sender(_ endpoint: DMPTestEndpoint, statusCheck: Bool = false) throws -> DMPSender {
        let tls = TLSClientOptions(caBundle: Fixtures.pki("ca.pem"),
                                   clientIdentity: .pkcs12(Fixtures.pki("org-auth.p12"), passphrase: TLSPassphrase(try TestPaths.testPKIPassphrase())))
        let client = try DMPClient(endpoint: endpoint.url, tls: tls, timeouts: CurlTimeouts(connect: .seconds(5), total: .seconds(20)),
                                   registryEndpoint: endpoint.registryURL, statusEndpoint: statusCheck ? endpoint.statusURL : nil)
        var requests = try Fixtures.requestBuilder()
        requests.endpoint = endpoint.url
        return DMPSender(client: client, mapper: Fixtures.mapper, requests: requests, vihf: try Fixtures.vihfBuilder())
    }

    static func deletion(of id: InstanceIdentifier) -> DocumentMetadata {
        var m = Fixtures.metadata(kind: .dischargeLetter)
        m.action = .delete
        m.parentID = id
        return m
    }

    static let done = SubmissionOutcome.done(alreadyPresent: false, warnings: [])

    static func failureCodes(_ outcome: SubmissionOutcome) -> [String]? {
        if case .failed(_, let codes) = outcome { codes } else { nil }
    }

    @Test func replacementDeprecatesThePreviousVersion() async throws {
        let dump = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dump) }
        let endpoint = try EndpointTests.endpoint(dump: dump)
        defer { endpoint.stop() }
        let sender = try Self.sender(endpoint)
        let m1 = Fixtures.metadata(kind: .biologyReport)
        let v1 = try Fixtures.cda(m1)
        #expect(await sender.send(v1, metadata: m1).outcome == Self.done)
        let m2 = Fixtures.metadata(kind: .biologyReport, replacing: v1)
        let v2 = try Fixtures.cda(m2)
        let replaced = await sender.send(v2, metadata: m2)
        #expect(replaced.outcome == Self.done, "\(replaced.outcome) \(endpoint.rejections)")
        #expect(endpoint.stored(v1.id.description)?.status == .deprecated)
        #expect(endpoint.stored(v2.id.description)?.status == .approved)
        // The replacement as it travelled: RPLC to v1's entry, and VALID for the shared checker.
        let body = dump.appendingPathComponent("0002.mime")
        let text = String(decoding: try Data(contentsOf: body), as: UTF8.self)
        let rplc = "associationType=\"urn:ihe:iti:2007:AssociationType:RPLC\""
        #expect(text.contains(rplc))
        #expect(text.contains("targetObject=\"\(DocumentEntryMapper.entryUUID(uniqueId: v1.id.description))\""))
        let contentType = try String(contentsOf: dump.appendingPathComponent("0002.content-type"), encoding: .utf8)
        let validated = try XDSValidate.run(body: body, contentType: contentType)
        #expect(validated.succeeded, "\(validated.stdout)\(validated.stderr)")

        // A resend of the replacement (lost answer) is done; replacing v1 again is refused.
        #expect(await sender.send(v2, metadata: m2).outcome == .done(alreadyPresent: true, warnings: []))
        let m3 = Fixtures.metadata(kind: .biologyReport, replacing: v1)
        #expect(Self.failureCodes(await sender.send(try Fixtures.cda(m3), metadata: m3).outcome) == ["XDSRegistryMetadataError"])
        // Replacing a document the DMP never had.
        let unknown = try Fixtures.cda(Fixtures.metadata(kind: .biologyReport))
        let m4 = Fixtures.metadata(kind: .biologyReport, replacing: unknown)
        #expect(Self.failureCodes(await sender.send(try Fixtures.cda(m4), metadata: m4).outcome) == ["XDSUnresolvedReferenceException"])
        #expect(endpoint.stored(v1.id.description)?.status == .deprecated)
    }

    @Test func deletionSetsTheDeletedStatus() async throws {
        let dump = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dump) }
        let endpoint = try EndpointTests.endpoint(dump: dump)
        defer { endpoint.stop() }
        let sender = try Self.sender(endpoint)
        let m = Fixtures.metadata(kind: .imagingReport)
        let document = try Fixtures.cda(m)
        #expect(await sender.send(document, metadata: m).outcome == Self.done)

        let deleted = await sender.delete(Self.deletion(of: document.id))
        #expect(deleted.outcome == Self.done, "\(deleted.outcome) \(endpoint.rejections)")
        #expect(deleted.responseText.contains("ResponseStatusType:Success"))
        #expect(endpoint.stored(document.id.description)?.status == .deleted)
        // The request as it travelled: plain SOAP 1.2 ITI-57 to the registry.
        let contentType = try String(contentsOf: dump.appendingPathComponent("0002.content-type"), encoding: .utf8)
        #expect(contentType.hasPrefix("application/soap+xml"))
        #expect(contentType.contains("urn:ihe:iti:2010:UpdateDocumentSet"))
        let text = String(decoding: try Data(contentsOf: dump.appendingPathComponent("0002.mime")), as: UTF8.self)
        #expect(text.contains("urn:asip:ci-sis:2010:StatusType:Deleted"))
        #expect(text.contains("targetObject=\"\(DocumentEntryMapper.entryUUID(uniqueId: document.id.description))\""))

        // Deleting again (a resend after a lost answer) is done; a document the DMP never had is not.
        #expect(await sender.delete(Self.deletion(of: document.id)).outcome == Self.done)
        let never = await sender.delete(Self.deletion(of: SampleMetadata.oidDocumentID(root: Fixtures.structureOID)))
        #expect(Self.failureCodes(never.outcome) == ["XDSUnresolvedReferenceException"])
        // A deleted document cannot be replaced.
        let replacement = Fixtures.metadata(kind: .imagingReport, replacing: document)
        #expect(Self.failureCodes(await sender.send(try Fixtures.cda(replacement), metadata: replacement).outcome) == ["XDSRegistryMetadataError"])
    }

    @Test func onlyTheSendingStructureMayDelete() async throws {
        let endpoint = try EndpointTests.endpoint()
        defer { endpoint.stop() }
        let sender = try Self.sender(endpoint)
        let m = Fixtures.metadata(kind: .prescription)
        let document = try Fixtures.cda(m)
        #expect(await sender.send(document, metadata: m).outcome == Self.done)
        let other = DMPSender(client: sender.client,
                              mapper: DocumentEntryMapper(settings: SubmissionSettings(sourceId: "1.2.250.1.999.2", structure: Fixtures.structure)),
                              requests: sender.requests, vihf: sender.vihf)
        #expect(Self.failureCodes(await other.delete(Self.deletion(of: document.id)).outcome) == ["XDSMetadataUpdateError"])
        #expect(endpoint.stored(document.id.description)?.status == .approved)
    }

    @Test func patientStatusStopsTheDocumentWithoutRetry() async throws {
        let endpoint = try EndpointTests.endpoint()
        defer { endpoint.stop() }
        let sender = try Self.sender(endpoint, statusCheck: true)
        #expect(sender.checksPatientStatus)
        let m = Fixtures.metadata(kind: .operativeReport)
        let document = try Fixtures.cda(m)
        let ins = try #require(document.ins)
        let cases: [(DMPPatientStatus, String)] = [(.noDMP, "TD0.2:noDMP"), (.closed, "TD0.2:closed"),
                                                   (.refused("opposition du patient"), "TD0.2:refused")]
        for (status, code) in cases {
            endpoint.setPatientStatus(status, ins: ins)
            let result = await sender.send(document, metadata: m)
            #expect(Self.failureCodes(result.outcome) == [code], "\(status): \(result.outcome)")
            #expect(result.patientStatus == status)
            #expect(!result.responseText.isEmpty)  // the TD0.2 answer, for the journal
            let deletion = await sender.delete(Self.deletion(of: document.id))
            #expect(Self.failureCodes(deletion.outcome) == [code])
        }
        let refused = await sender.send(document, metadata: m).outcome
        guard case .failed(let reason, _) = refused else { Issue.record("refused: \(refused)"); return }
        #expect(reason.contains("opposition du patient"))
        #expect(endpoint.storedDocuments.isEmpty)

        // The status service failing is a retry, like the DMP itself failing.
        endpoint.setPatientStatus(.active, ins: ins)
        endpoint.fail(.httpStatus(503, retryAfter: 10))
        #expect(await sender.send(document, metadata: m).outcome == .retry(after: .seconds(10), reason: "TD0.2: HTTP 503"))
        let sent = await sender.send(document, metadata: m)
        #expect(sent.outcome == Self.done)
        #expect(sent.patientStatus == nil)  // the result is the ITI-41 answer

        // Without the check, the DMP itself refuses a patient without DMP: failed, not retried.
        endpoint.setPatientStatus(.noDMP, ins: ins)
        let unchecked = DMPSender(client: sender.client, mapper: sender.mapper, requests: sender.requests, vihf: sender.vihf, checksPatientStatus: false)
        let other = Fixtures.metadata(kind: .operativeReport)
        #expect(Self.failureCodes(await unchecked.send(try Fixtures.cda(other), metadata: other).outcome) == ["XDSUnknownPatientId"])
    }

    @Test func preparationErrorsAreFailures() async throws {
        let endpoint = try EndpointTests.endpoint()
        defer { endpoint.stop() }
        let sender = try Self.sender(endpoint)
        var m = Fixtures.metadata(kind: .prescription)
        m.patient.identityStatus = .validated
        let document = try Fixtures.cda(m)
        let result = await sender.send(document, metadata: m)
        #expect(Self.failureCodes(result.outcome) == ["metadata"])
        var noParent = Self.deletion(of: document.id)
        noParent.parentID = nil
        #expect(Self.failureCodes(await sender.delete(noParent).outcome) == ["metadata"])
        #expect(endpoint.requestCount == 0)
    }

    static func configuration(_ endpoint: DMPTestEndpoint, authentication: String = "org-auth", statusCheck: Bool) throws -> PasserelleConfiguration {
        let dmp = """
        [dmp]
        enabled = true
        endpoint = "\(endpoint.url.absoluteString)"
        registry_endpoint = "\(endpoint.registryURL.absoluteString)"
        \(statusCheck ? "status_endpoint = \"\(endpoint.statusURL.absoluteString)\"" : "")
        timeout_seconds = 20
        max_connections = 2
        """
        var text = TestConfiguration.withTestPKI(authentication: authentication).replacingOccurrences(of: "[dmp]\nenabled = false", with: dmp)
        text += "\n[vihf]\n" + Fixtures.vihfKeys.sorted { $0.key < $1.key }.map { "\($0.key) = \"\($0.value)\"" }.joined(separator: "\n") + "\n"
        return try PasserelleConfiguration.parse(text, file: "/tmp/passerelle-test/passerelle.toml")
    }

    @Test func senderFromTheConfiguration() async throws {
        let endpoint = try EndpointTests.endpoint()
        defer { endpoint.stop() }
        let configuration = try Self.configuration(endpoint, statusCheck: true)
        #expect(configuration.dmp.registryEndpoint == endpoint.registryURL)
        let sender = try DMPSender(configuration: configuration)
        #expect(sender.checksPatientStatus)
        let m = Fixtures.metadata(kind: .dischargeLetter)
        let document = try Fixtures.cda(m)
        let sent = await sender.send(document, metadata: m)
        #expect(sent.outcome == Self.done, "\(sent.outcome) \(endpoint.rejections)")
        #expect(await sender.delete(Self.deletion(of: document.id)).outcome == Self.done)
        #expect(endpoint.stored(document.id.description)?.status == .deleted)
        #expect(!(try DMPSender(configuration: try Self.configuration(endpoint, statusCheck: false))).checksPatientStatus)
        // An authentication certificate that cannot work is refused before anything is sent.
        for name in ["expired-auth", "revoked-auth", "unknown-auth"] {
            #expect(throws: DMPError.self, "\(name)") { try DMPSender(configuration: try Self.configuration(endpoint, authentication: name, statusCheck: false)) }
        }
    }
}
