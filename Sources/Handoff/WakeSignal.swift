import Foundation
import Synchronization

/// A wake-up for waiting tasks (idle workers and loops, admission waiting for room in the
/// hand-off): `signal()` wakes every current waiter, `signalOne(key:)` the
/// longest-waiting one of that key; each wait is also bounded by its own timeout (which wakes
/// only that waiter). Either signal also releases a waiter that has not finished going to sleep
/// (it saw the state before the signal): nothing queued meanwhile waits for a timeout.
package final class WakeSignal: Sendable {
    private struct State {
        var generation = 0
        var nextID: UInt64 = 0
        var waiters: [UInt64: (key: String?, continuation: CheckedContinuation<Void, Never>)] = [:]
        /// Timeouts that fired before their waiter was registered.
        var expired: Set<UInt64> = []
    }
    private let state = Mutex(State())

    package init() {}

    package func signal() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.generation += 1
            defer { s.waiters = [:] }
            return s.waiters.values.map(\.continuation)
        }
        for w in waiters { w.resume() }
    }

    /// Wakes one waiter of `key` (the first registered; ids grow), if any is asleep.
    package func signalOne(key: String) {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.generation += 1
            guard let id = s.waiters.filter({ $0.value.key == key }).keys.min() else { return nil }
            return s.waiters.removeValue(forKey: id)?.continuation
        }
        waiter?.resume()
    }

    /// Waits for a signal or `timeout` seconds; returns at once when `until()` is already true.
    package func wait(timeout: TimeInterval, key: String? = nil, until: @Sendable () -> Bool) async {
        if until() { return }
        let (start, id) = state.withLock { s -> (Int, UInt64) in
            s.nextID += 1
            return (s.generation, s.nextID)
        }
        let timer = Task {
            try? await Task.sleep(nanoseconds: UInt64(max(timeout, 0.001) * 1e9))
            let own = self.state.withLock { s -> CheckedContinuation<Void, Never>? in
                if let c = s.waiters.removeValue(forKey: id)?.continuation { return c }
                s.expired.insert(id)
                return nil
            }
            own?.resume()
        }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { s -> Bool in
                if s.generation != start || s.expired.remove(id) != nil { return true }
                s.waiters[id] = (key, c)
                return false
            }
            if resumeNow { c.resume() }
        }
        timer.cancel()
        state.withLock { _ = $0.expired.remove(id) }
    }
}
