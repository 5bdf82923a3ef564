import Foundation

/// One entry of an address allow-list: a single IPv4/IPv6 address or a CIDR range
/// (`10.1.2.3`, `10.1.0.0/16`, `::1`, `fd00::/8`). An IPv4-mapped IPv6 peer
/// (`::ffff:10.1.2.3`, what a dual-stack listener reports) matches the IPv4 entries.
public struct ClientAddressRange: Sendable, Hashable, CustomStringConvertible {
    /// Network bytes (4 or 16), host bits cleared.
    public let network: [UInt8]
    public let prefixLength: Int

    /// Nil when `text` is not an address or a CIDR range with a prefix length that fits.
    public init?(_ text: String) {
        let parts = text.trimmingWhitespace().split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2, let bytes = Self.bytes(String(parts[0])) else { return nil }
        let bits = bytes.count * 8
        var length = bits
        if parts.count == 2 {
            guard parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(parts[1]), (0...bits).contains(n) else { return nil }
            length = n
        }
        network = Self.mask(bytes, length)
        prefixLength = length
    }

    /// True when `address` (a numeric IPv4 or IPv6 address, as a peer is reported) is in the range.
    public func contains(_ address: String) -> Bool {
        guard var bytes = Self.bytes(address) else { return false }
        if bytes.count == 16, network.count == 4, bytes.prefix(12) == Self.mappedPrefix[...] { bytes = Array(bytes.suffix(4)) }
        guard bytes.count == network.count else { return false }
        return Self.mask(bytes, prefixLength) == network
    }

    public var description: String {
        var text = [UInt8](repeating: 0, count: 64)
        let family = network.count == 4 ? AF_INET : AF_INET6
        let shown = network.withUnsafeBytes { raw in inet_ntop(family, raw.baseAddress, &text, socklen_t(text.count)) }
        let address = shown == nil ? "?" : String(decoding: text.prefix { $0 != 0 }, as: UTF8.self)
        return prefixLength == network.count * 8 ? address : "\(address)/\(prefixLength)"
    }

    static let mappedPrefix: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]

    /// The address bytes of a numeric IPv4 or IPv6 address (a zone suffix `%eth0` is ignored).
    static func bytes(_ text: String) -> [UInt8]? {
        let address = text.split(separator: "%", maxSplits: 1).first.map(String.init) ?? text
        var v4 = in_addr()
        if inet_pton(AF_INET, address, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, address, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    static func mask(_ bytes: [UInt8], _ length: Int) -> [UInt8] {
        bytes.enumerated().map { i, byte in
            let keep = max(0, min(8, length - i * 8))
            return keep == 8 ? byte : byte & UInt8(truncatingIfNeeded: 0xFF << (8 - keep))
        }
    }
}
