import Foundation
import Synchronization
import Testing
import WebServer

/// The console's overview is computed at most once per second and shared: N concurrent
/// requests cost one set of journal queries; a value older than its refresh interval is
/// served, at most 2 s old, only while one refresh runs.
@Suite("console: shared refresh of the overview")
struct SharedRefreshTests {
    /// A clock the test moves by hand, and a computation that counts its runs and waits for the
    /// test to let it finish (so "while a refresh runs" is a state the test holds, not a race).
    final class Harness: Sendable {
        let base = ContinuousClock.now
        let offset = Mutex(Duration.zero)
        let runs = Mutex(0)
        let gate = Mutex<[CheckedContinuation<Void, Never>]>([])
        let held = Mutex(false)

        func now() -> ContinuousClock.Instant { base.advanced(by: offset.withLock { $0 }) }
        func advance(_ d: Duration) { offset.withLock { $0 += d } }
        func hold() { held.withLock { $0 = true } }

        /// Lets every waiting computation finish; later ones run straight through.
        func release() {
            held.withLock { $0 = false }
            for c in gate.withLock({ g in defer { g = [] }; return g }) { c.resume() }
        }

        func compute() async -> Int {
            let n = runs.withLock { $0 += 1; return $0 }
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let wait = held.withLock { h in
                    if h { gate.withLock { $0.append(c) } }
                    return h
                }
                if !wait { c.resume() }
            }
            return n
        }

        func refresh() -> SharedRefresh<Int> {
            SharedRefresh(interval: .seconds(1), maxStale: .seconds(2), now: { self.now() }, compute: { await self.compute() })
        }

        /// Waits (bounded) until `n` computations have started.
        func waitForRuns(_ n: Int) async throws {
            for _ in 0..<500 where runs.withLock({ $0 }) < n { try await Task.sleep(for: .milliseconds(10)) }
            try #require(runs.withLock { $0 } >= n, "only \(runs.withLock { $0 }) computation(s) started")
        }
    }

    @Test("100 concurrent first callers: one computation, every caller gets its value")
    func concurrentCallersShareOneComputation() async throws {
        let h = Harness()
        let refresh = h.refresh()
        h.hold()
        let values = Task {
            await withTaskGroup(of: Int.self) { group in
                for _ in 0..<100 { group.addTask { await refresh.value() } }
                return await group.reduce(into: []) { $0.append($1) }
            }
        }
        try await h.waitForRuns(1)
        try await Task.sleep(for: .milliseconds(50))  // the other callers arrive while it runs
        h.release()
        let all = await values.value
        #expect(all.count == 100 && all.allSatisfy { $0 == 1 }, "\(Set(all))")
        #expect(h.runs.withLock { $0 } == 1)
        #expect(refresh.computations == 1)
    }

    @Test("younger than 1 s: cached; 1–2 s: served stale while one refresh runs; then the fresh value")
    func staleWhileOneRefreshRuns() async throws {
        let h = Harness()
        let refresh = h.refresh()
        #expect(await refresh.value() == 1)
        h.advance(.milliseconds(999))
        #expect(await refresh.value() == 1, "within the interval: no new computation")
        #expect(h.runs.withLock { $0 } == 1)

        // Due: one refresh starts, held; every caller meanwhile gets the value of 1.5 s ago.
        h.hold()
        h.advance(.milliseconds(501))
        for _ in 0..<20 { #expect(await refresh.value() == 1) }
        try await h.waitForRuns(2)
        #expect(h.runs.withLock { $0 } == 2, "one refresh for twenty callers")
        h.release()
        for _ in 0..<500 {
            if await refresh.value() == 2 { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(await refresh.value() == 2)
        #expect(refresh.computations == 2)
    }

    @Test("older than 2 s: the caller waits for the fresh value, never gets the stale one")
    func neverStalerThanTheBound() async throws {
        let h = Harness()
        let refresh = h.refresh()
        #expect(await refresh.value() == 1)
        h.hold()
        h.advance(.milliseconds(2001))
        let waiting = Task { await refresh.value() }
        try await h.waitForRuns(2)
        try await Task.sleep(for: .milliseconds(50))
        // A second caller, same moment: it shares the refresh in flight, no third computation.
        let second = Task { await refresh.value() }
        try await Task.sleep(for: .milliseconds(50))
        h.release()
        #expect(await waiting.value == 2)
        #expect(await second.value == 2)
        #expect(refresh.computations == 2)

        // A refresh that outlives the bound: served stale until 2 s, then callers wait.
        h.hold()
        h.advance(.milliseconds(1500))
        #expect(await refresh.value() == 2, "1.5 s old while the third computation runs")
        h.advance(.milliseconds(600))
        let late = Task { await refresh.value() }
        try await Task.sleep(for: .milliseconds(50))
        h.release()
        #expect(await late.value == 3, "2.1 s old: the caller waited for the refresh in flight")
        #expect(refresh.computations == 3)
    }
}
