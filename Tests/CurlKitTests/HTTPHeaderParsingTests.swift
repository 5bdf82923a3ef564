@testable import CurlKit
import Foundation
import Testing

/// The response's header fields as `HTTPClient` reads them from libcurl's header lines: names
/// matched with ASCII case folded, values without HTTP's optional whitespace (spaces and tabs)
/// around them, anything else kept as sent.
@Suite struct HTTPHeaderParsingTests {
    static func response(_ lines: [String]) -> HTTPResponse {
        let timing = TransferTiming(nameLookup: .zero, connected: .zero, tlsEstablished: .zero, firstByte: .zero, total: .zero, newConnections: 0)
        return HTTPClient.response(from: TransferResult(responseCode: 503, headerLines: lines, body: Data(), timing: timing))
    }

    @Test func valuesLoseSpacesAndTabsAroundThemOnly() {
        let response = Self.response([
            "HTTP/1.1 503 Service Unavailable", "Retry-After: \t 30 \t", "X-Name:été ", "X-Empty:", "X-Blank: \t ",
            "Content-Type : text/xml; charset=UTF-8", "X-Inner: a  b", "X-Nbsp: \u{00A0}v\u{00A0}",
        ])
        #expect(response.reason == "Service Unavailable")
        #expect(response.headers["retry-after"] == "30")
        #expect(response.headers["x-name"] == "été")
        #expect(response.headers["x-empty"] == "")
        #expect(response.headers["x-blank"] == "")
        #expect(response.headers["content-type"] == "text/xml; charset=UTF-8")
        #expect(response.headers["x-inner"] == "a  b")
        // A no-break space is not HTTP whitespace: it is part of the value.
        #expect(response.headers["x-nbsp"] == "\u{00A0}v\u{00A0}")
    }

    @Test func namesMatchIgnoringASCIICaseOnly() {
        var headers: HTTPHeaders = ["Set-Cookie": "a=1"]
        headers.add("SET-COOKIE", "b=2")
        headers.add("Retry-After", "30")
        #expect(headers.values(for: "set-cookie") == ["a=1", "b=2"])
        headers.set("retry-AFTER", "5")
        #expect(headers.values(for: "Retry-After") == ["5"])
        headers.remove("SET-cookie")
        #expect(headers.values(for: "Set-Cookie").isEmpty)
        #expect(!HTTPHeaders.sameName("Retry-After", "Retry-Aftex"))
        #expect(!HTTPHeaders.sameName("Retry", "Retry-After"))
        // Only ASCII letters fold: "É" and "é" are different bytes in a name.
        #expect(!HTTPHeaders.sameName("X-É", "X-é"))
        #expect(HTTPHeaders.sameName("X-é", "x-é"))
        // '[' (0x5B) and '{' (0x7B) differ by the case bit but are not letters.
        #expect(!HTTPHeaders.sameName("X-[", "X-{"))
    }
}
