import Foundation
import Synchronization

/// Runs blocking calls (libpq, libcurl, socket and TLS I/O, fsync) on threads of its own, so
/// that async code can wait for them without tying up Swift's cooperative pool (a few threads:
/// one blocked call there stalls unrelated tasks) or Dispatch's small worker pool.
///
/// The one executor for blocking C calls in Passerelle, in two shapes:
/// - a **serial lane** (`threads: 1`): calls run one at a time, in submission order, on one
///   thread — a connection's reads and writes, a PostgreSQL connection's units of work;
/// - a **bounded pool** (`threads: n`): at most `n` calls at once, started in submission
///   order — curl transfers, a server's connection handlers.
///
/// Threads start on demand. With `idleTimeout` nil they stay until ``shutdown(finally:)``;
/// otherwise a thread idle that long ends (another starts when work comes). ``shutdown(finally:)``
/// drains: every call already submitted still runs; calls submitted afterwards throw
/// ``BlockingExecutorError/shutDown`` without running.
public final class BlockingExecutor: Sendable {
    private struct State {
        var jobs: [@Sendable () -> Void] = []
        var head = 0
        var threads = 0
        var idle = 0
        var shutDown = false
        var pending: Int { jobs.count - head }

        mutating func next() -> (@Sendable () -> Void)? {
            guard head < jobs.count else { return nil }
            let job = jobs[head]
            head += 1
            // Compact now and then so a long-lived lane does not grow its array forever.
            if head > 64 && head * 2 > jobs.count {
                jobs.removeFirst(head)
                head = 0
            }
            return job
        }
    }

    public let name: String
    /// Calls that may run at once (1: a serial lane).
    public let maxThreads: Int
    private let idleTimeout: Duration?
    private let state = Mutex(State())
    private let wakeUp = NSCondition()  // guards nothing itself: waiters re-check `state`

    /// - Parameters:
    ///   - name: the threads' name (seen in `top -H`, gdb, perf).
    ///   - threads: at most this many calls at once; 1 makes a serial lane.
    ///   - idleTimeout: how long an idle thread waits for work before it ends (nil: until shutdown).
    public init(name: String, threads: Int = 1, idleTimeout: Duration? = nil) {
        self.name = name
        maxThreads = max(1, threads)
        self.idleTimeout = idleTimeout
    }

    /// Runs `body` on one of the executor's threads; the caller suspends (it never blocks a
    /// thread) until `body` returns, and gets its result or error.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            do {
                try submit { continuation.resume(with: Result { try body() }) }
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }

    /// The synchronous form, for callers that are on a thread of their own (never from async
    /// code: it parks the calling thread until `body` has run on the executor; never from the
    /// executor's own threads either: on a lane the call would wait behind itself).
    public func runAndWait<T>(_ body: @escaping () throws -> T) throws -> T {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var outcome: Result<T, any Error>?
        nonisolated(unsafe) let work = body
        try submit {
            outcome = Result { try work() }
            done.signal()
        }
        done.wait()
        return try outcome!.get()
    }

    /// Queues `job` (fire and forget). Throws ``BlockingExecutorError/shutDown`` after shutdown.
    public func submit(_ job: @escaping @Sendable () -> Void) throws(BlockingExecutorError) {
        let startThread = try state.withLock { s throws(BlockingExecutorError) -> Bool in
            guard !s.shutDown else { throw .shutDown(name) }
            s.jobs.append(job)
            // Idle threads leave the count only when they wake: compare with the queue length so a
            // burst of submissions does not all wait for one idle thread.
            guard s.pending > s.idle && s.threads < maxThreads else { return false }
            s.threads += 1
            return true
        }
        if startThread { start() }
        // Also when a thread was started: an idle one may take the job first.
        wakeUp.lock()
        wakeUp.signal()
        wakeUp.unlock()
    }

    /// Starts one more thread (already counted in `threads`).
    private func start() {
        let name = self.name
        let thread = Thread { [self] in
            Self.nameCurrentThread(name)
            work()
        }
        thread.start()
    }

    /// Names the calling thread. From inside: on Linux a name set before start() does not reach
    /// the OS thread. The OS name (what top -H, perf and gdb show) is set directly: Foundation's
    /// `Thread.name` did not always carry it there, and a new thread starts with its creator's
    /// name (a cooperative-pool thread's "oot.default-qos").
    static func nameCurrentThread(_ name: String) {
        Thread.current.name = name
        #if os(Linux)
        // What pthread_setname_np does (not exported to Swift by Glibc): the thread's comm, 15 bytes.
        try? Data(name.utf8.prefix(15)).write(to: URL(fileURLWithPath: "/proc/thread-self/comm"))
        #endif
    }

    /// The OS name of the calling thread (Linux: its comm; elsewhere Foundation's name).
    public static func currentThreadName() -> String {
        #if os(Linux)
        if let data = try? Data(contentsOf: URL(fileURLWithPath: "/proc/thread-self/comm")) {
            return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
        }
        #endif
        return Thread.current.name ?? ""
    }

    /// Refuses new calls, lets the queued ones run, then runs `finally` last (on an executor
    /// thread: e.g. closing the connection a lane owns) and lets the threads end.
    public func shutdown(finally: (@Sendable () -> Void)? = nil) {
        let startThread = state.withLock { s -> Bool in
            guard !s.shutDown else { return false }
            if let finally { s.jobs.append(finally) }
            s.shutDown = true
            guard s.pending > 0 && s.threads == 0 else { return false }
            s.threads += 1
            return true
        }
        if startThread { start() }
        wakeUp.lock()
        wakeUp.broadcast()
        wakeUp.unlock()
    }

    /// Whether ``shutdown(finally:)`` was called.
    public var isShutDown: Bool { state.withLock { $0.shutDown } }

    /// Threads alive now (for tests and diagnostics).
    public var threadCount: Int { state.withLock { $0.threads } }

    private enum Step { case run(@Sendable () -> Void), wait, exit }

    private func work() {
        var waitedIdle = false
        while true {
            let step = state.withLock { s -> Step in
                if let job = s.next() { return .run(job) }
                if s.shutDown || (waitedIdle && idleTimeout != nil) {
                    s.threads -= 1
                    return .exit
                }
                s.idle += 1
                return .wait
            }
            switch step {
            case .run(let job):
                waitedIdle = false
                job()
            case .exit:
                return
            case .wait:
                wakeUp.lock()
                // Re-check under the condition's lock: a submit between our check and here signals after we wait.
                let mustWait = state.withLock { $0.pending == 0 && !$0.shutDown }
                var timedOut = false
                if mustWait {
                    if let idleTimeout {
                        let (seconds, attoseconds) = idleTimeout.components
                        timedOut = !wakeUp.wait(until: Date(timeIntervalSinceNow: Double(seconds) + Double(attoseconds) / 1e18))
                    } else {
                        wakeUp.wait()
                    }
                }
                wakeUp.unlock()
                state.withLock { $0.idle -= 1 }
                waitedIdle = timedOut || (idleTimeout == .zero)
            }
        }
    }

    /// Runs one blocking call (a connect, a handshake) on a thread of its own: for calls that
    /// belong to no lane yet (the connection does not exist until they return).
    public static func once<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        let executor = BlockingExecutor(name: name)
        defer { executor.shutdown() }
        return try await executor.run(body)
    }
}

/// Why a call was not run.
public enum BlockingExecutorError: Error, CustomStringConvertible, Sendable, Equatable {
    case shutDown(String)

    public var description: String {
        switch self {
        case .shutDown(let name): "the \(name) executor is shut down: the call was not run"
        }
    }
}
