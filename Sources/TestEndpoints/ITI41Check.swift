import DMP
import Foundation
import IHE
import OpenSSLKit
import PasserelleCore
import XMLKit

/// The strict checks of one ITI-41 request, in the order a DMP repository applies them.
struct ITI41Check {
    let endpoint: DMPTestEndpoint

    static let ns = [
        "soap": "http://www.w3.org/2003/05/soap-envelope", "wsa": "http://www.w3.org/2005/08/addressing",
        "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
        "saml2": "urn:oasis:names:tc:SAML:2.0:assertion", "xdsb": "urn:ihe:iti:xds-b:2007",
        "lcm": "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0", "rim": "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0",
        "xop": "http://www.w3.org/2004/08/xop/include", "hl7": "urn:hl7-org:v3",
    ]
    static let slots = ["creationTime", "languageCode", "sourcePatientId"]
    static let classifications = [
        "author": "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d", "classCode": "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a",
        "confidentialityCode": "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f", "formatCode": "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d",
        "healthcareFacilityTypeCode": "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1",
        "practiceSettingCode": "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead", "typeCode": "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983",
    ]

    struct Rejection: Error {
        var response: ITI41Response
        static func metadata(_ context: String) -> Rejection { metadata(code: "XDSRepositoryMetadataError", context) }
        static func metadata(code: String, _ context: String) -> Rejection {
            Rejection(response: .registry(RegistryResponse(status: .failure, errors: [RegistryError(code: code, context: context)])))
        }
        static func sender(_ subcode: String?, _ reason: String) -> Rejection {
            Rejection(response: .fault(SOAPFault(code: "Sender", subcodes: subcode.map { [$0] } ?? [], reason: reason)))
        }
    }

    func process(body: Data, contentType: String) -> (ITI41Response, String?, String) {
        var messageID: String?
        var action = ITI41Request.action
        do {
            let response = try check(body: body, contentType: contentType, messageID: &messageID, action: &action)
            return (response, messageID, action)
        } catch let rejection as Rejection {
            return (rejection.response, messageID, action)
        } catch {
            return (.fault(SOAPFault(code: "Receiver", reason: "\(error)")), messageID, action)
        }
    }

    /// The MIME framing: the root XML part and the attachments by Content-ID. A plain SOAP
    /// body (no MIME) is taken as the root alone (`mtom` false).
    func frame(body: Data, contentType: String) throws -> (root: Data, attachments: [String: Data], mtom: Bool) {
        if MIMEMultipart.mediaType(contentType) == "application/soap+xml" { return (body, [:], false) }
        guard MIMEMultipart.mediaType(contentType) == "multipart/related",
              MIMEMultipart.parameter("type", in: contentType)?.lowercased() == "application/xop+xml",
              MIMEMultipart.parameter("start-info", in: contentType)?.lowercased().contains("application/soap+xml") == true,
              let boundary = MIMEMultipart.parameter("boundary", in: contentType) else {
            throw Rejection.sender(nil, "MTOM is required: multipart/related; type=\"application/xop+xml\"; start-info=\"application/soap+xml\"")
        }
        let parts: [MIMEPart]
        do { parts = try MIMEMultipart.parse(body, boundary: boundary) } catch { throw Rejection.sender(nil, "\(error)") }
        let start = MIMEMultipart.parameter("start", in: contentType)?.trimmingCharacters(in: CharacterSet(charactersIn: "<>"))
        guard let rootIndex = parts.firstIndex(where: { start == nil || $0.contentID == start }) else {
            throw Rejection.sender(nil, "no MIME part matches start=\(start ?? "")")
        }
        guard MIMEMultipart.mediaType(parts[rootIndex].headers["content-type"] ?? "") == "application/xop+xml" else {
            throw Rejection.sender(nil, "the root part must be application/xop+xml")
        }
        var attachments: [String: Data] = [:]
        for (i, p) in parts.enumerated() where i != rootIndex {
            if let id = p.contentID { attachments[id] = p.body }
        }
        return (parts[rootIndex].body, attachments, true)
    }

    func check(body: Data, contentType: String, messageID: inout String?, action: inout String) throws -> ITI41Response {
        let (rootBody, attachments, mtom) = try frame(body: body, contentType: contentType)

        // SOAP 1.2 + WS-Addressing.
        let xml: XMLDocument
        do { xml = try XMLDocument.parse(rootBody, options: .init(maxBytes: 16 * 1024 * 1024)) } catch { throw Rejection.sender(nil, "envelope is not well-formed XML") }
        guard try xml.count("/soap:Envelope", namespaces: Self.ns) == 1 else { throw Rejection.sender("VersionMismatch", "not a SOAP 1.2 envelope") }
        messageID = try xml.string("normalize-space(/soap:Envelope/soap:Header/wsa:MessageID)", namespaces: Self.ns)
        let requested = try xml.string("normalize-space(/soap:Envelope/soap:Header/wsa:Action)", namespaces: Self.ns)
        guard requested == ITI41Request.action || requested == ITI57Request.action else {
            throw Rejection.sender("wsa:ActionNotSupported", "wsa:Action must be \(ITI41Request.action) or \(ITI57Request.action)")
        }
        action = requested
        guard messageID?.isEmpty == false else { throw Rejection.sender("wsa:InvalidAddressingHeader", "wsa:MessageID missing") }

        // VIHF.
        let assertions = try xml.nodes("/soap:Envelope/soap:Header/wsse:Security/saml2:Assertion", namespaces: Self.ns)
        guard assertions.count == 1 else { throw Rejection.sender("wsse:InvalidSecurityToken", "expected one VIHF assertion in wsse:Security") }
        let vihf = try endpoint.vihfVerifier.verify(try assertions[0].canonicalized())
        guard vihf.isValid else { throw Rejection.sender("wsse:FailedAuthentication", "VIHF rejected: \(vihf.problems.joined(separator: "; "))") }

        if action == ITI57Request.action { return try checkUpdate(xml) }
        guard mtom else { throw Rejection.sender(nil, "ITI-41 requires MTOM: multipart/related; type=\"application/xop+xml\"") }
        // Schema (documents replaced by a placeholder: the XSD only checks base64Binary).
        guard let requestNode = try xml.nodes("/soap:Envelope/soap:Body/xdsb:ProvideAndRegisterDocumentSetRequest", namespaces: Self.ns).first else {
            throw Rejection.sender(nil, "Body has no xdsb:ProvideAndRegisterDocumentSetRequest")
        }
        let standalone = String(decoding: try requestNode.canonicalized(), as: UTF8.self)
        let include = try NSRegularExpression(pattern: #"<([A-Za-z_][\w.-]*:)?Include\b[^>]*?(/>|>\s*</([A-Za-z_][\w.-]*:)?Include>)"#)
        let inlined = include.stringByReplacingMatches(in: standalone, range: NSRange(standalone.startIndex..., in: standalone), withTemplate: "AA==")
        let issues = endpoint.schema.validate(Data(inlined.utf8)).filter { $0.severity != .warning }
        guard issues.isEmpty else {
            throw Rejection.metadata("XSD: " + issues.prefix(3).map { "line \($0.line): \($0.message)" }.joined(separator: " | "))
        }

        // Metadata.
        let list = "/soap:Envelope/soap:Body/xdsb:ProvideAndRegisterDocumentSetRequest/lcm:SubmitObjectsRequest/rim:RegistryObjectList"
        let (setID, patientId, setUniqueId, sourceId) = try submissionSet(xml, list: list)
        guard endpoint.patientStatus(patientId) == .active else {
            throw Rejection.metadata(code: "XDSUnknownPatientId", "no active DMP for this patientId (\(endpoint.patientStatus(patientId)))")
        }
        func external(_ object: String, _ name: String) throws -> [String] { try Self.external(xml, object, name) }
        func slot(_ object: String, _ name: String) throws -> [String] { try Self.slot(xml, object, name) }

        var documents: [DMPTestEndpoint.StoredDocument] = []
        var signed: [String: Data] = [:]
        var signature: (entry: String, data: Data)?
        for entry in try xml.nodes("\(list)/rim:ExtrinsicObject", namespaces: Self.ns) {
            let id = entry.attribute("id") ?? ""
            let eo = "\(list)/rim:ExtrinsicObject[@id='\(id)']"
            guard entry.attribute("objectType") == XDS.stableDocumentEntry else { throw Rejection.metadata("\(id): not a stable DocumentEntry") }
            for s in Self.slots where try slot(eo, s).isEmpty { throw Rejection.metadata("\(id): slot \(s) is required") }
            for (name, scheme) in Self.classifications
            where try xml.count("\(eo)/rim:Classification[@classificationScheme='\(scheme)']", namespaces: Self.ns) == 0 {
                throw Rejection.metadata("\(id): classification \(name) is required")
            }
            let pid = try external(eo, "XDSDocumentEntry.patientId"), uid = try external(eo, "XDSDocumentEntry.uniqueId")
            guard pid.count == 1, uid.count == 1 else { throw Rejection.metadata("\(id): one patientId and one uniqueId are required") }
            guard pid[0] == patientId else { throw Rejection.metadata(code: "XDSPatientIdDoesNotMatch", "\(id): patientId differs from the SubmissionSet's") }
            guard try xml.count("\(list)/rim:Association[@associationType='\(XDS.AssociationType.hasMember)'][@sourceObject='\(setID)'][@targetObject='\(id)'][rim:Slot[@name='SubmissionSetStatus']/rim:ValueList/rim:Value='Original']", namespaces: Self.ns) == 1 else {
                throw Rejection.metadata("\(id): no HasMember association with SubmissionSetStatus=Original")
            }
            let href = try xml.string("string(/soap:Envelope/soap:Body/xdsb:ProvideAndRegisterDocumentSetRequest/xdsb:Document[@id='\(id)']/xop:Include/@href)", namespaces: Self.ns)
            let cid = href.hasPrefix("cid:") ? String(href.dropFirst(4)).removingPercentEncoding ?? "" : ""
            guard let data = attachments[cid] else { throw Rejection.metadata(code: "XDSMissingDocument", "\(id): no MIME part for its xdsb:Document") }
            let sha1 = Digest.sha1(data).map { String(format: "%02x", $0) }.joined()
            if let size = try slot(eo, "size").first, size != String(data.count) {
                throw Rejection.metadata(code: "XDSNonIdenticalSize", "\(id): size \(size) but \(data.count) bytes received")
            }
            if let hash = try slot(eo, "hash").first, hash.lowercased() != sha1 {
                throw Rejection.metadata(code: "XDSNonIdenticalHash", "\(id): hash is not the SHA-1 of the document")
            }
            let mimeType = entry.attribute("mimeType") ?? ""
            let format = try xml.string("string(\(eo)/rim:Classification[@classificationScheme='\(Self.classifications["formatCode"]!)']/@nodeRepresentation)", namespaces: Self.ns)
            if format == "http://www.w3.org/2000/09/xmldsig#" {
                signature = (id, data)
            } else {
                if mimeType == "text/xml" { try checkCDA(data, id: id, patientId: patientId, uniqueId: uid[0], xml: xml, eo: eo) }
                signed[uid[0]] = data
            }
            documents.append(.init(uniqueId: uid[0], entryUUID: id, patientId: patientId, sourceId: sourceId, sha1: sha1, size: data.count,
                                   mimeType: mimeType, status: .approved))
        }
        guard !signed.isEmpty else { throw Rejection.metadata(code: "XDSMissingDocument", "no document in the submission") }

        // Submission set signature: present, linked by `signs`, valid, covering every document.
        guard let signature else { throw Rejection.metadata("the submission set signature document is missing") }
        guard try xml.count("\(list)/rim:Association[@associationType='\(XDS.AssociationType.signs)'][@sourceObject='\(signature.entry)'][@targetObject='\(setID)']", namespaces: Self.ns) == 1 else {
            throw Rejection.metadata("no signs association from the signature to the SubmissionSet")
        }
        // The Manifest digests the RegistryPackage exactly as serialised in the request.
        let raw = String(decoding: rootBody, as: UTF8.self)
        guard let open = raw.range(of: "<rim:RegistryPackage "), let close = raw.range(of: "</rim:RegistryPackage>", range: open.upperBound..<raw.endIndex) else {
            throw Rejection.metadata("RegistryPackage not found in the raw request")
        }
        signed[setUniqueId] = Data(raw[open.lowerBound..<close.upperBound].utf8)
        let report = try endpoint.signatureVerifier.verify(signature.data, documents: signed)
        guard report.isValid else { throw Rejection.metadata("submission set signature: \(report.problems.joined(separator: "; "))") }

        // RPLC: from an entry of this submission to a stored, Approved entry of the same patient.
        var replaced: [String] = []
        for association in try xml.nodes("\(list)/rim:Association[@associationType='\(XDS.AssociationType.replace)']", namespaces: Self.ns) {
            guard documents.contains(where: { $0.entryUUID == association.attribute("sourceObject") }) else {
                throw Rejection.metadata("RPLC association whose sourceObject is not a DocumentEntry of the submission")
            }
            replaced.append(association.attribute("targetObject") ?? "")
        }
        let clashes = endpoint.store(documents, replacing: replaced)
        guard clashes.isEmpty else { return .registry(RegistryResponse(status: .failure, errors: clashes)) }
        return .registry(RegistryResponse(status: .success))
    }

    /// The one SubmissionSet with its required attributes: (entry id, patientId, uniqueId, sourceId).
    func submissionSet(_ xml: XMLDocument, list: String) throws -> (String, String, String, String) {
        let setIDs = try xml.nodes("\(list)/rim:Classification[@classificationNode='\(XDS.submissionSetNode)']/@classifiedObject", namespaces: Self.ns).map(\.text)
        guard setIDs.count == 1, let setID = setIDs.first else { throw Rejection.metadata("expected exactly one SubmissionSet, found \(setIDs.count)") }
        let set = "\(list)/rim:RegistryPackage[@id='\(setID)']"
        let setPatient = try Self.external(xml, set, "XDSSubmissionSet.patientId")
        let setUnique = try Self.external(xml, set, "XDSSubmissionSet.uniqueId")
        let source = try Self.external(xml, set, "XDSSubmissionSet.sourceId")
        guard setPatient.count == 1, setUnique.count == 1, source.count == 1, try Self.slot(xml, set, "submissionTime").count == 1,
              try xml.count("\(set)/rim:Classification[@classificationScheme='urn:uuid:aa543740-bdda-424e-8c96-df4873be8500']", namespaces: Self.ns) == 1 else {
            throw Rejection.metadata("SubmissionSet \(setID): patientId, uniqueId, sourceId, submissionTime and contentTypeCode are required")
        }
        return (setID, setPatient[0], setUnique[0], source[0])
    }

    static func external(_ xml: XMLDocument, _ object: String, _ name: String) throws -> [String] {
        try xml.nodes("\(object)/rim:ExternalIdentifier[rim:Name/rim:LocalizedString/@value='\(name)']/@value", namespaces: ns).map(\.text)
    }

    static func slot(_ xml: XMLDocument, _ object: String, _ name: String) throws -> [String] {
        try xml.nodes("\(object)/rim:Slot[@name='\(name)']/rim:ValueList/rim:Value", namespaces: ns).map(\.text)
    }

    /// ITI-57 Update Document Set, limited to what the DMP's TD3.3 does: availabilityStatus
    /// changes (UpdateAvailabilityStatus associations) of entries the same structure stored.
    func checkUpdate(_ xml: XMLDocument) throws -> ITI41Response {
        guard let request = try xml.nodes("/soap:Envelope/soap:Body/lcm:SubmitObjectsRequest", namespaces: Self.ns).first else {
            throw Rejection.sender(nil, "Body has no lcm:SubmitObjectsRequest")
        }
        let issues = endpoint.schema.validate(try request.canonicalized()).filter { $0.severity != .warning }
        guard issues.isEmpty else {
            throw Rejection.metadata("XSD: " + issues.prefix(3).map { "line \($0.line): \($0.message)" }.joined(separator: " | "))
        }
        let list = "/soap:Envelope/soap:Body/lcm:SubmitObjectsRequest/rim:RegistryObjectList"
        let (setID, patientId, _, sourceId) = try submissionSet(xml, list: list)
        guard try xml.count("\(list)/rim:ExtrinsicObject", namespaces: Self.ns) == 0 else {
            throw Rejection.metadata(code: "XDSMetadataUpdateOperationError", "this endpoint takes availability status updates only (TD3.3)")
        }
        var updates: [(entryUUID: String, from: AvailabilityStatus, to: AvailabilityStatus)] = []
        for a in try xml.nodes("\(list)/rim:Association", namespaces: Self.ns) {
            guard a.attribute("associationType") == XDS.AssociationType.updateAvailabilityStatus else {
                throw Rejection.metadata(code: "XDSMetadataUpdateOperationError", "unsupported association \(a.attribute("associationType") ?? "")")
            }
            let path = "\(list)/rim:Association[@id='\(a.attribute("id") ?? "")']"
            let original = try Self.slot(xml, path, "OriginalStatus"), new = try Self.slot(xml, path, "NewStatus")
            guard a.attribute("sourceObject") == setID, original.count == 1, new.count == 1,
                  let from = AvailabilityStatus(rawValue: original[0]), let to = AvailabilityStatus(rawValue: new[0]) else {
                throw Rejection.metadata(code: "XDSMetadataUpdateError",
                                         "UpdateAvailabilityStatus needs sourceObject = the SubmissionSet and one known OriginalStatus and NewStatus")
            }
            guard to == .deleted || to == .archived || to == .approved else {
                throw Rejection.metadata(code: "XDSMetadataUpdateError", "NewStatus \(to.rawValue) cannot be requested")
            }
            updates.append((a.attribute("targetObject") ?? "", from, to))
        }
        guard !updates.isEmpty else { throw Rejection.metadata(code: "XDSMetadataUpdateError", "no UpdateAvailabilityStatus association") }
        let errors = endpoint.updateStatus(updates, patientId: patientId, sourceId: sourceId)
        guard errors.isEmpty else { return .registry(RegistryResponse(status: .failure, errors: errors)) }
        return .registry(RegistryResponse(status: .success))
    }

    /// CDA header against the metadata: uniqueId = id, typeCode = code, INS = patientId.
    func checkCDA(_ data: Data, id: String, patientId: String, uniqueId: String, xml: XMLDocument, eo: String) throws {
        let cda: XMLDocument
        do { cda = try XMLDocument.parse(data, options: .init(maxBytes: Int.max, allowLargeTextNodes: true)) } catch { throw Rejection.metadata(code: "InvalidDocumentContent", "\(id): the CDA is not well-formed") }
        let root = try cda.string("string(/hl7:ClinicalDocument/hl7:id/@root)", namespaces: Self.ns)
        let ext = try cda.string("string(/hl7:ClinicalDocument/hl7:id/@extension)", namespaces: Self.ns)
        guard uniqueId == (ext.isEmpty ? root : "\(root)^\(ext)") else { throw Rejection.metadata("\(id): uniqueId differs from ClinicalDocument/id") }
        let code = try cda.string("string(/hl7:ClinicalDocument/hl7:code/@code)", namespaces: Self.ns)
        let typeCode = try xml.string("string(\(eo)/rim:Classification[@classificationScheme='\(Self.classifications["typeCode"]!)']/@nodeRepresentation)", namespaces: Self.ns)
        guard code == typeCode else { throw Rejection.metadata("\(id): typeCode \(typeCode) differs from the CDA code \(code)") }
        let ins = try cda.nodes("/hl7:ClinicalDocument/hl7:recordTarget/hl7:patientRole/hl7:id[starts-with(@root,'1.2.250.1.213.1.4.')]", namespaces: Self.ns)
        guard let first = ins.first else { throw Rejection.metadata(code: "XDSPatientIdDoesNotMatch", "\(id): the CDA carries no INS") }
        let expected = "\(first.attribute("extension") ?? "")^^^&\(first.attribute("root") ?? "")&ISO^NH"
        guard expected == patientId else { throw Rejection.metadata(code: "XDSPatientIdDoesNotMatch", "\(id): patientId differs from the CDA's INS") }
    }
}
