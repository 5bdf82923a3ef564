import DMP
import Foundation
import FuzzSupport

/// ITI-41 answers from the DMP: a first line `Content-Type: …` (optional) then the body, so
/// that both plain SOAP and MTOM multipart answers (with their boundary and start
/// parameters) are explored; then the decision taken on them.
func fuzzRegistryResponse(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let data = fuzzInput(bytes, count, maxBytes: 256 * 1024) else { return -1 }
    var contentType: String?
    var body = data
    let prefix = Data("Content-Type:".utf8)
    if data.starts(with: prefix), let newline = data.firstIndex(of: 0x0A) {
        contentType = String(decoding: data[data.startIndex + prefix.count..<newline], as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        body = Data(data[(newline + 1)...])
    }
    _ = try? ITI41Response.parse(body, contentType: contentType)
    _ = SubmissionDecision.decide(status: 200, contentType: contentType, retryAfter: nil, body: body)
    _ = SubmissionDecision.decide(status: 500, contentType: contentType, retryAfter: "120", body: body)
    return 0
}

runFuzzer { fuzzRegistryResponse($0, $1) }
