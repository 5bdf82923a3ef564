import Foundation

/// Base64 (RFC 4648 alphabet, padding, no line breaks) of a PDF body, written straight into the
/// buffer of the document around it. Foundation's encoder costs about ten instructions a byte
/// and its result is copied again into the document; this one turns each 12 bits into two
/// characters with one lookup, six input bytes at a time, writing each byte once.
enum Base64Body {
    static func encodedCount(_ count: Int) -> Int { (count + 2) / 3 * 4 }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// The two characters of every 12-bit value, first character in the low byte.
    private static let pairs: [UInt16] = (0..<4096).map { UInt16(alphabet[$0 >> 6]) | UInt16(alphabet[$0 & 63]) << 8 }

    /// Writes the encoding of `input` at `out`, which has room for ``encodedCount(_:)`` bytes.
    static func encode(_ input: UnsafeRawBufferPointer, into out: UnsafeMutableRawPointer) {
        let count = input.count
        guard count > 0, let base = input.baseAddress else { return }
        let bytes = base.assumingMemoryBound(to: UInt8.self)
        var i = 0, o = 0
        pairs.withUnsafeBufferPointer { table in
            // Six bytes to eight characters per turn: one unaligned 8-byte load (its last two
            // bytes unused, so it stops while 8 remain), four lookups, one 8-byte store.
            while i + 8 <= count {
                let w = UInt64(bigEndian: UnsafeRawPointer(bytes + i).loadUnaligned(as: UInt64.self))
                let v = UInt64(table[Int(truncatingIfNeeded: w >> 52)])
                    | UInt64(table[Int(truncatingIfNeeded: w >> 40) & 0xFFF]) << 16
                    | UInt64(table[Int(truncatingIfNeeded: w >> 28) & 0xFFF]) << 32
                    | UInt64(table[Int(truncatingIfNeeded: w >> 16) & 0xFFF]) << 48
                out.storeBytes(of: v.littleEndian, toByteOffset: o, as: UInt64.self)
                i += 6
                o += 8
            }
            while i + 3 <= count {
                let n = Int(bytes[i]) << 16 | Int(bytes[i + 1]) << 8 | Int(bytes[i + 2])
                out.storeBytes(of: table[n >> 12].littleEndian, toByteOffset: o, as: UInt16.self)
                out.storeBytes(of: table[n & 0xFFF].littleEndian, toByteOffset: o + 2, as: UInt16.self)
                i += 3
                o += 4
            }
        }
        let rest = count - i
        guard rest > 0 else { return }
        let n = Int(bytes[i]) << 16 | (rest == 2 ? Int(bytes[i + 1]) << 8 : 0)
        let pad = UInt8(ascii: "=")
        out.storeBytes(of: alphabet[n >> 18], toByteOffset: o, as: UInt8.self)
        out.storeBytes(of: alphabet[(n >> 12) & 63], toByteOffset: o + 1, as: UInt8.self)
        out.storeBytes(of: rest == 2 ? alphabet[(n >> 6) & 63] : pad, toByteOffset: o + 2, as: UInt8.self)
        out.storeBytes(of: pad, toByteOffset: o + 3, as: UInt8.self)
    }

    /// The base64 of `body` alone.
    static func encode(_ body: some DataProtocol & ContiguousBytes) -> Data {
        document(head: Data(), body: body, tail: Data())
    }

    /// `head`, the base64 of `body`, then `tail`: one allocation, each byte written once.
    static func document(head: Data, body: some ContiguousBytes, tail: Data) -> Data {
        body.withUnsafeBytes { input in
            let total = head.count + encodedCount(input.count) + tail.count
            guard total > 0 else { return Data() }
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: total, alignment: 16)
            head.copyBytes(to: buffer.assumingMemoryBound(to: UInt8.self), count: head.count)
            encode(input, into: buffer + head.count)
            let tailStart = buffer + head.count + encodedCount(input.count)
            tail.copyBytes(to: tailStart.assumingMemoryBound(to: UInt8.self), count: tail.count)
            return Data(bytesNoCopy: buffer, count: total, deallocator: .custom { pointer, _ in pointer.deallocate() })
        }
    }
}
