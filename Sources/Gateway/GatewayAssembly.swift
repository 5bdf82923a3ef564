import Admission
import CDA
import CurlKit
import Delivery
import DMP
import Foundation
import Handoff
import IHE
import Intake
import Journal
import Logging
import MSSante
import OpenSSLKit
import PasserelleCore
import Signing

extension GatewayService {
    /// The service described by `configuration`.
    /// - Parameters:
    ///   - templates: the `Templates/` folder (CDA template).
    ///   - extraSenders: transports built elsewhere (MSSanté plugs in here), with their concurrency.
    ///   - events: told as documents move (metrics; see ``GatewayEvents``).
    public static func make(configuration c: PasserelleConfiguration, templates: URL,
                            extraSenders: [(any TransmissionSender, Int)] = [],
                            pollInterval: TimeInterval = 0.5,
                            events: any GatewayEvents = NoGatewayEvents()) throws(GatewayError) -> GatewayService {
        let logger = Logger(label: "passerelle.service")
        let s = c.service
        // An interrupted MSSanté send waits for its DSN only when the acknowledgements are read.
        let hold = c.mssante.enabled && c.mssante.imapURL != nil ? TimeInterval(c.mssante.uncertainGraceSeconds) : 0
        let policy = RetryPolicy(initialDelay: TimeInterval(s.retryInitialSeconds), maxDelay: TimeInterval(max(s.retryMaxSeconds, s.retryInitialSeconds)),
                                 maxAttempts: s.retryMaxAttempts, deadline: TimeInterval(s.retryDeadlineHours) * 3600,
                                 interruptedHold: hold)
        let journal: any JournalStore
        let blobs: BlobStore
        do {
            // PostgreSQL: the blobs come from the database (this node's cache in front of it).
            (journal, blobs) = try Journals.openWithBlobs(c.journal, policy: policy)
        } catch { throw .journal(error) }

        var enabled = Set<Destination>()
        if c.dmp.enabled { enabled.insert(.dmp) }
        if c.mssante.enabled { enabled.formUnion([.mssantePS, .mssantePatient]) }
        let settings = PipelineSettings(structureOID: c.structure.oid, finess: c.structure.finess.value, enabledTargets: enabled,
                                        patientKeySecret: try PatientKeySecret.load(patientKeyFile(c)),
                                        documentDefaults: c.cda.defaults)
        let builder: CDABuilder
        do {
            builder = try CDABuilder(templatesDirectory: templates, options: CDABuilder.Options(
                maximumPDFBytes: c.cda.maxPDFBytes, documentIDRoot: c.structure.oid,
                defaultStructure: HealthStructure(finess: c.structure.finess.value, name: c.structure.name),
                // With an XSD the validator parses the same short view and reads its header: once is enough.
                verify: c.cda.schema == nil))
        } catch { throw .configuration("CDA templates in \(templates.path): \(error.description)") }
        var validator: CDAValidator?
        if let schema = c.cda.schema {
            do { validator = try CDAValidator(schema: URL(fileURLWithPath: schema), budget: builder.options.parseBudget) } catch {
                throw .configuration("[cda] schema: \(error.description)")
            }
        }
        // Admission hands a document to the workers in memory: its first send reads nothing back.
        let admitted = AdmittedDocuments()
        let pipeline = Pipeline(journal: journal, blobs: blobs, settings: settings, builder: builder, validator: validator, events: events,
                                admitted: admitted)

        let folders = c.folders
        let scanner = InboxScanner(inbox: URL(fileURLWithPath: folders.inbox), work: URL(fileURLWithPath: folders.work),
                                   error: URL(fileURLWithPath: folders.error), quietPeriod: TimeInterval(folders.quietPeriodSeconds),
                                   language: c.intakeLanguage)
        for (key, folder) in [("inbox", folders.inbox), ("work", folders.work), ("error", folders.error), ("done", folders.done)] {
            // Synced into their parent: what is refused into error/ must not lose its folder in a power cut.
            if let failure = DurableFiles.createDirectory(URL(fileURLWithPath: folder)) {
                // Say why (read-only, not permitted, missing volume, full) from the parent's state.
                let parent = URL(fileURLWithPath: folder).deletingLastPathComponent().path
                let why = FileSystemCause.probe(folder: parent).map { "; " + $0.explanation(folder: parent, key: "[folders] \(key)") } ?? ""
                throw .file(path: folder, reason: failure + why)
            }
        }
        let limits = IntakeLimits(maxPDFBytes: c.cda.maxPDFBytes, maxSidecarBytes: folders.maxSidecarBytes, maxHL7Bytes: c.mllp.maxMessageBytes)
        let loader = IntakeLoader(limits: limits)
        let folder = FolderSource(scanner: scanner, done: URL(fileURLWithPath: folders.done), loader: loader,
                                  maxProcessingAttempts: folders.maxProcessingAttempts, workRetryInterval: TimeInterval(folders.workRetrySeconds))

        // Every key of the run, read once here and handed to each part (nothing else opens a .p12).
        let keys = try loadKeyMaterial(c)
        for warning in keys?.warnings ?? [] { logger.warning("\(warning)") }
        var senders = extraSenders
        if c.dmp.enabled { senders.append((try dmpSender(c, keys: keys), c.dmp.maxConnections)) }
        // MSSanté senders given by the caller (tests) take precedence over the configured ones.
        if !senders.contains(where: { $0.0.target == .mssantePS || $0.0.target == .mssantePatient }) {
            senders += try mssanteSenders(c, keys: keys, templates: templates, journal: journal)
        }
        let served = Set(senders.map(\.0.target))
        for target in enabled.subtracting(served).sorted(by: { $0.rawValue < $1.rawValue }) {
            logger.warning("no sender for an enabled target in this build: its transmissions stay queued",
                           metadata: ["target": "\(target.rawValue)"])
        }
        let workers = TransmissionWorkers(journal: journal, blobs: blobs, senders: senders,
                                          settings: WorkerSettings(lease: TimeInterval(s.leaseSeconds), pollInterval: pollInterval),
                                          events: events, admitted: admitted)
        let mllp = try mllpSettings(c, keys: keys).map {
            MLLPSource(settings: $0, scanner: scanner, loader: loader, maxProcessingAttempts: folders.maxProcessingAttempts)
        }
        return GatewayService(journal: journal, pipeline: pipeline, folder: folder, workers: workers, mllp: mllp, intakeConcurrency: folders.intakeConcurrency,
                              shutdownTimeout: TimeInterval(s.shutdownTimeoutSeconds),
                              acknowledgements: try acknowledgementPolling(c, keys: keys, journal: journal, events: events),
                              keyMaterial: keys,
                              retention: c.retentionDays.flatMap { days in
                                  (journal as? any JournalRetention).map { RetentionSchedule(journal: $0, days: days) }
                              },
                              heartbeat: ServiceHeartbeat(journal: journal))
    }

    /// `[journal] patient_key_file`, else `<journal without extension>.patient-key`.
    public static func patientKeyFile(_ c: PasserelleConfiguration) -> String {
        if let file = c.patientKeyFile { return file }
        let base: String = switch c.journal {
        case .sqlite(let path): path
        case .postgresql: URL(fileURLWithPath: c.file).deletingLastPathComponent().appendingPathComponent("journal").path
        }
        return URL(fileURLWithPath: base).deletingPathExtension().appendingPathExtension("patient-key").path
    }

    /// The DMP transport: `[dmp]`, `[structure]` and `[vihf]` mapped to its settings, the
    /// run's key material for its TLS client and signers.
    static func dmpSender(_ c: PasserelleConfiguration, keys: KeyMaterial?) throws(GatewayError) -> DMPTransmissionSender {
        guard let vihfSection = c.vihf else { throw .configuration("[vihf] is required when [dmp] enabled = true (see docs/passerelle.example.toml)") }
        guard let keys else { throw .configuration("DMP sender: no key material loaded") }
        let vihf: VIHFConfiguration
        do { vihf = try VIHFConfiguration(keys: vihfSection.values) } catch { throw .configuration("DMP sender: [vihf]: \(error)") }
        do {
            return DMPTransmissionSender(try DMP.DMPSender(settings: try DMPClientSettings(c.dmp), keys: keys,
                                                           submission: SubmissionSettings(c.structure), vihf: vihf))
        } catch {
            throw .configuration("DMP sender: \(error.description)")
        }
    }

    /// The two MSSanté senders for `[mssante]` (empty when disabled), `concurrency` each.
    /// `keys`: the run's key material (its authentication bundle is the SMTP client certificate).
    public static func mssanteSenders(_ c: PasserelleConfiguration, keys: KeyMaterial?, templates: URL, journal: any JournalStore,
                                      concurrency: Int = 2) throws(GatewayError) -> [(any TransmissionSender, Int)] {
        guard c.mssante.enabled else { return [] }
        let sender: MSSanteSender
        do {
            guard let identity = keys?.authentication else { throw GatewayError.configuration("[certificates] authentication is not loaded") }
            sender = try MSSanteSender(settings: try MSSanteSenderSettings(c), identity: identity, templatesDirectory: templates)
        } catch {
            throw .configuration("MSSanté sender: \(error)")
        }
        return [Destination.mssantePS, .mssantePatient].map {
            (MSSanteTransmissionSender(target: $0, sender: sender, journal: journal), concurrency)
        }
    }

    /// The acknowledgement poller when MSSanté is enabled with an `imap_url` (SASL EXTERNAL:
    /// the authentication certificate is the IMAP credential).
    static func acknowledgementPolling(_ c: PasserelleConfiguration, keys: KeyMaterial?, journal: any JournalStore,
                                       events: any GatewayEvents) throws(GatewayError) -> AcknowledgementPolling? {
        guard c.mssante.enabled, c.mssante.imapURL != nil else { return nil }
        do {
            guard let authentication = keys?.authentication else { throw GatewayError.configuration("[certificates] authentication is not loaded") }
            let poller = try AcknowledgementPoller(configuration: try IMAPConfiguration(c, identity: try .inMemory(authentication)),
                                                   mailbox: c.mssante.mailbox)
            return AcknowledgementPolling(poller: poller, journal: journal, interval: .seconds(c.mssante.pollIntervalSeconds), events: events)
        } catch {
            throw .configuration("MSSanté acknowledgements ([mssante] imap_url): \(error)")
        }
    }

    static func mllpSettings(_ c: PasserelleConfiguration, keys: KeyMaterial?) throws(GatewayError) -> MLLPSettings? {
        let m = c.mllp
        guard m.enabled else { return nil }
        var tls: TLSConfiguration?
        if m.tlsIdentity != nil {
            guard let bundle = keys?.serverIdentity else { throw .configuration("[mllp] tls_identity: not loaded") }
            tls = TLSConfiguration(trustedCAFile: m.tlsClientCA.map { URL(fileURLWithPath: $0) }, identity: bundle,
                                   requireClientCertificate: m.tlsClientCA != nil, timeout: TimeInterval(m.idleTimeoutSeconds))
        }
        return MLLPSettings(host: m.host, port: UInt16(m.port), maxMessageBytes: m.maxMessageBytes, maxConnections: m.maxConnections,
                            idleTimeout: TimeInterval(m.idleTimeoutSeconds), messageTimeout: TimeInterval(m.messageTimeoutSeconds),
                            maxConnectionsPerPeer: m.maxConnectionsPerPeer, allowedClients: m.allowedClients, tls: tls)
    }
}

/// The local secret behind ``PatientKey``: 32 random bytes in a 0600 file, created on first use.
public enum PatientKeySecret {
    public static func load(_ path: String) throws(GatewayError) -> Data {
        let url = URL(fileURLWithPath: path)
        if let data = try? Data(contentsOf: url), data.count >= 16 { return data }
        var bytes = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = generator.next() }
        let data = Data(bytes)
        do { try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true) } catch {}
        // Created exclusively and whole: two processes starting together (two nodes on one
        // journal) must not each write their own secret, and the loser must not read the
        // winner's file before its bytes are in (it did: "File exists", then an empty file).
        // A failed write (full disk) leaves no partial file.
        if let failure = DurableFiles.publishNew(data, to: path) {
            if let existing = try? Data(contentsOf: url), existing.count >= 16 { return existing }
            throw .file(path: path, reason: "cannot create the patient key file: \(failure)")
        }
        // A key lost in a power cut would be made anew, and the patient hashes already journaled
        // would no longer match (`resend --patient` would find nothing).
        if let failure = DurableFiles.syncDirectory(url.deletingLastPathComponent().path) { throw .file(path: path, reason: failure) }
        return data
    }
}
