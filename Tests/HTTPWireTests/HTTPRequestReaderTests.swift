import Foundation
import HTTPWire
import OpenSSLKit
import Synchronization
import Testing

/// A real TCP server whose connections are read by ``HTTPRequestReader`` with `limits`; it
/// answers each request with its method, path and body size, and records what the reader did.
private final class Outcomes: Sendable {
    private let list = Mutex<[String]>([])
    func append(_ outcome: String) { list.withLock { $0.append(outcome) } }
    var all: [String] { list.withLock { $0 } }
}

private final class EchoServer: Sendable {
    let outcomes = Outcomes()
    let server: SocketServer

    init(limits: HTTPLimits) throws {
        let outcomes = outcomes
        server = try SocketServer { socket in
            socket.setTimeout(5)
            let reader = HTTPRequestReader(socket, limits: limits)
            while true {
                do throws(HTTPReadError) {
                    guard let request = try reader.next() else {
                        outcomes.append("end")
                        break
                    }
                    outcomes.append("\(request.method) \(request.path) \(request.body.count)")
                    let text = "\(request.method) \(request.target) \(String(decoding: request.body, as: UTF8.self))\r\n"
                    try? HTTPResponse.text(200, text, close: request.wantsClose).write(to: socket)
                    if request.wantsClose { break }
                } catch {
                    outcomes.append("\(error)")
                    if let response = error.response { try? response.write(to: socket) }
                    break
                }
            }
            socket.close()
        }
    }

    var port: UInt16 { server.port }

    deinit { server.stop() }

    /// Sends `raw`, then reads until the server closes; returns what came back.
    func exchange(_ raw: String) throws -> String {
        let socket = try Socket.connect(host: "127.0.0.1", port: server.port, timeout: 10)
        defer { socket.close() }
        try socket.write(raw)
        return try readToEnd(socket)
    }

    /// Waits (a little) for the handler to record `count` outcomes.
    func recorded(_ count: Int) -> [String] {
        for _ in 0..<500 where outcomes.all.count < count { usleep(10_000) }
        return outcomes.all
    }
}

private func readToEnd(_ socket: Socket) throws -> String {
    var data = Data()
    while true {
        let chunk = try socket.read(maxLength: 65_536)
        if chunk.isEmpty { break }
        data.append(chunk)
    }
    return String(decoding: data, as: UTF8.self)
}

private func statusCodes(_ text: String) -> [Int] {
    text.components(separatedBy: "\r\n").filter { $0.hasPrefix("HTTP/1.1 ") }.compactMap { Int($0.split(separator: " ")[1]) }
}

@Suite struct HTTPRequestReaderTests {
    static let small = HTTPLimits(maxRequestLineBytes: 256, maxHeaderBytes: 1024, maxHeaderCount: 10, maxBodyBytes: 1000,
                                  requestDeadline: .seconds(5))

    /// Keep-alive and pipelining: a Content-Length request, a chunked one (with a trailer), and a
    /// last one that closes, all sent at once, answered in order.
    @Test func readsPipelinedRequests() throws {
        let server = try EchoServer(limits: Self.small)
        let answer = try server.exchange(
            "POST /a?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
                + "\r\nPUT /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n"
                + "GET /c HTTP/1.1\nConnection: close\n\n")
        #expect(statusCodes(answer) == [200, 200, 200])
        #expect(answer.contains("POST /a?x=1 hello"))
        #expect(answer.contains("PUT /b abcde"))
        #expect(answer.contains("GET /c "))
        #expect(server.recorded(3) == ["POST /a 5", "PUT /b 5", "GET /c 0"])
    }

    @Test func oversizedHeadersAre431() throws {
        let server = try EchoServer(limits: Self.small)
        let big = try server.exchange("GET / HTTP/1.1\r\nX-Big: \(String(repeating: "a", count: 2000))\r\n\r\n")
        #expect(statusCodes(big) == [431])
        let many = try server.exchange("GET / HTTP/1.1\r\n" + (0..<11).map { "X-\($0): v\r\n" }.joined() + "\r\n")
        #expect(statusCodes(many) == [431])
        // Headers that never end are refused as soon as they pass the cap, not when the client stops.
        let endless = try server.exchange("GET / HTTP/1.1\r\n" + String(repeating: "X-A: b\r\n", count: 300))
        #expect(statusCodes(endless) == [431])
        let line = try server.exchange("GET /\(String(repeating: "p", count: 300)) HTTP/1.1\r\n\r\n")
        #expect(statusCodes(line) == [414])
        #expect(server.recorded(4).allSatisfy { $0.contains("larger than") || $0.contains("more than") || $0.contains("longer than") })
    }

    @Test func oversizedBodiesAre413() throws {
        let server = try EchoServer(limits: Self.small)
        // Refused from the announced length, before any of the body is read.
        #expect(statusCodes(try server.exchange("POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n")) == [413])
        let chunks = String(repeating: "100\r\n\(String(repeating: "z", count: 256))\r\n", count: 4) + "0\r\n\r\n"
        #expect(statusCodes(try server.exchange("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)) == [413])
        #expect(server.recorded(2) == ["request body larger than 1000 bytes", "request body larger than 1000 bytes"])
    }

    @Test func malformedRequestsAre400() throws {
        let server = try EchoServer(limits: Self.small)
        #expect(statusCodes(try server.exchange("GET /\r\n\r\n")) == [400])
        #expect(statusCodes(try server.exchange("GET / HTTP/1.1\r\nno colon\r\n\r\n")) == [400])
        #expect(statusCodes(try server.exchange("GET / HTTP/1.1\r\n folded: x\r\n\r\n")) == [400])
        // Request smuggling shapes.
        #expect(statusCodes(try server.exchange("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")) == [400])
        #expect(statusCodes(try server.exchange("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd")) == [400])
        #expect(statusCodes(try server.exchange("POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc")) == [400])
        #expect(statusCodes(try server.exchange("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n")) == [501])
        #expect(statusCodes(try server.exchange("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")) == [400])
    }

    /// A client that keeps sending a byte now and then never finishes its headers: the
    /// connection is cut at the request deadline although no single read ever times out.
    @Test func slowClientIsClosedAtTheDeadline() throws {
        let deadline = 0.4
        let server = try EchoServer(limits: HTTPLimits(requestDeadline: .milliseconds(400)))
        let socket = try Socket.connect(host: "127.0.0.1", port: server.port, timeout: 10)
        defer { socket.close() }
        let started = Date()
        try socket.write("GET / HTTP/1.1\r\nX-Slow: ")
        var closed = false
        for _ in 0..<200 {  // at most 10 s of trickling: far past the deadline
            usleep(50_000)
            do { try socket.write("a") } catch {
                closed = true
                break
            }
        }
        let answer = try? readToEnd(socket)
        let elapsed = Date().timeIntervalSince(started)
        #expect(closed || answer == "")
        #expect(elapsed >= deadline)
        #expect(elapsed < 9)
        #expect(server.recorded(1) == ["request not complete within 0.4 seconds: connection closed"])
    }

    /// A client that opens a connection and sends nothing is the read timeout's business (a
    /// clean end), not an error.
    @Test func idleClientEndsCleanly() throws {
        let server = try EchoServer(limits: Self.small)
        let socket = try Socket.connect(host: "127.0.0.1", port: server.port, timeout: 10)
        socket.close()
        #expect(server.recorded(1) == ["end"])
    }
}
