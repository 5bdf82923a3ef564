import Foundation
import PasserelleCore

/// One system call of an `strace -f -ff -ttt -T -yy` trace (one file per thread).
struct TracedCall: Sendable {
    var thread: Int
    var start: Double
    var end: Double
    var name: String
    /// The first argument's descriptor, as `-yy` names it (a path, or `TCP:[a:p->b:q]`).
    var descriptor: String?
    /// The paths the call names (resolved against its directory descriptor), then the path of
    /// the descriptor `openat` returned.
    var paths: [String]
    var result: Int
    var raw: String

    var succeeded: Bool { result >= 0 }
    /// The raw argument text (flags such as O_CREAT, O_DIRECTORY).
    var arguments: String { raw }

    /// Parses one trace line; nil for lines that are not a finished call (signals, exit, unfinished).
    static func parse(_ line: String, thread: Int) -> TracedCall? {
        // 1795443532.185609 fsync(23</x/journal>) = 0 <0.000685>
        guard let space = line.firstIndex(of: " "), let start = Double(line[..<space]) else { return nil }
        let rest = line[line.index(after: space)...]
        guard let open = rest.firstIndex(of: "("), let durationOpen = rest.lastIndex(of: "<"), rest.hasSuffix(">"),
              let duration = Double(rest[rest.index(after: durationOpen)..<rest.index(before: rest.endIndex)]),
              let equals = rest.range(of: ") = ", options: .backwards) else { return nil }
        let name = String(rest[..<open])
        guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else { return nil }
        let args = String(rest[rest.index(after: open)..<equals.lowerBound])
        let outcome = rest[equals.upperBound..<durationOpen].trimmingCharacters(in: .whitespaces)
        let resultText = outcome.prefix { $0 == "-" || $0.isNumber }
        guard let result = Int(resultText) else { return nil }
        var call = TracedCall(thread: thread, start: start, end: start + duration, name: name, descriptor: nil, paths: [],
                              result: result, raw: args)
        call.descriptor = Self.leadingDescriptor(args)
        // Only calls that take paths: the data of a write may look like one.
        if ["openat", "mkdir", "mkdirat", "rename", "renameat", "renameat2", "link", "linkat", "unlink", "unlinkat"].contains(name) { call.paths = Self.paths(args) }
        if name == "openat", let path = Self.leadingDescriptor(String(outcome)) { call.paths.append(path) }
        return call
    }

    /// `23</a/b>` at the start of `text`: `/a/b`.
    static func leadingDescriptor(_ text: String) -> String? {
        guard let lt = text.firstIndex(of: "<"), text[..<lt].allSatisfy({ $0.isNumber || $0 == "-" }) || text[..<lt] == "AT_FDCWD" else { return nil }
        var depth = 0
        for i in text.indices[lt...] {
            if text[i] == "<" { depth += 1 }
            if text[i] == ">", !isArrow(text, i) { depth -= 1; if depth == 0 { return String(text[text.index(after: lt)..<i]) } }
        }
        return nil
    }

    /// The `>` of `->` in a socket's `[local->remote]`.
    static func isArrow(_ text: String, _ i: String.Index) -> Bool {
        i > text.startIndex && text[text.index(before: i)] == "-"
    }

    /// The quoted path arguments of path calls, made absolute with the descriptor before each.
    static func paths(_ args: String) -> [String] {
        var out: [String] = []
        var lastDirectory: String?
        var i = args.startIndex
        while i < args.endIndex {
            let c = args[i]
            if c == "<" {  // a descriptor annotation: remember it for a relative path that follows
                var depth = 0
                var j = i
                while j < args.endIndex {
                    if args[j] == "<" { depth += 1 }
                    if args[j] == ">", !isArrow(args, j) { depth -= 1; if depth == 0 { break } }
                    j = args.index(after: j)
                }
                if j < args.endIndex { lastDirectory = String(args[args.index(after: i)..<j]); i = args.index(after: j); continue }
            }
            if c == "\"" {
                var value = ""
                var j = args.index(after: i)
                while j < args.endIndex, args[j] != "\"" {
                    if args[j] == "\\" { j = args.index(after: j) }
                    if j < args.endIndex { value.append(args[j]) }
                    j = args.index(after: j)
                }
                if value.hasPrefix("/") { out.append(value) } else if let dir = lastDirectory { out.append(dir + "/" + value) }
                i = j < args.endIndex ? args.index(after: j) : j
                continue
            }
            i = args.index(after: i)
        }
        return out
    }

    /// The (local, remote) ports of a `-yy` TCP descriptor.
    var tcpPorts: (local: Int, remote: Int)? {
        guard let d = descriptor, d.hasPrefix("TCP"), let open = d.firstIndex(of: "["), let arrow = d.range(of: "->") else { return nil }
        let local = d[d.index(after: open)..<arrow.lowerBound]
        let remote = d[arrow.upperBound...].dropLast()
        guard let l = local.split(separator: ":").last.flatMap({ Int($0) }),
              let r = remote.split(separator: ":").last.flatMap({ Int($0.filter(\.isNumber)) }) else { return nil }
        return (l, r)
    }
}

/// Checks the order of writes, syncs and visible effects in a trace of `passerelle run`: what a
/// power cut at any instant would keep. A file's bytes survive once the file is fsynced; its
/// name once the folder holding it is fsynced.
///
/// - Per thread (Swift code between an `await` runs on one thread, and the blob store and
///   SQLite do their work synchronously): a write to a journal file, a blob or a refusal reason
///   must be synced before the file is renamed and before the thread does anything outside that
///   store; a file or folder created in (or renamed into) such a store must have its folder
///   synced before the thread leaves the store. With `synchronous=FULL`, SQLite syncs the WAL
///   before a commit returns; with NORMAL the thread would leave with the WAL unsynced.
/// - Across threads (in time): a claim moves from work/ to done/ only after a journal commit
///   and a blob sync that began after its files were last opened; an MLLP answer is written
///   only after a journal commit that began after the message was read.
struct SyscallAudit {
    struct Layout {
        var root: String
        var journal: String
        var blobs: String
        var error: String
        var work: String
        var done: String
        var patientKey: String
        var mllpPort: Int?
        var dmpPort: Int?
    }

    enum Store: String { case journal, blobs, errors }

    struct Counts: Equatable {
        var walSyncs = 0
        var blobRenames = 0
        var folderSyncs = 0
        var claimsDone = 0
        var mllpAnswers = 0
        var dmpConnections = 0
        var reasonFiles = 0
    }

    let layout: Layout
    private(set) var violations: [String] = []
    private(set) var counts = Counts()

    init(layout: Layout) { self.layout = layout }

    /// Reads every `PREFIX.<tid>` file of `directory` and audits them together.
    static func audit(directory: URL, layout: Layout) throws -> SyscallAudit {
        var calls: [TracedCall] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) {
            guard let tid = name.split(separator: ".").last.flatMap({ Int($0) }) else { continue }
            let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .isoLatin1)
            for line in text.split(separator: "\n") { if let call = TracedCall.parse(String(line), thread: tid) { calls.append(call) } }
        }
        var audit = SyscallAudit(layout: layout)
        audit.run(calls)
        return audit
    }

    func store(of path: String) -> Store? {
        let journalFolder = (layout.journal as NSString).deletingLastPathComponent
        if path == layout.journal || path.hasPrefix(layout.journal + "-") || path == layout.patientKey || path == journalFolder { return .journal }
        // A file published whole (DurableFiles.publishNew: the patient key, a reason file) is
        // written and synced under a hidden name beside it: that name is in the file's store.
        if let published = DurableFiles.publishedPath(ofHidden: path) { return store(of: published) }
        if path == layout.blobs || path.hasPrefix(layout.blobs + "/") { return .blobs }
        if path == layout.error || path.hasPrefix(layout.error + "/") { return .errors }
        return nil
    }

    /// Files whose bytes must be synced before they count (the -shm index is rebuilt on open).
    func mustSyncData(_ path: String) -> Bool { store(of: path) != nil && !path.hasSuffix("-shm") && path != layout.error }

    struct Obligation { var path: String; var store: Store; var because: String }

    mutating func run(_ all: [TracedCall]) {
        // A non-blocking connect answers EINPROGRESS: still a connection being opened.
        let calls = all.filter { $0.succeeded || $0.name == "connect" }.sorted { ($0.start, $0.thread) < ($1.start, $1.thread) }
        var dirtyData: [Int: [String: Obligation]] = [:]     // thread → file → why
        var dirtyFolders: [Int: [String: Obligation]] = [:]  // thread → folder → why
        var walSyncEnds: [Double] = []
        var blobRootSyncEnds: [Double] = []
        var lastOpen: [String: Double] = [:]  // claim folder → end of the last open of one of its files
        var mllpReadEnd: [String: Double] = [:]  // socket → end of the last read not yet answered
        let walPath = layout.journal + "-wal"

        func leave(_ call: TracedCall, _ store: Store?) {
            for (path, o) in dirtyData[call.thread] ?? [:] where o.store != store {
                violations.append("thread \(call.thread): \(o.because) \(path), and it went on (\(call.name) \(call.paths.first ?? call.descriptor ?? "")) without syncing it")
                dirtyData[call.thread]?[path] = nil
            }
            for (path, o) in dirtyFolders[call.thread] ?? [:] where o.store != store {
                violations.append("thread \(call.thread): \(o.because) in \(path), and it went on (\(call.name) \(call.paths.first ?? call.descriptor ?? "")) without syncing the folder")
                dirtyFolders[call.thread]?[path] = nil
            }
        }
        func created(_ path: String, by call: TracedCall, _ what: String) {
            guard let s = store(of: path), !path.hasSuffix("-shm") else { return }
            let folder = (path as NSString).deletingLastPathComponent
            dirtyFolders[call.thread, default: [:]][folder] = Obligation(path: folder, store: s, because: "\(what) \((path as NSString).lastPathComponent)")
        }

        for call in calls {
            switch call.name {
            case "fsync", "fdatasync":
                guard let path = call.descriptor else { continue }
                for t in dirtyData.keys { dirtyData[t]?[path] = nil }
                for t in dirtyFolders.keys { dirtyFolders[t]?[path] = nil }
                if path == walPath { walSyncEnds.append(call.end); counts.walSyncs += 1 }
                if path == layout.blobs { blobRootSyncEnds.append(call.end) }
                if store(of: path) != nil || path == layout.root { counts.folderSyncs += path == walPath ? 0 : 1 }
                continue  // neutral: syncing is never "going on"
            case "write", "pwrite64", "writev", "pwritev", "sendto", "sendmsg":
                let target = call.descriptor ?? ""
                if let ports = call.tcpPorts {
                    leave(call, nil)
                    if ports.local == layout.mllpPort, let read = mllpReadEnd[target] {
                        counts.mllpAnswers += 1
                        if !walSyncEnds.contains(where: { $0 > read && $0 <= call.start }) {
                            violations.append("MLLP answer written on \(target) without a journal commit synced since the message was read")
                        }
                        mllpReadEnd[target] = nil
                    }
                    continue
                }
                let s = store(of: target)
                leave(call, s)
                if mustSyncData(target) {
                    dirtyData[call.thread, default: [:]][target] = Obligation(path: target, store: s!, because: "wrote")
                }
            case "read", "recvfrom":
                // Reading changes nothing a power cut could lose (SQLite reads /dev/urandom before
                // syncing its folder): not "going on".
                let target = call.descriptor ?? ""
                if let ports = call.tcpPorts, ports.local == layout.mllpPort, call.result > 0 { mllpReadEnd[target] = call.end }
            case "connect":
                leave(call, nil)
                if let port = layout.dmpPort, call.raw.contains("sin_port=htons(\(port))") || call.raw.contains("sin6_port=htons(\(port))") {
                    counts.dmpConnections += 1
                }
            case "openat":
                guard let path = call.paths.last else { continue }
                let s = store(of: path)
                if call.arguments.contains("O_RDONLY") && !call.arguments.contains("O_CREAT") {
                    if path.hasPrefix(layout.work + "/") { lastOpen[(path as NSString).deletingLastPathComponent] = call.end }
                    continue  // opening to read, or a folder to sync it: neutral
                }
                leave(call, s)
                if call.arguments.contains("O_CREAT") { created(path, by: call, "created") }
                if path.hasPrefix(layout.work + "/") { lastOpen[(path as NSString).deletingLastPathComponent] = call.end }
                if s == .errors && path.hasSuffix(".error.txt") { counts.reasonFiles += 1 }
            case "link", "linkat":
                // A file published whole (DurableFiles.publishNew): its bytes must be synced under
                // the hidden name first, and the new name's folder synced after, as for a rename.
                guard call.paths.count >= 2 else { continue }
                let (from, to) = (call.paths[0], call.paths[1])
                for (t, files) in dirtyData where files[from] != nil {
                    violations.append("\(from) linked as \(to) before its bytes were synced (written by thread \(t))")
                    dirtyData[t]?[from] = nil
                }
                leave(call, store(of: to))
                created(to, by: call, "linked in")
                if store(of: to) == .errors && to.hasSuffix(".error.txt") { counts.reasonFiles += 1 }
            case "mkdir", "mkdirat":
                guard let path = call.paths.first else { continue }
                leave(call, store(of: path))
                created(path, by: call, "created the folder")
            case "rename", "renameat", "renameat2":
                guard call.paths.count >= 2 else { continue }
                let (from, to) = (call.paths[0], call.paths[1])
                for (t, files) in dirtyData where files[from] != nil {
                    violations.append("\(from) renamed to \(to) before its bytes were synced (written by thread \(t))")
                    dirtyData[t]?[from] = nil
                }
                leave(call, store(of: to) ?? store(of: from))
                created(to, by: call, "renamed in")
                if store(of: to) == .blobs { counts.blobRenames += 1 }
                if from.hasPrefix(layout.work + "/"), to.hasPrefix(layout.done + "/") {
                    counts.claimsDone += 1
                    let opened = lastOpen[from] ?? 0
                    if !walSyncEnds.contains(where: { $0 > opened && $0 <= call.start }) {
                        violations.append("\(from) moved to done/ without a journal commit synced after its files were read")
                    }
                    if !blobRootSyncEnds.contains(where: { $0 > opened && $0 <= call.start }) {
                        violations.append("\(from) moved to done/ without a blob synced after its files were read")
                    }
                }
            case "unlink", "unlinkat":
                leave(call, call.paths.first.flatMap(store(of:)))
            default:
                leave(call, nil)
            }
        }
        for (_, files) in dirtyData { for (path, o) in files { violations.append("at exit: \(o.because) \(path), never synced") } }
        for (_, folders) in dirtyFolders { for (path, o) in folders { violations.append("at exit: \(o.because) in \(path), folder never synced") } }
    }
}
