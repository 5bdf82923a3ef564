import Foundation
import Journal
import Observability
import OpenSSLKit
import PasserelleCore
import Signing
import Synchronization

/// `/ready`: the journal answers a query, and (SQLite) its file and blob folder are still where
/// the configuration says — an open connection keeps working on a deleted file, so the query
/// alone would not see a removed or unmounted folder — with room for the next document: a read
/// query still answers on a full disk, where every document would be held back.
public struct JournalProbe: ReadinessProbe {
    public let journal: any JournalQueries
    public let configuration: PasserelleConfiguration.Journal
    /// Below this many free bytes where the journal and its blobs live, not ready.
    public let minimumFreeBytes: Int64

    /// - Parameter minimumFreeBytes: room for one large document (its record, its CDA and
    ///   the journal rows): `passerelle run` uses 3 × `[cda] max_pdf_bytes`.
    public init(journal: any JournalQueries, configuration: PasserelleConfiguration.Journal,
                minimumFreeBytes: Int64 = 64 * 1024 * 1024) {
        self.journal = journal
        self.configuration = configuration
        self.minimumFreeBytes = minimumFreeBytes
    }

    public func check() async -> ReadinessCheck {
        var folders: [String] = []
        if case .sqlite(let path) = configuration {
            let blobs = Journals.blobFolder(forDatabase: path).path
            for file in [path, blobs] where !FileManager.default.fileExists(atPath: file) {
                return ReadinessCheck(name: "journal", ready: false,
                                      detail: "\(file) is missing: check that its folder is mounted and readable by the service user")
            }
            folders = [URL(fileURLWithPath: path).deletingLastPathComponent().path, blobs]
        } else if case .postgresql(_, _, let cache, _, _) = configuration, let cache {
            folders = [cache]
        }
        for folder in folders {
            if let free = Self.freeBytes(folder), free < minimumFreeBytes {
                return ReadinessCheck(name: "journal", ready: false, detail:
                    "only \(free / 1024) KiB free on the file system of \(folder) (\(minimumFreeBytes / 1024) KiB needed for the next "
                    + "document): free space there; documents wait in the work folder and are taken again")
            }
        }
        do {
            _ = try await journal.transmission(id: 0)  // a primary-key lookup: cheap at any size
            return ReadinessCheck(name: "journal", ready: true)
        } catch {
            return ReadinessCheck(name: "journal", ready: false, detail: error.description)
        }
    }
}

extension JournalProbe {
    /// Bytes an unprivileged process may still write on the file system of `path` (statvfs).
    public static func freeBytes(_ path: String) -> Int64? {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0 else { return nil }
        return Int64(stats.f_bavail) * Int64(stats.f_frsize)
    }
}

/// `/ready`: one certificate of `[certificates]` is usable today (trusted, in its validity
/// period, not revoked, right key usage). Expiring soon is still ready (the daily log warns).
public struct CertificateProbe: ReadinessProbe {
    /// The key material, read once (what the service itself uses); read again while unreadable.
    public final class Keys: Sendable {
        public let source: KeyMaterialSource
        private let loaded = Mutex<KeyMaterial?>(nil)

        public init(source: KeyMaterialSource) { self.source = source }

        /// Key material the service already loaded (``material()`` then never reads the files).
        public init(loaded keys: KeyMaterial, source: KeyMaterialSource) {
            self.source = source
            loaded.withLock { $0 = keys }
        }

        public func material() -> Result<KeyMaterial, KeyMaterialError> {
            if let keys = loaded.withLock({ $0 }) { return .success(keys) }
            do {
                let keys = try KeyMaterial.load(source)
                loaded.withLock { $0 = keys }
                return .success(keys)
            } catch { return .failure(error) }
        }

        /// Today's check of every certificate, nil while they cannot be read.
        public func summary(warningDays: Int, at date: Date = Date()) -> CertificateCheckSummary? {
            guard case .success(let keys) = material() else { return nil }
            return keys.check(warningDays: warningDays, at: date)
        }
    }

    public let role: CertificateRole
    public let keys: Keys
    public let warningDays: Int

    public init(role: CertificateRole, keys: Keys, warningDays: Int) {
        self.role = role
        self.keys = keys
        self.warningDays = warningDays
    }

    public func check() async -> ReadinessCheck {
        let name = "certificate \(role.rawValue)"
        switch keys.material() {
        case .failure(let error):
            return ReadinessCheck(name: name, ready: false, detail: error.description)
        case .success(let material):
            guard let report = material.check(warningDays: warningDays).reports.first(where: { $0.label == role.rawValue }) else {
                return ReadinessCheck(name: name, ready: false, detail: "not configured in [certificates]")
            }
            let days = report.daysLeft.map { ", \($0) days left" } ?? ""
            switch report.state {
            case .ok: return ReadinessCheck(name: name, ready: true, detail: "valid\(days)")
            case .warning: return ReadinessCheck(name: name, ready: true, detail: "\(report.status)\(days): renew it")
            case .critical, .unknown: return ReadinessCheck(name: name, ready: false, detail: "\(report.status)")
            }
        }
    }
}

/// `/ready`: a TCP connection to a peer opens within a short timeout (no request is sent:
/// this says the network path is there, not that the service accepts documents).
public struct EndpointProbe: ReadinessProbe {
    public let name: String
    public let url: URL
    public var timeout: TimeInterval

    public init(name: String, url: URL, timeout: TimeInterval = 2) {
        self.name = name
        self.url = url
        self.timeout = timeout
    }

    public func check() async -> ReadinessCheck {
        guard let host = url.host else { return ReadinessCheck(name: name, ready: false, detail: "\(url) has no host") }
        let port = UInt16(url.port ?? (url.scheme == "http" ? 80 : 443))
        do {
            let socket = try await Socket.connect(host: host, port: port, timeout: timeout)
            socket.close()
            return ReadinessCheck(name: name, ready: true, detail: "\(host):\(port) reachable")
        } catch {
            return ReadinessCheck(name: name, ready: false, detail: "\(host):\(port): \(error)")
        }
    }
}
