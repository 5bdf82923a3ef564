import Foundation
import HTTPWire
import OpenSSLKit

/// The endpoint's budgets: MTOM bodies up to 256 MiB (large-document tests), a generous
/// deadline for them, the usual header caps.
let endpointLimits = HTTPLimits(maxRequestLineBytes: 8192, maxHeaderBytes: 64 << 10, maxHeaderCount: 100,
                                maxBodyBytes: 256 << 20, requestDeadline: .seconds(120))

/// Sending half a response and closing, on purpose (a failure mode).
struct TruncatedOnPurpose: Error {}

/// What the endpoint answers: an ``HTTPResponse`` plus the endpoint's failure modes.
struct HTTPResponseMessage {
    var status: Int
    var contentType: String
    var body: Data
    var extraHeaders: [String: String] = [:]
    /// Close the connection after this response.
    var close = false
    /// Send half the body and close (failure mode).
    var truncate = false

    static func soap(status: Int, _ envelope: Data) -> HTTPResponseMessage {
        HTTPResponseMessage(status: status, contentType: "application/soap+xml; charset=UTF-8; action=\"urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse\"", body: envelope)
    }

    func write(to stream: TLSStream) throws {
        let response = HTTPResponse(status: status, contentType: contentType, body: body,
                                    headers: extraHeaders.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, close: close || truncate)
        if truncate {
            try stream.write(response.head)
            try stream.write(body.prefix(body.count / 2))
            stream.close()
            throw TruncatedOnPurpose()
        }
        try response.write(to: stream)
    }
}
