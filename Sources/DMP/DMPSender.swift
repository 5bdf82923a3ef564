import CDA
import CurlKit
import Foundation
import IHE
import OpenSSLKit
import PasserelleCore
import Signing

/// The DMP stage as the service calls it: one call per document, never throws, returns the
/// decision (``SubmissionOutcome``: done — including a resend the DMP already holds —,
/// retry after a delay, or failed for good) with the raw response for the journal.
///
/// A new document or a replacement (action `new` / `replace`, RPLC to the previous entry)
/// goes as ITI-41; a deletion (action `delete`) as the DMP's TD3.3c, an ITI-57 status update
/// to Deleted. When the client has a TD0.2 status endpoint, the patient's DMP is checked
/// first: no DMP, a closed DMP or a refusal stops the document with a `TD0.2:` failure code.
public final class DMPSender: Sendable {
    public let client: DMPClient
    public let mapper: DocumentEntryMapper
    public let requests: ITI41RequestBuilder
    public let vihf: VIHFAssertionBuilder
    /// Ask TD0.2 before each request.
    public let checksPatientStatus: Bool

    /// - Parameter checksPatientStatus: defaults to whether the client has a status endpoint.
    public init(client: DMPClient, mapper: DocumentEntryMapper, requests: ITI41RequestBuilder, vihf: VIHFAssertionBuilder,
                checksPatientStatus: Bool? = nil) {
        self.client = client
        self.mapper = mapper
        self.requests = requests
        self.vihf = vihf
        self.checksPatientStatus = checksPatientStatus ?? (client.statusEndpoint != nil)
    }

    /// From key material already loaded (the service loads it once): refuses an
    /// authentication certificate that cannot work (see
    /// ``DMPClient/checkAuthenticationCertificate(_:trustStore:at:)``) and a signing
    /// certificate that cannot sign now; the client takes the authentication key from memory
    /// and the signers the signing bundle, neither opens a .p12.
    public convenience init(settings: DMPClientSettings, keys: KeyMaterial, submission: SubmissionSettings,
                            vihf vihfConfiguration: VIHFConfiguration) throws(DMPError) {
        guard let authentication = keys.authentication else { throw .certificate("[certificates] authentication is not configured") }
        try DMPClient.checkAuthenticationCertificate(authentication, trustStore: keys.trustStore)
        let identity: TLSClientIdentity
        do { identity = try .inMemory(authentication) } catch { throw .certificate("\(authentication.source): \(error)") }
        let client = try DMPClient(settings: settings, identity: identity)
        let credentials: SigningCredentials
        do { credentials = try SigningCredentials(keys) } catch { throw .signing("\(error)") }
        try Self.checkSigningCertificate(credentials, file: keys.signing?.source ?? "[certificates] signing")
        self.init(client: client, mapper: DocumentEntryMapper(settings: submission),
                  requests: ITI41RequestBuilder(endpoint: client.endpoint, signer: SubmissionSetSigner(credentials: credentials)),
                  vihf: VIHFAssertionBuilder(configuration: vihfConfiguration, credentials: credentials))
    }

    /// From the `[dmp]`, `[structure]`, `[certificates]` and `[vihf]` sections, loading the
    /// key material itself (tests and tools; `passerelle run` maps the configuration in its
    /// wiring and passes the key material it loaded once).
    public convenience init(configuration c: PasserelleConfiguration,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws(DMPError) {
        let keys: KeyMaterial
        do { keys = try KeyMaterial.load(KeyMaterialSource(c.certificates), environment: environment) } catch { throw .certificate("\(error)") }
        let vihf: VIHFConfiguration
        do { vihf = try VIHFConfiguration(keys: c.vihf?.values ?? [:]) } catch { throw .metadata("[vihf]: \(error)") }
        try self.init(settings: try DMPClientSettings(c.dmp), keys: keys, submission: SubmissionSettings(c.structure), vihf: vihf)
    }

    /// Refuses to start with a signing certificate that cannot sign now: every document would
    /// otherwise wait for a certificate the operator does not know is missing.
    public static func checkSigningCertificate(_ credentials: SigningCredentials, file: String, at date: Date = Date()) throws(DMPError) {
        do { try credentials.checkUsable(at: date) } catch {
            let format = ISO8601DateFormatter()
            let validity = credentials.certificateValidity
            throw .signingCertificate("\(file) (\(credentials.certificateSubject), valid from \(format.string(from: validity.lowerBound)) "
                                      + "to \(format.string(from: validity.upperBound))) cannot sign: \(error.description). "
                                      + "Install a valid signing certificate in [certificates] signing, then start the service")
        }
    }

    /// A signing failure as a DMPError: an unusable certificate is `signingCertificate` (the
    /// document waits), anything else `signing` (the document is at fault).
    static func signingError(_ error: any Error, prefix: String = "") -> DMPError {
        switch error as? SigningError {
        case .certificateNotValidAt?, .certificateRejected?: .signingCertificate(prefix + "\(error)")
        default: .signing(prefix + "\(error)")
        }
    }

    /// Sends `document` (built from `metadata`): ITI-41, with RPLC when it replaces another.
    public func send(_ document: CDADocument, metadata: DocumentMetadata, at time: Date = Date()) async -> SubmissionResult {
        await submit(prepare(document, metadata: metadata, at: time))
    }

    /// Deletes `metadata.parentID` from the DMP (TD3.3c: ITI-57, Approved → Deleted).
    public func delete(_ metadata: DocumentMetadata, at time: Date = Date()) async -> SubmissionResult {
        await submit(prepareDeletion(metadata, at: time))
    }

    /// A request built and signed, ready for the network (or why it cannot be sent). Split
    /// from the exchange so that the CPU-bound part (mapping, VIHF and submission-set
    /// signatures, MTOM) can be measured apart from the wait for the DMP.
    public enum Prepared: Sendable {
        case provideAndRegister(ITI41Request, ins: INS)
        case deletion(ITI57Request, ins: INS)
        case notPrepared(SubmissionResult)
    }

    /// Builds and signs the ITI-41 request of `document`; no I/O.
    public func prepare(_ document: CDADocument, metadata: DocumentMetadata, at time: Date = Date()) -> Prepared {
        do {
            guard let ins = document.ins else {
                throw DMPError.metadata("document \(document.id): no INS in the CDA header; the DMP only accepts a qualified (QUAL) identity")
            }
            let request = try requests.build(try mapper.submission(cda: document, metadata: metadata, at: time),
                                             vihf: try assertion(ins, metadata: metadata, at: time), at: time)
            return .provideAndRegister(request, ins: ins)
        } catch {
            return .notPrepared(Self.notPrepared(error))
        }
    }

    /// Builds and signs the ITI-57 deletion of `metadata.parentID`; no I/O.
    public func prepareDeletion(_ metadata: DocumentMetadata, at time: Date = Date()) -> Prepared {
        do {
            let ins = try DocumentEntryMapper.qualifiedINS(metadata, what: "deletion of \(metadata.parentID?.description ?? "?")")
            let request = try requests.build(try mapper.deletion(metadata: metadata, at: time),
                                             vihf: try assertion(ins, metadata: metadata, at: time), registry: client.registryEndpoint)
            return .deletion(request, ins: ins)
        } catch {
            return .notPrepared(Self.notPrepared(error))
        }
    }

    /// The exchange: TD0.2 first when configured, then the request.
    public func submit(_ prepared: Prepared) async -> SubmissionResult {
        switch prepared {
        case .notPrepared(let result):
            return result
        case .provideAndRegister(let request, let ins):
            if let stopped = await checkPatient(ins) { return stopped }
            return await client.send(request)
        case .deletion(let request, let ins):
            if let stopped = await checkPatient(ins) { return stopped }
            return await client.send(request)
        }
    }

    func assertion(_ ins: INS, metadata: DocumentMetadata, at time: Date) throws -> Data {
        guard let author = metadata.author else { throw DMPError.metadata("no author: the VIHF names the professional") }
        do { return try vihf.assertion(patient: ins, author: try VIHFAuthor(author), issueInstant: time) } catch let error as DMPError {
            throw error
        } catch { throw Self.signingError(error, prefix: "VIHF: ") }
    }

    /// The TD0.2 answer when it stops the document (or the question failed), nil to go on.
    func checkPatient(_ ins: INS) async -> SubmissionResult? {
        guard checksPatientStatus else { return nil }
        var (status, result) = await client.patientStatus(ins)
        guard let status else { return result }
        guard let stop = status.stopOutcome else { return nil }
        result.outcome = stop
        return result
    }

    static func notPrepared(_ error: any Error) -> SubmissionResult {
        let dmp = error as? DMPError ?? (error as? IHEError).map(DMPError.init) ?? .metadata("\(error)")
        // A certificate that expired (or was revoked) while the service runs is not the
        // document's fault: it waits and is retried (the target alert names the certificate)
        // until a valid certificate is installed and the service restarted.
        if case .signingCertificate = dmp {
            return SubmissionResult(outcome: .retry(after: nil, reason: dmp.description), httpStatus: nil, rawResponse: Data(), contentType: nil)
        }
        return SubmissionResult(outcome: .failed(reason: dmp.description, codes: [dmp.code]), httpStatus: nil, rawResponse: Data(), contentType: nil)
    }
}

extension DMPError {
    /// A short stable code for the journal: `metadata`, `signing`, `certificate`, …
    public var code: String {
        switch self {
        case .metadata: "metadata"
        case .signing: "signing"
        case .signingCertificate: "signingCertificate"
        case .malformedResponse: "malformedResponse"
        case .certificate: "certificate"
        case .transport: "transport"
        }
    }
}
