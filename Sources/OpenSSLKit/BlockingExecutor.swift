import Foundation

/// A dedicated thread that runs blocking calls one at a time, so that async code can wait
/// for socket and TLS I/O without tying up Swift's cooperative pool or Dispatch's small
/// worker pool (on Linux, blocked Dispatch workers starve unrelated work).
///
/// Each connection owns one, started on first use and ended when the connection is freed.
/// Callers may also hand it a whole blocking exchange (several reads and writes) at once.
public final class BlockingExecutor: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    private var started = false
    private var finished = false
    private let name: String

    init(name: String) { self.name = name }

    /// Runs `body` on the executor's thread; the caller suspends until it returns.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            submit { continuation.resume(with: Result { try body() }) }
        }
    }

    func submit(_ job: @escaping () -> Void) {
        condition.lock()
        if finished {
            condition.unlock()
            job()  // nothing left to serialise with
            return
        }
        jobs.append(job)
        if !started {
            started = true
            // The thread keeps the executor alive until the owning connection's deinit calls finish().
            let thread = Thread { [self] in loop() }
            thread.name = name
            thread.start()
        }
        condition.signal()
        condition.unlock()
    }

    /// Lets the thread end once the queued jobs are done.
    func finish() {
        condition.lock()
        finished = true
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !finished { condition.wait() }
            if jobs.isEmpty {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }

    /// Runs one blocking call (a connect, a handshake) on a thread of its own.
    static func once<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try body() }) }
            thread.name = name
            thread.start()
        }
    }
}
