import Foundation
import Testing
@testable import CDA

/// The CDA body's own base64 encoder must give Foundation's output byte for byte.
@Suite struct Base64BodyTests {
    @Test func matchesFoundationForEverySizeAndByte() {
        var generator = SystemRandomNumberGenerator()
        var sizes = Array(0...300)
        sizes += [3 << 18, (3 << 18) + 1, (3 << 18) + 2, 1_000_003]
        for size in sizes {
            let input = Data((0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) })
            #expect(Base64Body.encode(input) == input.base64EncodedData(), "size \(size)")
        }
        let every = Data((0...255).map(UInt8.init) + (0...255).reversed().map(UInt8.init))
        #expect(Base64Body.encode(every) == every.base64EncodedData())
        // A slice that does not start at index 0, as the streamed build passes.
        let slice = every[7..<500]
        #expect(Base64Body.encode(slice) == slice.base64EncodedData())
    }

    @Test func documentPutsTheBodyBetweenHeadAndTail() {
        let body = Data("%PDF-1.7 body".utf8)
        let document = Base64Body.document(head: Data("<text>".utf8), body: body, tail: Data("</text>".utf8))
        #expect(String(decoding: document, as: UTF8.self) == "<text>\(body.base64EncodedString())</text>")
        #expect(Base64Body.document(head: Data(), body: Data(), tail: Data()).isEmpty)
    }
}

/// The template is rendered around a marker and cut there: exactly one occurrence, or nothing.
@Suite struct MarkerSplitTests {
    @Test func cutsAtTheOneMarkerOnly() throws {
        func split(_ text: String) -> (String, String)? {
            CDABuilder.split(Array(text.utf8), around: Array("MARK".utf8)).map {
                (String(decoding: $0.head, as: UTF8.self), String(decoding: $0.tail, as: UTF8.self))
            }
        }
        #expect(split("<a>MARK</a>")! == ("<a>", "</a>"))
        #expect(split("MARK")! == ("", ""))
        #expect(split("éMARKà")! == ("é", "à"))
        #expect(split("MAR K") == nil)
        #expect(split("MARKMARK") == nil)
        #expect(split("xMARKyMARKz") == nil)
        #expect(split("") == nil)
    }
}
