import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The production gateway as the demo runs it: the real `passerelle run` executable, a child
/// process with the demo's configuration. Its log lines go to this process's stderr.
final class GatewayProcess: @unchecked Sendable {
    let executable: URL
    private let process = Process()

    /// Starts `passerelle run --config <configuration>`; returns once its status endpoint
    /// accepts connections on 127.0.0.1:`statusPort` (the service is assembled and its journal
    /// open), or throws when it exits or does not listen within `timeout` seconds.
    init(executable: URL, configuration: URL, templates: URL, logLevel: String, statusPort: UInt16, timeout: TimeInterval = 30) throws {
        self.executable = executable
        guard FileManager.default.isExecutableFile(atPath: executable.path) else {
            throw DemoError("the passerelle executable is not at \(executable.path): build it (swift build --product passerelle) or give --passerelle")
        }
        process.executableURL = executable
        process.arguments = ["run", "--config", configuration.path, "--templates", templates.path, "--log-level", logLevel]
        process.standardOutput = FileHandle.standardError
        process.standardError = FileHandle.standardError
        do { try process.run() } catch {
            throw DemoError("cannot start \(executable.path) run: \(error.localizedDescription)")
        }
        let deadline = Date().addingTimeInterval(timeout)
        while !Self.accepts(port: statusPort) {
            guard process.isRunning else {
                throw DemoError("passerelle run exited with status \(process.terminationStatus) before it was ready (its log is above)")
            }
            guard Date() < deadline else {
                stop()
                throw DemoError("passerelle run did not open its status endpoint on 127.0.0.1:\(statusPort) within \(Int(timeout)) s")
            }
            usleep(100_000)
        }
    }

    var isRunning: Bool { process.isRunning }
    var processID: Int32 { process.processIdentifier }

    /// SIGTERM (the service's own clean stop), then waits for it; SIGKILL after `timeout` s.
    func stop(timeout: TimeInterval = 20) {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick for port 0).
    static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw DemoError("cannot open a socket to find a free port (errno \(errno))") }
        defer { close(fd) }
        var address = loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw DemoError("cannot bind 127.0.0.1 to find a free port (errno \(errno))") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw DemoError("cannot read the free port (errno \(errno))") }
        return UInt16(bigEndian: address.sin_port)
    }

    /// Whether something accepts a TCP connection on 127.0.0.1:`port`.
    static func accepts(port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = loopback(port: port)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    private static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }
}
