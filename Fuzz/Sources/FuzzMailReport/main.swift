import Foundation
import FuzzSupport
import MSSante

/// Mails read from the MSSanté application mailbox: the MIME reader and the DSN (RFC 3464)
/// and MDN (RFC 8098) parsers.
func fuzzMailReport(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let data = fuzzInput(bytes, count, maxBytes: 256 * 1024) else { return -1 }
    _ = MailReport.parse(data)
    return 0
}

runFuzzer { fuzzMailReport($0, $1) }
