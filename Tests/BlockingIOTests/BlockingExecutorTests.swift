import BlockingIO
import Foundation
import Synchronization
import Testing

/// N parties meet; each arrival is counted so the test can see who is waiting.
private final class Barrier: Sendable {
    private let parties: Int
    private let arrived = Mutex(0)
    private let open = DispatchSemaphore(value: 0)

    init(parties: Int) { self.parties = parties }

    var waiting: Int { arrived.withLock { $0 } }

    /// Arrives without waiting (async code).
    func arrive() {
        let count = arrived.withLock { n -> Int in
            n += 1
            return n
        }
        if count == parties { for _ in 0..<parties { open.signal() } }
    }

    /// Arrives and blocks the calling thread until every party has arrived (false after 60 s:
    /// a deadlock reported as a failure instead of a hung test run).
    func arriveAndWait() -> Bool {
        arrive()
        return open.wait(timeout: .now() + 60) == .success
    }
}

/// Counts calls running at once and remembers the highest count.
private final class Concurrency: Sendable {
    private let state = Mutex((now: 0, highest: 0))
    func enter() { state.withLock { $0.now += 1; $0.highest = max($0.highest, $0.now) } }
    func leave() { state.withLock { $0.now -= 1 } }
    var highest: Int { state.withLock { $0.highest } }
}

@Suite struct BlockingExecutorTests {
    /// Sixteen calls that each block until all sixteen and a task of the cooperative pool have
    /// arrived: they can only finish if each has a thread of its own outside the pool, and the
    /// pool (a couple of threads on this machine) still runs tasks while they are all blocked.
    @Test func blockedCallsLeaveTheCooperativePoolFree() async throws {
        let calls = 16
        let executor = BlockingExecutor(name: "test.pool", threads: calls)
        defer { executor.shutdown() }
        let barrier = Barrier(parties: calls + 1)
        let results = (0..<calls).map { _ in Task { try await executor.run { barrier.arriveAndWait() } } }
        // All sixteen are blocked now; the cooperative pool must still run this loop and the tasks below.
        while barrier.waiting < calls { try await Task.sleep(for: .milliseconds(1)) }
        let sums = await withTaskGroup(of: Int.self) { group in
            for index in 0..<64 { group.addTask { (0...index).reduce(0, +) } }
            return await group.reduce(0, +)
        }
        #expect(sums == (0..<64).map { ($0 * ($0 + 1)) / 2 }.reduce(0, +))
        barrier.arrive()
        for result in results { #expect(try await result.value) }
    }

    /// Calls run on threads the OS knows by the executor's name (top -H, perf), even when the
    /// thread was started from a cooperative-pool task, whose name a new Linux thread inherits;
    /// the caller's own thread keeps its name.
    @Test func threadsCarryTheExecutorsName() async throws {
        for round in 0..<20 {
            let pool = BlockingExecutor(name: "passerelle-t\(round)", threads: 2)
            let names = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<4 { group.addTask { try await pool.run { BlockingExecutor.currentThreadName() } } }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            pool.shutdown()
            #expect(names == Array(repeating: "passerelle-t\(round)", count: 4))
        }
        #expect(!BlockingExecutor.currentThreadName().hasPrefix("passerelle-t"))
    }

    /// A lane runs its calls one at a time, in submission order.
    @Test func laneKeepsOrder() async throws {
        let lane = BlockingExecutor(name: "test.lane")
        defer { lane.shutdown() }
        let order = Mutex<[Int]>([])
        let concurrency = Concurrency()
        for index in 0..<500 {
            try lane.submit {
                concurrency.enter()
                if index % 50 == 0 { usleep(1000) }  // a slow call must not let the next one overtake it
                order.withLock { $0.append(index) }
                concurrency.leave()
            }
        }
        try await lane.run {}  // after every call submitted above
        #expect(order.withLock { $0 } == Array(0..<500))
        #expect(concurrency.highest == 1)
        #expect(lane.threadCount == 1)
    }

    /// A pool never runs more calls at once than its bound.
    @Test func poolIsBounded() async throws {
        let pool = BlockingExecutor(name: "test.bounded", threads: 3)
        defer { pool.shutdown() }
        let concurrency = Concurrency()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<40 {
                group.addTask {
                    try await pool.run {
                        concurrency.enter()
                        usleep(2000)
                        concurrency.leave()
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(concurrency.highest <= 3)
        #expect(pool.threadCount <= 3)
    }

    /// Shutdown runs what was queued, then the final job, then ends the threads; later calls are refused.
    @Test func shutdownDrains() async throws {
        let lane = BlockingExecutor(name: "test.drain")
        let ran = Mutex<[String]>([])
        let gate = DispatchSemaphore(value: 0)
        try lane.submit { gate.wait() }  // holds the lane so the calls below are still queued at shutdown
        for index in 0..<20 { try lane.submit { ran.withLock { $0.append("call \(index)") } } }
        let finished = DispatchSemaphore(value: 0)
        lane.shutdown(finally: {
            ran.withLock { $0.append("finally") }
            finished.signal()
        })
        await #expect(throws: BlockingExecutorError.shutDown("test.drain")) { try await lane.run { 1 } }
        #expect(throws: BlockingExecutorError.shutDown("test.drain")) { try lane.submit {} }
        gate.signal()
        let waited = await Task.detached { finished.wait(timeout: .now() + 60) }.value
        #expect(waited == .success)
        #expect(ran.withLock { $0 } == (0..<20).map { "call \($0)" } + ["finally"])
        while lane.threadCount > 0 { try await Task.sleep(for: .milliseconds(1)) }
    }

    /// Errors thrown by the blocking call reach the awaiting caller.
    @Test func errorsReachTheCaller() async throws {
        struct Failure: Error, Equatable {}
        let lane = BlockingExecutor(name: "test.errors")
        defer { lane.shutdown() }
        await #expect(throws: Failure()) { try await lane.run { throw Failure() } }
        #expect(try await lane.run { 42 } == 42)
        #expect(try lane.runAndWait { 7 } == 7)
    }

    /// With an idle timeout, threads end when there is no work and come back when there is.
    @Test func idleThreadsEnd() async throws {
        let pool = BlockingExecutor(name: "test.idle", threads: 4, idleTimeout: .zero)
        defer { pool.shutdown() }
        for _ in 0..<3 { #expect(try await pool.run { 1 } == 1) }
        while pool.threadCount > 0 { try await Task.sleep(for: .milliseconds(1)) }
        #expect(try await pool.run { 2 } == 2)
    }
}
