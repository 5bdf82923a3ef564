import Foundation
import PasserelleCore

/// What a file dropped into the inbox is, decided from its name and its neighbours.
///
/// Documents drive the pairing: `NAME.pdf` or `NAME.xml` (CDA) goes with the sidecar
/// `NAME.json`; `.hl7` / `.er7` files stand alone. A sidecar next to its document is
/// ``ignored(_:_:)`` (it travels with the document).
public enum IntakeFile: Sendable, Equatable {
    /// A PDF and its JSON sidecar.
    case pdf(document: URL, sidecar: URL)
    /// A producer-built CDA and its JSON sidecar.
    case cda(document: URL, sidecar: URL)
    /// An HL7 v2 message (ORU/MDM document, or ADT).
    case hl7(URL)
    /// Half of a pair whose other half has not arrived (yet): retry later, refuse after a grace period
    /// with ``refusal``.
    case incomplete(URL, refusal: RefusalReason)
    /// Not for the intake: hidden, partial upload, directory, stability marker, paired sidecar.
    case ignored(URL, IgnoreReason)
    /// Never processable as is: move to error/ with the reason.
    case refused(URL, RefusalReason)
    /// A pair refused whole (one half is a symbolic link or not a regular file): both files go to
    /// error/ together, so the regular half does not wait in the inbox for ever.
    case refusedPair([URL], RefusalReason)

    /// Why a file is left alone.
    public enum IgnoreReason: String, Sendable, Hashable {
        /// `symbolicLink` is kept for source compatibility: links are now refused (never followed).
        case hidden, symbolicLink, partial, directory, marker, pairedSidecar, missing
    }

    /// Suffixes of files still being written (uploaders, editors, WinSCP's `.filepart`; rsync
    /// writes hidden files, ignored as such).
    public static let partialSuffixes = [".part", ".filepart", ".partial", ".tmp", "~", ".crdownload", ".swp"]
    /// Suffix of the marker a producer may drop to say "NAME is complete" (`NAME.pdf.done` or `NAME.done`).
    public static let markerSuffix = ".done"

    /// A file name's stem and extension, split as Foundation's `URL.deletingPathExtension()` and
    /// `pathExtension` split it, from the name alone where the extension is plain letters and
    /// digits (`NAME.pdf` → `NAME`, `pdf`): a URL made from a bare name is resolved against the
    /// working directory (a getcwd per call), which made the inbox scan ~1.5 % of a document's
    /// CPU. Any other name (hidden, spaces or symbols after the last dot) goes through Foundation.
    public static func nameParts(_ name: String) -> (stem: Substring, ext: Substring) {
        let bytes = name.utf8
        if let dot = bytes.lastIndex(of: UInt8(ascii: ".")), dot != bytes.startIndex, bytes.first != UInt8(ascii: "."),
           bytes.index(after: dot) != bytes.endIndex,
           bytes[bytes.index(after: dot)...].allSatisfy({ $0 < 0x80 && (UInt8(ascii: "0")...UInt8(ascii: "9") ~= $0
                                                        || UInt8(ascii: "a")...UInt8(ascii: "z") ~= $0 || UInt8(ascii: "A")...UInt8(ascii: "Z") ~= $0) }) {
            return (name[..<dot], name[bytes.index(after: dot)...])
        }
        let url = URL(fileURLWithPath: "/", isDirectory: true).appendingPathComponent(name, isDirectory: false)
        return (url.deletingPathExtension().lastPathComponent[...], url.pathExtension[...])
    }

    /// Classifies one directory entry. Looks at the entry itself and at its pair (both with
    /// `lstat`: a symbolic link is never followed) and at its neighbours; never reads the content.
    ///
    /// A symbolic link (or a FIFO, socket, device) is refused and moved to error/ itself (the
    /// link, never its target); when it is one half of a pair, the pair is refused whole.
    /// - Parameter namesakes: the names in the same directory with the same stem (NAME.*), when
    ///   the caller has listed it already; nil lists the directory (once per call: a scan of n
    ///   files must pass them, or it costs n² — minutes for a 100,000-file backlog).
    public static func classify(_ url: URL, namesakes: [String]? = nil) -> IntakeFile {
        let name = url.lastPathComponent
        if name.hasPrefix(".") { return .ignored(url, .hidden) }
        if partialSuffixes.contains(where: { name.hasSuffix($0) }) { return .ignored(url, .partial) }
        if name.hasSuffix(markerSuffix) { return .ignored(url, .marker) }
        guard let kind = entryKind(url) else { return .ignored(url, .missing) }
        if kind == .directory { return .ignored(url, .directory) }
        let parts = nameParts(name)
        let ext = parts.ext.lowercased()
        func sibling(_ extensions: [String]) -> URL? {
            // Exact-case match first, then any case (NAME.PDF with NAME.json).
            let dir = url.deletingLastPathComponent()
            let entries = namesakes ?? (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            let stem = parts.stem
            return entries.first { e in
                let parts = nameParts(e)
                return parts.stem == stem && extensions.contains(parts.ext.lowercased())
            }.map { dir.appendingPathComponent($0, isDirectory: false) }
        }
        if let refusal = kind.refusal(name: name) {
            switch ext {
            case "pdf", "xml":
                // The pair goes to error/ whole: its regular half would otherwise wait for ever.
                return .refusedPair([url] + [sibling(["json"])].compactMap { $0 }, refusal)
            case "json":
                // With a document next to it, the document's classification refuses the pair.
                if ["pdf", "xml"].contains(where: { sibling([$0]) != nil }) { return .ignored(url, .pairedSidecar) }
                return .refused(url, refusal)
            default:
                return .refused(url, refusal)
            }
        }
        if kind.size == 0 { return .refused(url, .emptyFile(name: name)) }
        switch ext {
        case "hl7", "er7":
            return .hl7(url)
        case "pdf", "xml":
            guard let sidecar = sibling(["json"]) else {
                return .incomplete(url, refusal: .missingSidecar(document: name, expected: parts.stem + ".json"))
            }
            guard let sidecarKind = entryKind(sidecar) else {
                return .incomplete(url, refusal: .missingSidecar(document: name, expected: parts.stem + ".json"))
            }
            if let refusal = sidecarKind.refusal(name: sidecar.lastPathComponent) ?? (sidecarKind == .directory
                ? .notRegularFile(name: sidecar.lastPathComponent) : nil) {
                return .refusedPair([url, sidecar], refusal)
            }
            return ext == "pdf" ? .pdf(document: url, sidecar: sidecar) : .cda(document: url, sidecar: sidecar)
        case "json":
            let documents = ["pdf", "xml"].compactMap { sibling([$0]) }
            if documents.count > 1 { return .refused(url, .ambiguousSidecar(sidecar: name)) }
            if documents.isEmpty { return .incomplete(url, refusal: .orphanSidecar(sidecar: name)) }
            return .ignored(url, .pairedSidecar)
        default:
            return .refused(url, .unsupportedFileType(name: name))
        }
    }

    /// What an entry is, from `lstat` (a link is seen as a link, never as its target).
    public enum EntryKind: Sendable, Equatable {
        case regular(size: Int64), directory, symbolicLink, other

        public var size: Int64? { if case .regular(let s) = self { s } else { nil } }

        /// Why this entry cannot be taken, or nil for a regular file or a directory.
        public func refusal(name: String) -> RefusalReason? {
            switch self {
            case .regular, .directory: nil
            case .symbolicLink: .symbolicLink(name: name)
            case .other: .notRegularFile(name: name)
            }
        }
    }

    /// nil when the entry is gone.
    public static func entryKind(_ url: URL) -> EntryKind? {
        var info = stat()
        guard lstat(url.path, &info) == 0 else { return nil }
        switch info.st_mode & S_IFMT {
        case S_IFLNK: return .symbolicLink
        case S_IFDIR: return .directory
        case S_IFREG: return .regular(size: Int64(info.st_size))
        default: return .other
        }
    }
}

/// Why a file was refused, written next to it in `error/` (see ``report(for:at:language:)``)
/// and in the ERR-8 of an HL7 ACK: what is wrong, where, and what to do. Never contains patient
/// values. The texts, French and English, are all in RefusalTexts.swift.
public enum RefusalReason: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    case unsupportedFileType(name: String)
    case emptyFile(name: String)
    case missingSidecar(document: String, expected: String)
    case orphanSidecar(sidecar: String)
    case ambiguousSidecar(sidecar: String)
    case invalidSidecar(MetadataError)
    case invalidMessage(IntakeError)
    /// The document bytes are not usable (not a PDF, not XML, a CDA that fails its checks…).
    case invalidContent(ContentProblem)
    /// The entry is a symbolic link: links are never followed (the link itself goes to error/).
    case symbolicLink(name: String)
    /// The entry is a FIFO, socket, device or folder where a file was expected.
    case notRegularFile(name: String)
    /// The file is larger than its limit, found from its size before it is read.
    case tooLarge(name: String, size: Int64, limit: Int, key: String)
    /// The input was being processed when the process died `attempts` times: set aside so that a
    /// crash on one input can never block the intake (`key` is the setting).
    case interruptedTooOften(attempts: Int, key: String)
    /// The routing asked for cannot be served, found at intake by admission (one ERR each in an
    /// ACK). When other destinations remain, only these parts are refused (``IntakeOutcome/acceptedInPart(accepted:refused:)``).
    case routing([RoutingRefusal])

    /// Why a document's content cannot be used (found by the loader or the admission pipeline).
    public enum ContentProblem: Sendable, Hashable {
        /// NAME.pdf does not start with %PDF-.
        case notPDF(name: String)
        /// NAME.xml does not start with `<`.
        case notXML(name: String)
        /// The file cannot be opened or read (`errno`).
        case unreadable(name: String, errno: Int32)
        /// The document id and version are journaled already, from another input.
        case duplicateDocument(id: String, version: Int)
        /// A CDA (OBX-5 subtype XML, NAME.xml) that is not XML at all.
        case cdaNotXML(bytes: Int)
        /// A producer CDA that fails the checks: the check's text in English and, when written, in French.
        case cdaUnusable(detail: String, french: String?)
        /// A CDA header value too long for the DMP metadata.
        case cdaHeaderTooLong(MetadataProblem)
        /// The CDA cannot be built from the metadata (the reason in English and, when written, in
        /// French); `defaultKeys`: the `[cda] default_…` settings that would supply what HL7 v2 cannot carry.
        case cdaNotBuilt(detail: String, french: String?, defaultKeys: [String])
        /// The CDA fails the CDA schema (the validator's messages, in English).
        case schemaInvalid(messages: [String])
        /// The document id has an extension, which the DMP submission set signature cannot reference.
        case idHasExtension
    }

    /// The English text (logs, CLI, `[intake] language = "en"`).
    public var description: String { text(.en) }

    public var errorDescription: String? { description }

    /// The text of the reason file written next to a refused file in error/.
    public func report(for fileName: String, at date: Date = Date(), language: IntakeLanguage = .default) -> String {
        let stamp = ZonedDateTime(date: date, utcOffsetSeconds: TimeZone.current.secondsFromGMT(for: date)).iso
        return switch language {
        case .en: "Passerelle refused \(fileName) on \(stamp).\n\n\(text(.en))\n"
        case .fr: "Passerelle a refusé \(fileName) le \(stamp).\n\n\(text(.fr))\n"
        }
    }

    /// Name of the reason file for `fileName` (`NAME.pdf` → `NAME.pdf.error.txt`).
    public static func reportFileName(for fileName: String) -> String { fileName + ".error.txt" }
}

/// Why a destination of a document is refused at intake (decided once, by admission, for every
/// source). Never quotes patient values: statuses, flags and destinations only.
public enum RoutingRefusal: Sendable, Hashable {
    /// The DMP, or the patient's MSSanté mailbox, takes only a qualified identity (QUAL) and its INS.
    case identityNotQualified(target: Destination, status: IdentityStatus?)
    /// The MSSanté routing matrix forbids these destinations with these restriction flags.
    case forbiddenCombination(RoutingMatrix.Rule, destinations: [Destination], flags: [MetaDMPMSSFlag])
    /// A deletion notified by MSSanté needs the withdrawn document (its last version, a CDA in
    /// OBX-5): without it the notice cannot be built.
    case deletionNoticeWithoutDocument(targets: [Destination])
    /// DESTMSSANTEPS without any professional address (HL7 PRT RCT PRT-15.4, sidecar `mssante.recipients`).
    case noProfessionalRecipient

    /// The destinations this refusal concerns (all of them for a forbidden combination).
    public var targets: [Destination] {
        switch self {
        case .identityNotQualified(let target, _): [target]
        case .forbiddenCombination(_, let destinations, _): destinations
        case .deletionNoticeWithoutDocument(let targets): targets
        case .noProfessionalRecipient: [.mssantePS]
        }
    }
}

/// Decides when a file has finished arriving: either its size and modification time have
/// not changed for ``quietPeriod`` seconds, or a marker `NAME.EXT.done` / `NAME.done` exists.
public struct StabilityTracker: Sendable {
    public var quietPeriod: TimeInterval
    private var seen: [String: (size: Int64, mtime: TimeInterval, since: TimeInterval)] = [:]

    public init(quietPeriod: TimeInterval = 5) { self.quietPeriod = quietPeriod }

    /// The marker files that may announce `url` as complete.
    public static func markers(for url: URL) -> [URL] {
        [url.appendingPathExtension("done"), url.deletingPathExtension().appendingPathExtension("done")]
    }

    /// True when `url` is ready. Call on every scan; `now` is a monotonic or wall-clock time in seconds.
    /// With `settledAt` (the wall-clock time, seconds since 1970), a file seen for the first time
    /// whose modification time is at least one quiet period (and one second) older is ready at once: a backlog
    /// found at start-up has long finished arriving, while a file still being written has a
    /// recent modification time and waits as usual.
    public mutating func isStable(_ url: URL, now: TimeInterval, settledAt wallClock: TimeInterval? = nil) -> Bool {
        if Self.markers(for: url).contains(where: { FileManager.default.fileExists(atPath: $0.path) }) { return true }
        var info = stat()
        guard lstat(url.path, &info) == 0 else { seen[url.path] = nil; return false }
        let size = Int64(info.st_size)
        let mtime = TimeInterval(info.st_mtim.tv_sec) + TimeInterval(info.st_mtim.tv_nsec) / 1e9
        if let previous = seen[url.path], previous.size == size, previous.mtime == mtime {
            return now - previous.since >= quietPeriod
        }
        let firstSight = seen[url.path] == nil
        seen[url.path] = (size, mtime, now)
        // At least one second even with no quiet period: a file is never taken on first sight while it may still grow.
        if firstSight, let wallClock, wallClock - mtime >= max(quietPeriod, 1) { return true }
        return false
    }

    /// Forgets a file (claimed, refused or gone).
    public mutating func forget(_ url: URL) { seen[url.path] = nil }
}
