import COpenSSL
import Foundation

/// Hash algorithms used by the gateway (SHA-256 by default; SHA-1 only where a peer demands it).
public enum DigestAlgorithm: String, Sendable, CaseIterable, Codable {
    case sha1
    case sha256

    var md: OpaquePointer { self == .sha1 ? EVP_sha1() : EVP_sha256() }

    /// Digest length in bytes.
    public var length: Int { self == .sha1 ? 20 : 32 }
}

/// One-shot digests and encodings.
public enum Digest {
    /// The digest of `data`.
    public static func hash(_ data: some DataProtocol, algorithm: DigestAlgorithm = .sha256) -> Data {
        let context = DigestContext(algorithm)
        context.update(data)
        return context.finalize()
    }

    public static func sha1(_ data: some DataProtocol) -> Data { hash(data, algorithm: .sha1) }
    public static func sha256(_ data: some DataProtocol) -> Data { hash(data, algorithm: .sha256) }

    /// The digest of a file, read in chunks so large files are never held in memory whole.
    public static func hash(fileAt url: URL, algorithm: DigestAlgorithm = .sha256,
                            chunkSize: Int = 1 << 16) throws(OpenSSLError) -> Data {
        let handle: FileHandle
        do { handle = try FileHandle(forReadingFrom: url) } catch {
            throw .fileUnreadable(file: url.path,
                                  reason: FileManager.default.fileExists(atPath: url.path) ? "permission denied" : "no such file")
        }
        defer { try? handle.close() }
        let context = DigestContext(algorithm)
        while true {
            let chunk: Data?
            do { chunk = try handle.read(upToCount: chunkSize) } catch {
                throw .fileUnreadable(file: url.path, reason: error.localizedDescription)
            }
            guard let chunk, !chunk.isEmpty else { break }
            context.update(chunk)
        }
        return context.finalize()
    }
}

/// A streaming digest: `update` any number of times, then `finalize` once.
public final class DigestContext {
    public let algorithm: DigestAlgorithm
    private let context: OpaquePointer
    private var finished = false

    public init(_ algorithm: DigestAlgorithm = .sha256) {
        self.algorithm = algorithm
        // Allocation or init failure means the process is out of memory or OpenSSL is broken.
        guard let context = EVP_MD_CTX_new(), EVP_DigestInit_ex(context, algorithm.md, nil) == 1 else {
            fatalError("OpenSSL cannot initialise a \(algorithm) digest: \(ErrorQueue.drain())")
        }
        self.context = context
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ data: some DataProtocol) {
        precondition(!finished, "DigestContext.update after finalize")
        for region in data.regions {
            region.withUnsafeBytes { raw in
                _ = EVP_DigestUpdate(context, raw.baseAddress, raw.count)
            }
        }
    }

    /// The digest; the context cannot be updated afterwards.
    public func finalize() -> Data {
        precondition(!finished, "DigestContext.finalize called twice")
        finished = true
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        _ = EVP_DigestFinal_ex(context, &out, &length)
        return Data(out.prefix(Int(length)))
    }
}

extension Data {
    /// Lowercase hexadecimal, no separators.
    public var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(count * 2)
        for byte in self {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses hexadecimal (either case, optional ':' or ' ' separators); nil if malformed.
    public init?(hexString: String) {
        let cleaned = hexString.filter { $0 != ":" && $0 != " " }
        guard cleaned.count % 2 == 0 else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity(cleaned.count / 2)
        var index = cleaned.startIndex
        while index < cleaned.endIndex {
            let next = cleaned.index(index, offsetBy: 2)
            guard let byte = UInt8(cleaned[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        self.init(bytes)
    }
}
