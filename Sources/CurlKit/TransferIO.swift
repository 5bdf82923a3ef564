import CCurl
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Feeds a request body to libcurl's read callback, a piece at a time.
final class UploadReader {
    private enum Source {
        case data(Data, offset: Int)
        case file(fd: Int32)
        case stream(ChunkStream, pending: Data, consumed: Bool)
    }
    private var source: Source
    let length: Int64?

    init(_ upload: UploadSource) throws(CurlError) {
        switch upload {
        case .data(let data):
            source = .data(data, offset: 0)
            length = Int64(data.count)
        case .file(let url):
            let fd = open(url.path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw CurlError(kind: .uploadFailed, code: 0, codeName: "none",
                                detail: "cannot open the request body file \(url.path): \(String(cString: strerror(errno)))")
            }
            var info = stat()
            guard fstat(fd, &info) == 0 else {
                Glibc.close(fd)
                throw CurlError(kind: .uploadFailed, code: 0, codeName: "none", detail: "cannot stat \(url.path)")
            }
            source = .file(fd: fd)
            length = Int64(info.st_size)
        case .stream(let stream, let length):
            source = .stream(stream, pending: Data(), consumed: false)
            self.length = length
        }
    }

    /// Fills `buffer`; returns 0 at the end.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        switch source {
        case .data(let data, let offset):
            let count = min(buffer.count, data.count - offset)
            guard count > 0 else { return 0 }
            data.withUnsafeBytes { bytes in
                buffer.baseAddress!.copyMemory(from: bytes.baseAddress! + offset, byteCount: count)
            }
            source = .data(data, offset: offset + count)
            return count
        case .file(let fd):
            while true {
                let count = Glibc.read(fd, buffer.baseAddress, buffer.count)
                if count >= 0 { return count }
                if errno != EINTR { throw UploadError(message: "reading the request body file failed: \(String(cString: strerror(errno)))") }
            }
        case .stream(let stream, var pending, _):
            while pending.isEmpty {
                guard let chunk = try stream.next() else { source = .stream(stream, pending: pending, consumed: true); return 0 }
                pending = chunk
            }
            let count = min(buffer.count, pending.count)
            pending.withUnsafeBytes { bytes in buffer.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: count) }
            pending.removeFirst(count)
            source = .stream(stream, pending: pending.isEmpty ? Data() : pending, consumed: true)
            return count
        }
    }

    /// Back to the start, for libcurl resending on a fresh connection. Streams cannot.
    func rewind() -> Bool {
        switch source {
        case .data(let data, _): source = .data(data, offset: 0); return true
        case .file(let fd): return lseek(fd, 0, SEEK_SET) == 0
        case .stream(_, _, let consumed): return !consumed
        }
    }

    func close() {
        switch source {
        case .file(let fd): Glibc.close(fd); source = .data(Data(), offset: 0)
        case .stream(let stream, _, _): stream.close()
        case .data: break
        }
    }
}

struct UploadError: Error { var message: String }

/// Receives the response body from libcurl's write callback.
final class DownloadWriter {
    private enum Sink {
        case collect(limit: Int)
        case file(fd: Int32, url: URL)
        case sink(@Sendable (Data) throws -> Void)
    }
    private var sink: Sink
    private(set) var body = Data()
    /// Why the last write was refused (libcurl then reports CURLE_WRITE_ERROR).
    private(set) var failure: CurlError?

    init(_ destination: ResponseBodyDestination) throws(CurlError) {
        switch destination {
        case .collect(let limit): sink = .collect(limit: limit)
        case .sink(let block): sink = .sink(block)
        case .file(let url):
            let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                throw CurlError(kind: .downloadFailed, code: 0, codeName: "none",
                                detail: "cannot create the response file \(url.path): \(String(cString: strerror(errno)))")
            }
            sink = .file(fd: fd, url: url)
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        switch sink {
        case .collect(let limit):
            guard body.count + bytes.count <= limit else {
                failure = CurlError(kind: .responseTooLarge, code: 0, codeName: "none",
                                    detail: "the response body exceeds the limit of \(limit) bytes")
                return false
            }
            body.append(bytes.assumingMemoryBound(to: UInt8.self))
            return true
        case .file(let fd, let url):
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = CurlError(kind: .downloadFailed, code: 0, codeName: "none",
                                        detail: "writing the response file \(url.path) failed: \(String(cString: strerror(errno)))")
                    return false
                }
                offset += written
            }
            return true
        case .sink(let block):
            do {
                try block(Data(bytes))
                return true
            } catch {
                failure = CurlError(kind: .downloadFailed, code: 0, codeName: "none",
                                    detail: "the response sink failed: \(error)")
                return false
            }
        }
    }

    /// Closes the file; a failed transfer's partial file is removed.
    func finish(success: Bool) {
        if case .file(let fd, let url) = sink {
            Glibc.close(fd)
            if !success { unlink(url.path) }
            sink = .collect(limit: 0)
        }
    }
}

/// A cancellation flag set from any thread, read by the progress callback.
final class CancelFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

/// Everything the C callbacks of one transfer reach through their user pointer.
final class TransferContext {
    let reader: UploadReader?
    let writer: DownloadWriter
    let cancel: CancelFlag
    var headerLines: [String] = []
    var uploadFailure: String?
    let resetHeadersOnStatusLine: Bool

    init(reader: UploadReader?, writer: DownloadWriter, cancel: CancelFlag, http: Bool) {
        self.reader = reader
        self.writer = writer
        self.cancel = cancel
        self.resetHeadersOnStatusLine = http
    }

    var opaque: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }
    static func from(_ pointer: UnsafeMutableRawPointer?) -> TransferContext {
        Unmanaged<TransferContext>.fromOpaque(pointer!).takeUnretainedValue()
    }
}

// The C callbacks: plain functions (no captures), the context comes through the user pointer.

let curlWriteCallback: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = {
    pointer, size, count, user in
    let total = size * count
    let context = TransferContext.from(user)
    return context.writer.write(UnsafeRawBufferPointer(start: pointer, count: total)) ? total : 0
}

let curlHeaderCallback: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = {
    pointer, size, count, user in
    let total = size * count
    let context = TransferContext.from(user)
    var line = String(decoding: UnsafeRawBufferPointer(start: pointer, count: total), as: UTF8.self)
    while let last = line.last, last.isNewline { line.removeLast() }  // "\r\n" is one Character
    // Interim responses (100 Continue) and redirects each start with a status line: keep only the last block.
    if context.resetHeadersOnStatusLine && line.hasPrefix("HTTP/") { context.headerLines.removeAll() }
    if !line.isEmpty { context.headerLines.append(line) }
    return total
}

let curlReadCallback: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = {
    pointer, size, count, user in
    let context = TransferContext.from(user)
    guard let reader = context.reader else { return 0 }
    do {
        return try reader.read(into: UnsafeMutableRawBufferPointer(start: pointer, count: size * count))
    } catch {
        context.uploadFailure = (error as? UploadError)?.message ?? "the request body stream failed: \(error)"
        return Int(CURL_READFUNC_ABORT)
    }
}

let curlSeekCallback: @convention(c) (UnsafeMutableRawPointer?, curl_off_t, Int32) -> Int32 = { user, offset, origin in
    let context = TransferContext.from(user)
    guard offset == 0, origin == SEEK_SET, let reader = context.reader, reader.rewind() else {
        return CURL_SEEKFUNC_CANTSEEK
    }
    return CURL_SEEKFUNC_OK
}

let curlProgressCallback: @convention(c) (UnsafeMutableRawPointer?, curl_off_t, curl_off_t, curl_off_t, curl_off_t) -> Int32 = {
    user, _, _, _, _ in
    TransferContext.from(user).cancel.isSet ? 1 : 0
}
