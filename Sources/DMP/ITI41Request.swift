import Foundation
import IHE
import OpenSSLKit
import PasserelleCore
import Signing

/// A ready-to-send ITI-41 Provide and Register Document Set-b request.
public struct ITI41Request: Sendable {
    public static let action = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
    public static let responseAction = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse"

    /// `wsa:MessageID` (`urn:uuid:…`).
    public let messageID: String
    /// The submission, with the signature entry appended to nothing: see ``signature``.
    public let submission: SubmissionSetMetadata
    /// The DocumentEntry of the submission set signature.
    public let signature: DocumentEntryMetadata
    /// The SOAP 1.2 envelope (root MIME part).
    public let envelope: Data
    /// The MTOM body.
    public let body: MTOMMessage
}

/// A ready-to-send ITI-57 Update Document Set request (metadata only).
public struct ITI57Request: Sendable {
    public static let action = "urn:ihe:iti:2010:UpdateDocumentSet"
    public static let responseAction = "urn:ihe:iti:2010:UpdateDocumentSetResponse"

    public let messageID: String
    public let update: StatusUpdateMetadata
    /// The SOAP 1.2 envelope: the whole HTTP body.
    public let envelope: Data
    /// The HTTP `Content-Type`.
    public var contentType: String { "application/soap+xml; charset=UTF-8; action=\"\(Self.action)\"" }
}

/// Builds ITI-41 requests: ebRIM metadata, the XAdES submission set signature as an extra
/// document with its `signs` association, SOAP 1.2 + WS-Addressing + WS-Security (VIHF),
/// MTOM packaging.
public struct ITI41RequestBuilder: Sendable {
    public var endpoint: URL
    public var signer: SubmissionSetSigner

    public init(endpoint: URL, signer: SubmissionSetSigner) {
        self.endpoint = endpoint
        self.signer = signer
    }

    /// - Parameters:
    ///   - vihf: the signed VIHF `saml2:Assertion` (``VIHFAssertionBuilder``), placed as is in `wsse:Security`.
    public func build(_ submission: SubmissionSetMetadata, vihf: Data, at time: Date = Date()) throws(DMPError) -> ITI41Request {
        let package: String
        do { package = try ProvideAndRegisterWriter.registryPackage(submission) } catch { throw DMPError(error) }
        var manifest: [ManifestItem] = []
        let algorithm: DigestAlgorithm = signer.digestAlgorithm == .sha1 ? .sha1 : .sha256
        for entry in submission.entries {
            // A digest the caller already has (SHA-256 of the built CDA, SHA-1 as the XDS hash)
            // is taken as is: the document is not hashed a second time.
            let known: Data? = algorithm == .sha256 ? entry.sha256 : entry.hash.flatMap { Data(hexString: $0) }
            switch entry.content {
            case .data(let d):
                manifest.append(ManifestItem(uniqueId: entry.uniqueId, content: known.map { .digest($0) } ?? .bytes(d)))
            case .file(let slice):
                // Hashed as a whole file: an XDS document is always a whole file (the built CDA).
                guard slice.offset == 0 else { throw .metadata("\(slice.url.lastPathComponent): an XDS document must be a whole file") }
                if let known {
                    manifest.append(ManifestItem(uniqueId: entry.uniqueId, content: .digest(known)))
                    continue
                }
                do {
                    manifest.append(ManifestItem(uniqueId: entry.uniqueId, content: .digest(try Digest.hash(fileAt: slice.url, algorithm: algorithm))))
                } catch { throw .metadata("cannot read \(slice.url.lastPathComponent): \(error)") }
            }
        }
        let signatureData: Data
        do {
            signatureData = try signer.sign(submissionSet: ManifestItem(uniqueId: submission.uniqueId, content: .bytes(Data(package.utf8))),
                                            documents: manifest, signingTime: time)
        } catch { throw DMPSender.signingError(error) }
        let signature = signatureEntry(for: submission, data: signatureData)

        let messageID = "urn:uuid:\(UUID.random().uuidString.lowercased())"
        let request: String
        do { request = try ProvideAndRegisterWriter.request(submission, registryPackage: package, signature: signature) } catch { throw DMPError(error) }
        let envelope = try Self.envelope(request: request, vihf: vihf, action: ITI41Request.action, to: endpoint.absoluteString, messageID: messageID)
        let attachments = (submission.entries + [signature]).map {
            MTOMMessage.Attachment(contentID: ProvideAndRegisterWriter.contentID(of: $0), contentType: $0.mimeType, content: $0.content)
        }
        return ITI41Request(messageID: messageID, submission: submission, signature: signature, envelope: envelope,
                            body: MTOMMessage(envelope: envelope, attachments: attachments, action: ITI41Request.action))
    }

    /// The signature's DocumentEntry: DSG codes from ``SignatureDocumentMetadata``, context
    /// codes from the first document, the submission set's author and patient.
    func signatureEntry(for s: SubmissionSetMetadata, data: Data) -> DocumentEntryMetadata {
        let first = s.entries[0]
        return DocumentEntryMetadata(
            uniqueId: DocumentEntryMapper.generatedOID(root: s.sourceId), patientId: s.patientId,
            sourcePatientId: first.sourcePatientId, mimeType: SignatureDocumentMetadata.mimeType,
            creationTime: s.submissionTime, languageCode: SignatureDocumentMetadata.languageCode, authors: [s.author],
            classCode: SignatureDocumentMetadata.classCode, typeCode: SignatureDocumentMetadata.typeCode,
            formatCode: SignatureDocumentMetadata.formatCode,
            healthcareFacilityTypeCode: first.healthcareFacilityTypeCode, practiceSettingCode: first.practiceSettingCode,
            confidentialityCodes: SignatureDocumentMetadata.confidentialityCodes, eventCodes: [SignatureDocumentMetadata.eventCode],
            size: data.count, hash: Digest.sha1(data).hexString, content: .data(data))
    }

    /// An ITI-57 Update Document Set (e.g. the TD3.3c deletion from
    /// ``DocumentEntryMapper/deletion(metadata:at:)``), addressed to `registry`: plain SOAP 1.2
    /// (no document travels), the same WS-Addressing and VIHF header as ITI-41.
    public func build(_ update: StatusUpdateMetadata, vihf: Data, registry: URL? = nil) throws(DMPError) -> ITI57Request {
        let messageID = "urn:uuid:\(UUID.random().uuidString.lowercased())"
        let body: String
        do { body = try ProvideAndRegisterWriter.updateRequest(update) } catch { throw DMPError(error) }
        let envelope = try Self.envelope(request: body, vihf: vihf, action: ITI57Request.action,
                                         to: (registry ?? endpoint).absoluteString, messageID: messageID)
        return ITI57Request(messageID: messageID, update: update, envelope: envelope)
    }

    static func envelope(request: String, vihf: Data, action: String, to: String, messageID: String) throws(DMPError) -> Data {
        let e = DMPError.escaped
        var assertion = String(decoding: vihf, as: UTF8.self)
        if assertion.hasPrefix("<?xml"), let end = assertion.range(of: "?>") {
            assertion = String(assertion[end.upperBound...])  // the assertion's signature does not cover the declaration
        }
        let text = """
        <?xml version="1.0" encoding="UTF-8"?>
        <soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://www.w3.org/2005/08/addressing">\
        <soap:Header>\
        <wsa:Action soap:mustUnderstand="true">\(action)</wsa:Action>\
        <wsa:MessageID soap:mustUnderstand="true">\(try e(messageID))</wsa:MessageID>\
        <wsa:ReplyTo soap:mustUnderstand="true"><wsa:Address>http://www.w3.org/2005/08/addressing/anonymous</wsa:Address></wsa:ReplyTo>\
        <wsa:To soap:mustUnderstand="true">\(try e(to))</wsa:To>\
        <wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" soap:mustUnderstand="true">\
        \(assertion)</wsse:Security>\
        </soap:Header>\
        <soap:Body>\(request)</soap:Body></soap:Envelope>
        """
        return Data(text.utf8)
    }
}

extension VIHFAuthor {
    /// The VIHF author of a professional: national id and "Prefix FAMILY Given", roles
    /// from the configuration's default.
    public init(_ p: HealthProfessional) throws(DMPError) {
        let id: ProfessionalIdentifier?
        do { id = try p.identifier() } catch { throw .metadata("author identifier: \(error)") }
        guard let id else { throw .metadata("the VIHF needs an author with an RPPS or ADELI") }
        let name = [p.prefix, p.familyName, p.givenName].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " ")
        self.init(identifier: id.nationalID, displayName: name)
    }
}
