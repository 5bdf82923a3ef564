import Foundation
import PasserelleCore
import XMLKit

/// Builds CI-SIS CDA R2 N1 documents (PDF body) from metadata and a PDF, with the template
/// `Templates/cda/n1-pdf.xml`.
///
/// Document ids: when the metadata gives none, the id is `root` = the structure's OID
/// (`[structure] oid`, ``Options/documentIDRoot``) and `extension` = a fresh UUID; a new
/// document gets its own set id the same way (distinct from the id), and a replacement must
/// give the set id of the document it replaces.
public struct CDABuilder: Sendable {
    public struct Options: Sendable {
        /// Refuse PDFs larger than this (`[cda] max_pdf_bytes`).
        public var maximumPDFBytes: Int
        /// Root OID for generated document and set ids (the structure's OID).
        public var documentIDRoot: String?
        /// The structure used when the metadata names none (the configured `[structure]`).
        public var defaultStructure: HealthStructure?
        /// Parse the result and check its header rules before returning it (about 1 ms for a
        /// 200 KB PDF). Guards against a broken template; on by default.
        public var verify: Bool

        public init(maximumPDFBytes: Int = PDFCheck.defaultMaximumBytes, documentIDRoot: String? = nil,
                    defaultStructure: HealthStructure? = nil, verify: Bool = true) {
            self.maximumPDFBytes = maximumPDFBytes
            self.documentIDRoot = documentIDRoot
            self.defaultStructure = defaultStructure
            self.verify = verify
        }

        /// The parse budget of a CDA under ``maximumPDFBytes`` (producer CDAs, XSD check, verify).
        public var parseBudget: XMLDocument.ParseOptions { CDAParseBudget.options(maxPDFBytes: maximumPDFBytes) }
    }

    /// The file name of the N1 template inside the templates directory.
    public static let templatePath = "cda/n1-pdf.xml"

    public let template: Template
    public var options: Options

    /// A builder over an already parsed template.
    public init(template: Template, options: Options = Options()) {
        self.template = template
        self.options = options
    }

    /// Loads `cda/n1-pdf.xml` from `templatesDirectory` (the repository's `Templates/`).
    public init(templatesDirectory: URL, options: Options = Options()) throws(CDAError) {
        do {
            template = try Template(contentsOf: templatesDirectory.appendingPathComponent(Self.templatePath))
        } catch {
            throw .template(error)
        }
        self.options = options
    }

    /// Builds the CDA document for `metadata` with `pdf` as its body.
    ///
    /// Checks, in order: the PDF (magic bytes, `%%EOF`, size), the document kind, the INS key,
    /// the traits of a qualified identity and their agreement with the NIR, then every other
    /// mandatory value (all listed at once). The INS is written only for a QUAL identity.
    public func build(metadata: DocumentMetadata, pdf: Data) throws(CDAError) -> CDADocument {
        try PDFCheck.check(pdf, maximumBytes: options.maximumPDFBytes)
        let resolved = try resolve(metadata)
        let (head, tail, view) = try renderAround(resolved, pdfStart: pdf)
        // The body is base64 of a checked PDF: appended as bytes, never through a String, and
        // never parsed again (the header is checked with a short body, as for a file).
        let data = Base64Body.document(head: head, body: pdf, tail: tail)
        return CDADocument(
            data: data, origin: .built, kind: resolved.kind, id: resolved.id, setID: resolved.setID,
            versionNumber: resolved.version, replaces: resolved.parent, effectiveTime: resolved.effectiveTime,
            ins: resolved.ins, checkView: view)
    }

    /// The rendered template before and after the base64 body, the header checked on a
    /// document whose body is the PDF's first bytes (the header does not depend on the body).
    private func renderAround(_ resolved: Resolved, pdfStart: Data) throws(CDAError) -> (head: Data, tail: Data, view: Data) {
        var values = resolved.values
        let marker = "PASSERELLE-PDF-BASE64-\(UInt64.random(in: 1...UInt64.max))"
        values["pdf.base64"] = marker
        let text: String
        do { text = try template.render(values) } catch { throw .template(error) }
        guard let (head, tail) = Self.split(Array(text.utf8), around: Array(marker.utf8)) else {
            throw .template(.missingValue(template: Self.templatePath, name: "pdf.base64 (exactly once)"))
        }
        let view = head + pdfStart.prefix(48).base64EncodedData() + tail
        if options.verify { try Self.verify(view, budget: options.parseBudget) }
        return (head, tail, view)
    }

    /// The bytes before and after the one occurrence of `marker` (nil if it is not there exactly
    /// once). On bytes: Foundation's `components(separatedBy:)` walks a String character by
    /// character, ~1.5 M instructions for a rendered header.
    static func split(_ bytes: [UInt8], around marker: [UInt8]) -> (head: Data, tail: Data)? {
        func find(from start: Int) -> Int? {
            guard let first = marker.first, bytes.count >= marker.count else { return nil }
            var i = start
            while i + marker.count <= bytes.count {
                if bytes[i] == first && bytes[i..<i + marker.count].elementsEqual(marker) { return i }
                i += 1
            }
            return nil
        }
        guard let at = find(from: 0), find(from: at + 1) == nil else { return nil }
        return (Data(bytes[..<at]), Data(bytes[(at + marker.count)...]))
    }

    /// The same document as ``build(metadata:pdf:)``, byte for byte, written to a new file at
    /// `url` (0600: it carries patient data) without ever holding the base64 body or the CDA in
    /// memory: the template is rendered around a marker, the PDF is base64-encoded in chunks
    /// between the two halves, and size, SHA-1 and SHA-256 are computed while writing. The file
    /// is not fsynced (the journal's ``BlobStore`` does it when it takes the file). On error
    /// the file is removed.
    public func build(metadata: DocumentMetadata, pdf: Data, to url: URL) throws(CDAError) -> CDADocument {
        try PDFCheck.check(pdf, maximumBytes: options.maximumPDFBytes)
        let resolved = try resolve(metadata)
        let (head, tail, view) = try renderAround(resolved, pdfStart: pdf)
        let fd = open(url.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .file(path: url.path, reason: String(cString: strerror(errno))) }
        let digests = StreamDigests()
        var failure: String?
        func put(_ bytes: Data) {
            guard failure == nil else { return }
            digests.update(bytes)
            failure = DurableFiles.writeAll(bytes, to: fd)
        }
        put(head)
        // Whole 3-byte groups per chunk: the concatenated chunks are the one-piece base64.
        let chunk = 3 << 18
        var offset = pdf.startIndex
        while offset < pdf.endIndex && failure == nil {
            let end = pdf.index(offset, offsetBy: chunk, limitedBy: pdf.endIndex) ?? pdf.endIndex
            put(Base64Body.encode(pdf[offset..<end]))
            offset = end
        }
        put(tail)
        if close(fd) != 0 && failure == nil { failure = String(cString: strerror(errno)) }
        if let failure {
            unlink(url.path)
            throw .file(path: url.path, reason: failure)
        }
        return CDADocument(
            storage: .file(digests.file(url)), origin: .built, kind: resolved.kind, id: resolved.id, setID: resolved.setID,
            versionNumber: resolved.version, replaces: resolved.parent, effectiveTime: resolved.effectiveTime,
            ins: resolved.ins, checkView: view)
    }

    /// Parses a built document and checks its header rules (guards against a broken template).
    static func verify(_ data: Data, budget: XMLDocument.ParseOptions) throws(CDAError) {
        let xml: XMLDocument
        do { xml = try XMLDocument.parse(data, options: budget) } catch let error as XMLError { throw .notWellFormed(error) } catch {
            throw .notWellFormed(.parse(issues: []))
        }
        let header = CDAHeader.read(xml)
        if !header.problems.isEmpty { throw .invalidHeader(header.problems) }
    }

    // MARK: Metadata → template values

    struct Resolved {
        var values: [String: String]
        var kind: DocumentKind
        var id: InstanceIdentifier
        var setID: InstanceIdentifier
        var version: Int
        var parent: InstanceIdentifier?
        var effectiveTime: String
        var ins: INS?
    }

    /// Paths of the metadata the CDA uses; routing problems (destinations, MSSanté) are not
    /// the CDA's business.
    private static let cdaPaths = ["kind", "id", "set_id", "parent_id", "version_number", "action", "effective_time",
                                   "title", "confidentiality", "patient", "author", "legal_authenticator",
                                   "structure", "stay", "service_event"]

    func resolve(_ metadata: DocumentMetadata) throws(CDAError) -> Resolved {
        // Kind first: nothing else makes sense without it.
        if let problem = metadata.decodingProblems.first(where: { $0.path == "kind" }) {
            throw .unknownKind(problem.message)
        }
        guard let kind = metadata.kind else { throw .unknownKind("the metadata has no kind") }

        // Identity, with the specific errors the operator needs to see.
        let patient = metadata.patient
        var checkedINS: INS?
        if let reference = patient.ins {
            do { checkedINS = try reference.checked() } catch { throw .invalidINS(error) }
        }
        do {
            if patient.identityStatus == .qualified {
                try patient.traits.checkQualified(with: checkedINS)
            } else if let checkedINS {
                try patient.traits.checkConsistency(with: checkedINS)
            }
        } catch {
            throw .identity(error)
        }

        // Everything else, all problems at once.
        var problems = metadata.validate().filter { problem in
            Self.cdaPaths.contains { problem.path == $0 || problem.path.hasPrefix($0 + ".") || problem.path.hasPrefix($0 + "[") }
                && !problem.message.contains("destination")
        }
        func require(_ ok: Bool, _ path: String, _ message: String) {
            if !ok && !problems.contains(where: { $0.path == path }) { problems.append(MetadataProblem(path, message)) }
        }
        require(metadata.action != .delete, "action", "a deletion carries no document: no CDA is built for action delete")
        require(metadata.id != nil || options.documentIDRoot != nil, "id",
                "required (or configure [structure] oid so that Passerelle generates it)")
        if metadata.action == .replace {
            require(metadata.setID != nil, "set_id", "required for a replacement: the set id of the document replaced")
        }
        let structure = metadata.structure ?? options.defaultStructure
        require(structure?.finess != nil, "structure.finess", "required (or configure [structure])")
        require(!(structure?.name ?? "").trimmingWhitespace().isEmpty, "structure.name", "required (or configure [structure])")
        let stay = metadata.stay
        require(stay != nil, "stay", "required: the CDA names the encounter (stay id, admission, facility_type)")
        if stay != nil {
            require(stay?.admission != nil, "stay.admission", "required: ISO 8601 with offset")
            require(stay?.facilityType != nil, "stay.facility_type", "required: JDV_J02 code, e.g. SA01")
        }
        let eventStart = metadata.serviceEvent?.start ?? stay?.admission
        require(eventStart != nil, "service_event.start", "required (or stay.admission, used by default)")
        guard problems.isEmpty, let structure, let finessText = structure.finess, let stay, let admission = stay.admission,
              let facility = stay.facilityType, let eventStart, let effective = metadata.effectiveTime,
              let author = metadata.author else {
            throw .invalidMetadata(problems.isEmpty ? [MetadataProblem("", "incomplete metadata")] : problems)
        }
        guard let finess = try? FINESS(finessText) else {
            throw .invalidMetadata([MetadataProblem("structure.finess", "not a valid FINESS")])
        }

        let id = metadata.id ?? .generated(root: options.documentIDRoot!)
        let setID: InstanceIdentifier
        if let given = metadata.setID {
            setID = given
        } else {
            // A new document: a set id of its own, distinct from the document id.
            setID = .generated(root: options.documentIDRoot ?? id.root)
        }

        var v: [String: String] = [:]
        v.reserveCapacity(96)
        func put(_ key: String, _ value: String?) {
            if let value, !value.trimmingWhitespaceAndNewlines().isEmpty { v[key] = value }
        }
        put("id.root", id.root); put("id.extension", id.extension)
        put("setId.root", setID.root); put("setId.extension", setID.extension)
        v["versionNumber"] = String(metadata.versionNumber)
        if metadata.action == .replace, let parent = metadata.parentID {
            put("parent.root", parent.root); put("parent.extension", parent.extension)
        }
        put("kind.code", kind.loincCode); put("kind.displayName", kind.displayName)
        put("title", metadata.effectiveTitle)
        let effectiveTime = effective.hl7
        v["effectiveTime"] = effectiveTime
        put("confidentiality.code", metadata.confidentiality.rawValue)
        put("confidentiality.displayName", metadata.confidentiality.displayName)

        // Patient: the INS only for a qualified identity; never a NIR otherwise.
        let shareable = patient.identityStatus == .qualified ? checkedINS : nil
        if let shareable { put("ins.root", shareable.oid); put("ins.extension", shareable.value) }
        put("ipp.root", patient.ipp?.authority); put("ipp.extension", patient.ipp?.value)
        if let address = patient.address {
            put("addr.street", address.lines.joined(separator: ", "))
            put("addr.postalCode", address.postalCode); put("addr.city", address.city); put("addr.country", address.country)
            if ["addr.street", "addr.postalCode", "addr.city", "addr.country"].contains(where: { v[$0] != nil }) { v["addr"] = "" }
        }
        for (i, uri) in patient.telecom.prefix(3).enumerated() { put("telecom\(i + 1)", uri) }
        let traits = patient.traits
        put("patient.birthName", traits.birthName)
        put("patient.firstBirthGivenName", traits.firstBirthGivenName)
        put("patient.birthGivenNames", traits.birthGivenNames)
        put("patient.usedName", traits.usedName)
        put("patient.usedGivenName", traits.usedGivenName)
        if let sex = traits.sex {
            put("patient.gender.code", sex.hl7Code)
            put("patient.gender.displayName", sex == .female ? "Féminin" : sex == .male ? "Masculin" : "Inconnu")
        }
        put("patient.birthTime", traits.birthDate?.hl7)
        put("patient.birthPlace", traits.birthPlace?.uppercased())

        // Professionals and structure.
        do {
            try putProfessional(author, as: "author", into: &v)
            try putProfessional(metadata.effectiveLegalAuthenticator ?? author, as: "legal", into: &v)
            try putProfessional(metadata.serviceEvent?.performer ?? author, as: "performer", into: &v)
        } catch {
            throw .invalidMetadata([MetadataProblem("author", error.description)])
        }
        put("structure.id", finess.nationalID)
        put("structure.name", structure.name)

        // Documented act and encounter.
        if let code = metadata.serviceEvent?.code {
            put("event.code", code.code); put("event.displayName", code.displayName); put("event.codeSystem", code.codeSystem)
        }
        put("event.start", eventStart.hl7)
        put("event.end", (metadata.serviceEvent == nil ? stay.discharge : metadata.serviceEvent?.end)?.hl7)
        if let practice = stay.practiceSetting {
            put("practiceSetting.code", practice.code); put("practiceSetting.displayName", practice.displayName)
            put("practiceSetting.codeSystem", practice.codeSystem)
        }
        if let stayID = stay.id { put("stay.id.root", stayID.authority); put("stay.id.extension", stayID.value) }
        put("stay.start", admission.hl7)
        put("stay.end", stay.discharge?.hl7)
        put("facility.code", facility.code); put("facility.displayName", facility.displayName)
        put("facility.codeSystem", facility.codeSystem)

        return Resolved(values: v, kind: kind, id: id, setID: setID, version: metadata.versionNumber,
                        parent: v["parent.root"] == nil ? nil : metadata.parentID, effectiveTime: effectiveTime, ins: shareable)
    }

    /// Civilités of JDV_J245 (name `prefix`) and titles of JDV_J246 (name `suffix`).
    static let civilities: Set<String> = ["M", "MME"]
    static let titles: Set<String> = ["DR", "MC", "MG", "PC", "PG", "PR"]

    private func putProfessional(_ professional: HealthProfessional, as key: String,
                                 into v: inout [String: String]) throws(IdentifierError) {
        if let identifier = try professional.identifier() { v["\(key).id"] = identifier.nationalID }
        if let family = professional.familyName { v["\(key).family"] = family }
        if let given = professional.givenName, !given.isEmpty { v["\(key).given"] = given }
        // Sidecars say "Dr" as a prefix; CI-SIS wants titles as suffix (J246) and only
        // civilités as prefix (J245). Anything else is left out rather than rejected.
        var prefix: String?, suffix: String?
        for raw in [professional.prefix, professional.suffix].compactMap({ $0 }) {
            let word = raw.uppercased().trimming { $0 == "." || $0 == " " }
            if Self.civilities.contains(word) { prefix = prefix ?? word }
            if Self.titles.contains(word) { suffix = suffix ?? word }
        }
        if let prefix { v["\(key).prefix"] = prefix }
        if let suffix { v["\(key).suffix"] = suffix }
        if let specialty = professional.specialty {
            v["\(key).specialty.code"] = specialty.code
            v["\(key).specialty.displayName"] = specialty.displayName
            v["\(key).specialty.codeSystem"] = specialty.codeSystem
        }
    }
}
