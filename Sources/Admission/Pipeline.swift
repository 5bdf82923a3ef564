import CDA
import Foundation
import Handoff
import IHE
import Intake
import Journal
import Logging
import OpenSSLKit
import PasserelleCore
import TestHooks

/// What ``Pipeline/ingest(_:input:)`` did with one intake item.
public enum IngestOutcome: Sendable, Hashable {
    /// Journaled, built and queued for these targets.
    case accepted(documentID: String, version: Int, targets: [Destination])
    /// Journaled and queued for `targets` only: the other destinations asked for are refused
    /// (`refused`, decided at intake: identity not qualified for the DMP, MSSanté routing
    /// matrix, a deletion notice without its document). The same input again gives the same answer.
    case acceptedInPart(documentID: String, version: Int, targets: [Destination], refused: [RoutingRefusal])
    /// The same input (same bytes) was journaled before: nothing new, nothing sent again.
    case duplicateInput(documentID: String?)
    /// An admission or discharge was recorded (idempotent: the same event again changes nothing).
    case stay
}

/// Why an item was not ingested.
public enum IngestFailure: Error, Sendable, CustomStringConvertible {
    /// The item cannot be used as is: move it to error/ (or answer AE) with this reason.
    case refused(RefusalReason)
    /// The journal failed: keep the input and try again later (or answer AR).
    case unavailable(GatewayError)

    public var description: String {
        switch self {
        case .refused(let r): r.description
        case .unavailable(let e): e.description
        }
    }
}

/// The fixed part of the pipeline's behaviour, from the configuration.
public struct PipelineSettings: Sendable {
    /// `[structure]`: generated document ids go under `oid`; `finess` for stays without one.
    public var structureOID: String
    public var finess: String
    /// Targets switched on in the configuration. A document asking only for others is refused.
    public var enabledTargets: Set<Destination>
    /// The secret that keys patient hashes (``PatientKey``).
    public var patientKeySecret: Data
    /// `[cda] default_*`: what a PDF's metadata lacks (HL7 v2 has no field for it).
    public var documentDefaults: DocumentDefaults
    /// PDFs of at least this many bytes are built into a file in the blob folder, validated
    /// and journaled from there, and sent from the file, so memory stays bounded whatever the
    /// document's size; smaller ones stay in memory (faster). See ``fileBackedDefault``.
    public var fileBackedBytes: Int

    /// 4 MB: below, a CDA and its copies cost little memory; above, the file path keeps the
    /// process's peak flat (a 50 MB PDF: about 100 MB instead of 900 MB).
    public static let fileBackedDefault = OutgoingDocument.fileBackedDefault

    public init(structureOID: String, finess: String, enabledTargets: Set<Destination>, patientKeySecret: Data,
                documentDefaults: DocumentDefaults = DocumentDefaults(), fileBackedBytes: Int = fileBackedDefault) {
        self.structureOID = structureOID
        self.finess = finess
        self.enabledTargets = enabledTargets
        self.patientKeySecret = patientKeySecret
        self.documentDefaults = documentDefaults
        self.fileBackedBytes = fileBackedBytes
    }
}

/// Intake → journal → CDA → routing → queue, for one item at a time (callers may run several
/// concurrently; the journal serialises what must be).
///
/// Order matters for crash safety: the document is built and checked first (a bad document is
/// refused without touching the journal), then journaled (blob fsynced, then one transaction),
/// and only then may the caller remove the input. Build and enqueue are recorded after the
/// accept; ``resume()`` finishes documents a crash left between those steps.
public struct Pipeline: Sendable {
    public let journal: any AdmissionJournal
    public let blobs: BlobStore
    public let settings: PipelineSettings
    public let builder: CDABuilder
    /// `[cda] schema`: every CDA (built or received) must pass the XSD before it is journaled.
    public let validator: CDAValidator?
    /// Told about journaled, built and refused documents (metrics).
    public let events: any GatewayEvents
    /// Where an admitted document waits in memory for its first send (shared with the workers).
    public let admitted: AdmittedDocuments
    let logger: Logger

    public init(journal: any AdmissionJournal, blobs: BlobStore, settings: PipelineSettings, builder: CDABuilder,
                validator: CDAValidator? = nil, events: any GatewayEvents = NoGatewayEvents(),
                admitted: AdmittedDocuments = AdmittedDocuments(),
                logger: Logger = Logger(label: "passerelle.pipeline")) {
        self.admitted = admitted
        self.journal = journal
        self.blobs = blobs
        self.settings = settings
        self.builder = builder
        self.validator = validator
        self.events = events
        self.logger = logger
    }

    /// Journals one item; see ``IngestOutcome``. `input` identifies the dropped file or MLLP
    /// message so that the same bytes arriving twice are recognised.
    public func ingest(_ item: IntakeItem, input: InputFile?, now: Date = Date()) async throws(IngestFailure) -> IngestOutcome {
        switch item {
        case .stay(let event):
            let stay = JournalStay(stayID: event.stayID.value, finess: event.finess ?? settings.finess,
                                   admittedAt: event.admission?.date, dischargedAt: event.discharge?.date)
            do {
                try await journal.recordStay(stay, now: now)
                logger.info("stay recorded", metadata: ["stay": "\(event.stayID.value)", "event": "\(event.kind.rawValue)"])
                return .stay
            } catch { throw .unavailable(.journal(error)) }
        case .document(let incoming):
            let prepared = try prepare(incoming)
            // A file-backed CDA not taken by the journal (duplicate, failure) is removed.
            defer { if let file = prepared.cda.file { try? FileManager.default.removeItem(at: file.url) } }
            let record: [Data]
            // A CDA in memory holds the content whole: stored once, in the built CDA's blob.
            let contentInBuiltCDA = prepared.cda.file == nil && prepared.metadata.action != .delete
            do {
                record = try IntakeRecord(metadata: prepared.metadata, content: incoming.content)
                    .encodedParts(contentInBuiltCDA: contentInBuiltCDA)
            } catch {
                throw .unavailable(error)
            }
            let built: Admission.Built = if let file = prepared.cda.file {
                .file(file.url, sha256: file.sha256.hexString)
            } else if prepared.metadata.action == .delete {
                // A deletion keeps the withdrawn document it carries (the MSSanté notice is built from it).
                prepared.notice.map { .data($0.data, sha256: $0.sha256.hexString) } ?? .data(Deletion.marker)
            } else {
                .data(prepared.cda.data, sha256: prepared.cda.sha256.hexString)
            }
            var admission = Admission(document: prepared.journalDocument, record: record, built: built, targets: prepared.targets,
                                      input: input, stay: prepared.stay)
            // Held before the transaction commits: a worker may claim the document as soon as it
            // does, before this task resumes (see AdmittedDocuments).
            let candidate = admission.document
            let outgoing = prepared.notice ?? prepared.cda
            // In a one-target backlog, wait while its workers make room rather than run ahead and
            // leave this document to be read back (see AdmittedDocuments.waitForRoom).
            if outgoing.file == nil { await admitted.waitForRoom(outgoing.size, for: prepared.targets) }
            let held = admitted.insert(OutgoingDocument(metadata: prepared.metadata, cda: outgoing, journal: candidate),
                                       targets: prepared.targets)
            admission.firstSendFromMemory = held
            let result: AdmitResult
            do {
                // One transaction: record, built CDA and queued transmissions (group-committed
                // with the other documents in flight).
                result = try await StageClock.measure(.journal, events) { () async throws(JournalError) in
                    try await journal.admit(admission, now: now)
                }
            } catch {
                if held { admitted.remove(documentID: candidate.id, version: candidate.version) }
                throw .unavailable(.journal(error))
            }
            let isAdmitted = if case .admitted = result { true } else { false }
            if held && !isAdmitted { admitted.remove(documentID: candidate.id, version: candidate.version) }
            switch result {
            case .duplicateInput(let id, let version):
                logger.notice("input already journaled; not sent again", metadata: ["document": "\(id ?? "-")"])
                // A journal written by an older passerelle may hold that document half-way (accepted, not queued).
                if let id, let version { try await finish(id: id, version: version) }
                if !prepared.refused.isEmpty, let id, let version {
                    return .acceptedInPart(documentID: id, version: version, targets: prepared.targets, refused: prepared.refused)
                }
                return .duplicateInput(documentID: id)
            case .duplicateDocument(let earlier):
                throw .refused(.invalidContent(.duplicateDocument(id: earlier.id, version: earlier.version)))
            case .admitted(let document, let transmissions):
                CrashPoint.reached(.accepted)
                events.documentBuilt(kind: document.kind)
                logger.info("document journaled and queued", metadata: [
                    "document": "\(document.id)", "version": "\(document.version)", "kind": "\(document.kind.rawValue)",
                    "ins": "\(document.maskedINS ?? "-")", "targets": "\(transmissions.map(\.target.rawValue).joined(separator: ","))"])
                if !prepared.refused.isEmpty {
                    logger.notice("document accepted in part: destinations refused at intake", metadata: [
                        "document": "\(document.id)", "refused": "\(prepared.refused.flatMap(\.targets).map(\.rawValue).joined(separator: ","))"])
                    return .acceptedInPart(documentID: document.id, version: document.version, targets: prepared.targets,
                                           refused: prepared.refused)
                }
                return .accepted(documentID: document.id, version: document.version, targets: prepared.targets)
            }
        }
    }

    /// Finishes every document a crash left `received` or `built`. Returns how many.
    @discardableResult
    public func resume() async throws(GatewayError) -> Int {
        blobs.removeStaleTemporaryFiles()
        var count = 0
        do {
            for state in [DocumentState.received, .built] {
                for document in try await journal.documents(in: state) {
                    do { _ = try await finish(id: document.id, version: document.version) } catch {
                        logger.error("cannot finish a journaled document", metadata: ["document": "\(document.id)", "error": "\(error)"])
                        continue
                    }
                    count += 1
                }
            }
        } catch { throw .journal(error) }
        return count
    }

    // MARK: Steps

    struct Prepared {
        var metadata: DocumentMetadata
        var cda: CDADocument
        var journalDocument: JournalDocument
        var stay: JournalStay?
        var targets: [Destination]
        /// The destinations asked for and refused at intake (the others go).
        var refused: [RoutingRefusal] = []
        /// A deletion's withdrawn document (its last version, from OBX-5), for the MSSanté notice.
        var notice: CDADocument?
    }

    /// Checks the document, assigns its ids and builds (or checks) the CDA. Nothing is stored.
    func prepare(_ incoming: IncomingDocument) throws(IngestFailure) -> Prepared {
        var metadata = incoming.metadata
        let decision = try routing(metadata, noticeDocument: Self.noticeDocument(metadata, incoming.content))
        let targets = decision.targets
        // Journaled as decided: the MSSanté sender's own check of the matrix then reads what goes.
        metadata.destinations = targets
        let cda: CDADocument
        var notice: CDADocument?
        switch incoming.content {
        case .cda(let data) where metadata.action == .delete && (metadata.parentID != nil || Self.looksLikeXML(data)):
            // An HL7 deletion (MDM^T04 / ORU OBX-11 D: TXA-12 names the document to delete). The
            // DMP needs nothing more; the MSSanté notice is built from the last version of the
            // document carried in OBX-5 (ANS guide, example 2), read with the budgets of any CDA.
            // An ORU deletion has no TXA: the CDA names the document deleted (its ClinicalDocument/id).
            if metadata.parentID == nil || targets.contains(where: { $0 != .dmp }) {
                let carried: CDADocument
                do {
                    carried = try StageClock.measure(.cdaBuild, events) { () throws(CDAError) in
                        try ProducerCDA.accept(data, declared: metadata, budget: builder.options.parseBudget)
                    }
                } catch {
                    throw .refused(.invalidContent(.cdaUnusable(detail: error.description, french: error.text(.fr))))
                }
                if metadata.parentID == nil { metadata.parentID = carried.id }
                guard carried.id == metadata.parentID else {
                    let (found, named) = (carried.id.description, metadata.parentID?.description ?? "-")
                    throw .refused(.invalidContent(.cdaUnusable(
                        detail: "the CDA carried by the deletion is document \(found), not the document deleted \(named) (TXA-12): "
                            + "put the last version of the deleted document in OBX-5",
                        french: "le CDA joint à la demande de suppression est le document \(found), pas le document supprimé \(named) "
                            + "(TXA-12) : mettez en OBX-5 la dernière version du document supprimé")))
                }
                if targets.contains(where: { $0 != .dmp }) {
                    notice = carried
                    metadata = Self.stayDefaults(settings.documentDefaults, metadata)
                }
            }
            metadata.id = Self.deletionID(metadata, root: settings.structureOID)
            cda = Deletion.placeholder(metadata)
        case .cda(let data):
            if !Self.looksLikeXML(data) {
                // The ANS guide's examples carry a base64 sentence there instead of a CDA.
                throw .refused(.invalidContent(.cdaNotXML(bytes: data.count)))
            }
            do { cda = try StageClock.measure(.cdaBuild, events) { () throws(CDAError) in try ProducerCDA.accept(data, declared: metadata, budget: builder.options.parseBudget) } } catch {
                throw .refused(.invalidContent(.cdaUnusable(detail: error.description, french: error.text(.fr))))
            }
            // The CDA header is authoritative for what it carries.
            metadata.id = cda.id
            metadata.setID = cda.setID
            metadata.versionNumber = cda.versionNumber
            metadata.kind = cda.kind
            if let replaced = cda.replaces { metadata.parentID = replaced }
            metadata = Self.stayDefaults(settings.documentDefaults, metadata)
            // The header's ids go to the DMP's XDS metadata too: the same length limits as a sidecar's.
            if let problem = metadata.lengthProblems().first {
                throw .refused(.invalidContent(.cdaHeaderTooLong(problem)))
            }
        case .pdf(let pdf):
            // Journaled with the defaults applied, so a rebuild after a crash gives the same CDA.
            metadata = settings.documentDefaults.apply(to: metadata)
            if let id = metadata.id, metadata.action != .delete { try Self.checkDMPIdentifier(id, targets: targets) }
            // Ids are fixed before journaling so a rebuild after a crash gives the same document.
            // Plain OIDs: XDS references documents as urn:oid: in the submission set signature.
            if metadata.action == .delete { metadata.id = Self.deletionID(metadata, root: settings.structureOID) }
            if metadata.id == nil { metadata.id = InstanceIdentifier(root: Self.generatedOID(settings.structureOID, arc: 4)) }
            if metadata.setID == nil && metadata.action == .new {
                metadata.setID = InstanceIdentifier(root: Self.generatedOID(settings.structureOID, arc: 6))
            }
            do {
                cda = metadata.action == .delete ? Deletion.placeholder(metadata)
                    : try StageClock.measure(.cdaBuild, events) { () throws(CDAError) in try build(metadata, pdf: pdf) }
            } catch {
                throw .refused(.invalidContent(.cdaNotBuilt(detail: error.description, french: error.text(.fr),
                                                            defaultKeys: Self.missingDefaults(error))))
            }
        }
        do {
            var result = try prepared(cda, metadata: metadata, targets: targets)
            result.refused = decision.refused
            result.notice = notice
            return result
        } catch {
            if let file = cda.file { try? FileManager.default.removeItem(at: file.url) }
            throw error
        }
    }

    /// True when a deletion carries a document the MSSanté notice can be built from: a CDA (OBX-5
    /// subtype XML that is XML; the guide's examples carry a sentence there, which only the DMP
    /// deletion can do without).
    static func noticeDocument(_ metadata: DocumentMetadata, _ content: DocumentContent) -> Bool {
        guard metadata.action == .delete, case .cda(let data) = content else { return false }
        return looksLikeXML(data)
    }

    /// The XDS / XDM metadata of a producer's CDA (and of a deletion's notice) need the facility
    /// type and practice setting, which HL7 v2 has no field for: the configured `[cda] default_*`
    /// when the metadata gives none, on a stay made for them when PV1 gives none (the journal
    /// records a stay only with its id). The author is left as the message names it.
    static func stayDefaults(_ defaults: DocumentDefaults, _ metadata: DocumentMetadata) -> DocumentMetadata {
        guard defaults.facilityType != nil || defaults.practiceSetting != nil else { return metadata }
        var copy = metadata
        var stay = copy.stay ?? Stay()
        if stay.facilityType == nil { stay.facilityType = defaults.facilityType }
        if stay.practiceSetting == nil { stay.practiceSetting = defaults.practiceSetting }
        copy.stay = stay
        return copy
    }

    /// Builds the CDA of `pdf`: into a file of the blob folder from ``PipelineSettings/fileBackedBytes`` on.
    func build(_ metadata: DocumentMetadata, pdf: Data) throws(CDAError) -> CDADocument {
        guard pdf.count >= settings.fileBackedBytes else { return try builder.build(metadata: metadata, pdf: pdf) }
        return try builder.build(metadata: metadata, pdf: pdf, to: blobs.temporaryURL())
    }

    /// The checks after the build (DMP id, XSD) and the journal's view of the document.
    func prepared(_ cda: CDADocument, metadata: DocumentMetadata, targets: [Destination]) throws(IngestFailure) -> Prepared {
        if metadata.action != .delete { try Self.checkDMPIdentifier(cda.id, targets: targets) }
        if let validator, metadata.action != .delete {  // a deletion has no CDA to check
            let name = DocumentEntryMapper.uniqueId(cda.id)
            // A built document through its short view (see CDADocument.checkView); a producer's
            // large document as it is read from its file (libxml2 SAX + XSD).
            let report = StageClock.measure(.validate, events) {
                if let view = cda.checkView { return validator.validate(view, file: name) }
                return cda.file.map { validator.validate(streaming: $0.url, file: name) } ?? validator.validate(cda.data, file: name)
            }
            if !report.isValid {
                // libxml2 messages name elements and lines, not values.
                throw .refused(.invalidContent(.schemaInvalid(messages: Array(report.messages.prefix(10)))))
            }
        }
        let ins = metadata.patient.shareableINS
        let stay = metadata.stay?.id.map { id in
            JournalStay(stayID: id.value, finess: metadata.structure?.finess ?? settings.finess,
                        admittedAt: metadata.stay?.admission?.date, dischargedAt: metadata.stay?.discharge?.date)
        }
        let document = JournalDocument(
            id: DocumentEntryMapper.uniqueId(cda.id), setID: DocumentEntryMapper.uniqueId(cda.setID), version: cda.versionNumber,
            kind: cda.kind, maskedINS: ins?.masked,
            patientKey: ins.map { PatientKey.derive(matricule: $0.value, secret: settings.patientKeySecret) },
            identityStatus: metadata.patient.identityStatus?.rawValue,
            finess: metadata.structure?.finess ?? settings.finess, stayID: metadata.stay?.id?.value, receivedAt: Date(),
            action: metadata.action)
        return Prepared(metadata: metadata, cda: cda, journalDocument: document, stay: stay, targets: targets)
    }

    /// A deletion request's own journal id: the id given, unless it is the document deleted
    /// (MDM^T04 names it in TXA-12), which already has its place in the journal.
    static func deletionID(_ metadata: DocumentMetadata, root: String) -> InstanceIdentifier {
        if let id = metadata.id, id != metadata.parentID { return id }
        return InstanceIdentifier(root: generatedOID(root, arc: 4))
    }

    /// The DMP submission set signature references each document as urn:oid:<uniqueId>: an id
    /// with an extension is refused now rather than failing at every send after it was journaled.
    static func checkDMPIdentifier(_ id: InstanceIdentifier, targets: [Destination]) throws(IngestFailure) {
        guard targets.contains(.dmp), id.extension != nil else { return }
        throw .refused(.invalidContent(.idHasExtension))
    }

    /// HL7 v2 has no field for these: the `[cda]` settings that supply them (the refusal text points at them).
    static func missingDefaults(_ error: CDAError) -> [String] {
        guard case .invalidMetadata(let problems) = error else { return [] }
        return [("author.specialty", "default_author_specialty"), ("stay.facility_type", "default_facility_type"),
                ("stay.practice_setting", "default_practice_setting")]
            .filter { path, _ in problems.contains { $0.path == path } }.map(\.1)
    }

    /// True when the bytes start (after a BOM and blanks) with `<`.
    static func looksLikeXML(_ data: Data) -> Bool {
        var bytes = data.prefix(512)[...]
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }
        return bytes.first { ![0x20, 0x09, 0x0A, 0x0D].contains($0) } == UInt8(ascii: "<")
    }

    /// `<root>.<arc>.<milliseconds>.<random>`: unique without coordination between nodes.
    static func generatedOID(_ root: String, arc: Int) -> String {
        "\(root).\(arc).\(UInt64(Date().timeIntervalSince1970 * 1000)).\(UInt32.random(in: 1...UInt32.max))"
    }

    /// What admission does with a document's destinations: the one decision, for every source.
    struct RoutingDecision {
        /// What goes: asked for, switched on, and allowed.
        var targets: [Destination]
        /// What was asked for and is refused, with why.
        var refused: [RoutingRefusal]
    }

    /// Decides, once and at intake, which of the destinations a document asks for are served:
    /// among those switched on, the MSSanté ones must pass the ANS routing matrix
    /// (``PasserelleCore/RoutingMatrix``, the same function the MSSanté sender checks again), the
    /// DMP and the patient's mailbox need a qualified identity (QUAL) with its INS, and a
    /// deletion is notified by MSSanté only with the document it withdraws (`noticeDocument`);
    /// DESTMSSANTEPS needs a professional address.
    /// Refused destinations are answered at intake (AE, reason file); when none is left the
    /// whole document is refused. What can be known here never becomes a failed transmission.
    func routing(_ metadata: DocumentMetadata, noticeDocument: Bool) throws(IngestFailure) -> RoutingDecision {
        var seen = Set<Destination>()
        let asked = metadata.destinations.filter { seen.insert($0).inserted }
        guard !asked.isEmpty else {
            throw .refused(.invalidSidecar(.invalid([MetadataProblem(
                "destinations", "no destination: list dmp, mssante_ps and/or mssante_patient (HL7 v2: OBX MetaDMPMSS DESTDMP, DESTMSSANTEPS, DESTMSSANTEPAT = Y)",
                french: "aucun destinataire : indiquez dmp, mssante_ps et/ou mssante_patient (HL7 v2 : OBX MetaDMPMSS DESTDMP, "
                    + "DESTMSSANTEPS, DESTMSSANTEPAT = Y)")])))
        }
        let routed = asked.filter(settings.enabledTargets.contains)
        guard !routed.isEmpty else {
            let names = asked.map(\.rawValue).joined(separator: ", ")
            throw .refused(.invalidSidecar(.invalid([MetadataProblem(
                "destinations", "\(names) not enabled in this gateway's configuration ([dmp] / [mssante] enabled)",
                french: "\(names) : destination non activée dans la configuration de cette passerelle ([dmp] / [mssante] enabled) ; "
                    + "choisissez une destination activée ou demandez à l'administrateur de la passerelle de l'activer")])))
        }
        var refused: [RoutingRefusal] = []
        var closed = Set<Destination>()
        func refuse(_ refusal: RoutingRefusal) {
            let targets = refusal.targets.filter { routed.contains($0) && !closed.contains($0) }
            guard !targets.isEmpty else { return }
            refused.append(refusal)
            closed.formUnion(targets)
        }
        let mailed = routed.filter { $0 != .dmp }
        // The matrix reads what will actually be done: a destination switched off sends no mail.
        if !mailed.isEmpty, let rule = RoutingMatrix.violation(destinations: routed, flags: metadata.flags) {
            refuse(.forbiddenCombination(rule, destinations: mailed, flags: MetaDMPMSSFlag.allCases.filter(metadata.flags.contains)))
        }
        if routed.contains(.mssantePS),
           !(metadata.mssante?.recipients ?? []).contains(where: { !$0.trimmingWhitespace().isEmpty }) {
            refuse(.noProfessionalRecipient)
        }
        let status = metadata.patient.identityStatus
        if metadata.patient.shareableINS == nil {
            for target in [Destination.dmp, .mssantePatient] where routed.contains(target) {
                refuse(.identityNotQualified(target: target, status: status))
            }
        }
        if metadata.action == .delete && !noticeDocument {
            let notices = mailed.filter { !closed.contains($0) }
            if !notices.isEmpty { refuse(.deletionNoticeWithoutDocument(targets: notices)) }
        }
        let targets = routed.filter { !closed.contains($0) }
        guard !targets.isEmpty else { throw .refused(.routing(refused)) }
        return RoutingDecision(targets: targets, refused: refused)
    }

    /// Builds (unless `built` is given or already journaled) and enqueues one journaled document.
    @discardableResult
    func finish(id: String, version: Int, built: CDADocument? = nil) async throws(IngestFailure) -> [Destination] {
        do {
            guard var document = try await journal.document(id: id, version: version) else { return [] }
            // Only the metadata: a large PDF stays on disk unless the CDA must be built again.
            let header = try IntakeRecord.Header.read(document.blobSHA256, blobs: blobs)
            // A deletion's record holds what OBX-5 carried: whether a notice can go is decided from it, as at admission.
            let deletionContent = header.metadata.action == .delete ? try IntakeRecord.decode(try blobs.get(document.blobSHA256)).content : nil
            let targets = try routing(header.metadata, noticeDocument: deletionContent.map { Self.noticeDocument(header.metadata, $0) } ?? true).targets
            if document.state == .received {
                // A file-backed CDA moves into the blob folder by a rename: never read back into memory.
                func store(_ cda: CDADocument) async throws -> JournalDocument {
                    guard let file = cda.file else {
                        return try await journal.markBuilt(documentID: id, version: version, built: cda.data, now: Date())
                    }
                    let sha = try blobs.put(file: file.url, sha256: file.sha256.hexString)
                    return try await journal.markBuilt(documentID: id, version: version, builtBlob: sha, now: Date())
                }
                if let built {
                    document = try await store(built)
                } else if header.metadata.action == .delete {
                    // As admission: the carried document when an MSSanté notice goes, else the marker.
                    let built = if let content = deletionContent, case .cda(let d) = content, Self.noticeDocument(header.metadata, content),
                                   targets.contains(where: { $0 != .dmp }) { d } else { Deletion.marker }
                    document = try await journal.markBuilt(documentID: id, version: version, built: built, now: Date())
                } else {
                    // Resuming after a crash: build again from the journaled record.
                    switch try IntakeRecord.decode(try blobs.get(document.blobSHA256)).content {
                    case .cda(let d): document = try await journal.markBuilt(documentID: id, version: version, built: d, now: Date())
                    case .pdf(let pdf): document = try await store(try build(header.metadata, pdf: pdf))
                    }
                }
                events.documentBuilt(kind: document.kind)
            }
            if document.state == .built {
                let queued = try await journal.enqueue(documentID: id, version: version, targets: targets, now: Date())
                logger.info("document queued", metadata: ["document": "\(id)", "targets": "\(queued.map(\.target.rawValue).joined(separator: ","))"])
            }
            return targets
        } catch let failure as IngestFailure {
            throw failure
        } catch let error as JournalError {
            throw .unavailable(.journal(error))
        } catch let error as GatewayError {
            throw .unavailable(error)
        } catch {
            throw .unavailable(.record("document \(id): \(error)"))
        }
    }
}
