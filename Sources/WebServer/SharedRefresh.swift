import Synchronization

/// A value computed at most once per `interval` and shared by every caller: N browsers or
/// scrapers on the console cost one computation (one set of journal queries), not N.
///
/// - A value younger than `interval` is answered as it is.
/// - Older: one refresh starts (never two at once); while it runs, callers get the value they
///   had if it is at most `maxStale` old, so a slow journal delays no page.
/// - No value yet, or one older than `maxStale`: callers wait for the refresh in flight.
///
/// A value's age counts from the start of the computation that made it.
public final class SharedRefresh<Value: Sendable>: Sendable {
    public typealias Instant = ContinuousClock.Instant

    private struct State {
        var cached: (value: Value, at: Instant)?
        var running: Task<Value, Never>?
        var computations = 0
    }

    private let interval: Duration
    private let maxStale: Duration
    private let now: @Sendable () -> Instant
    private let compute: @Sendable () async -> Value
    private let state = Mutex(State())

    /// - Parameters:
    ///   - now: the clock (injectable for tests).
    ///   - compute: makes a fresh value; it runs in its own task, so a caller that goes away
    ///     (a closed connection) does not cancel it for the others.
    public init(interval: Duration = .seconds(1), maxStale: Duration = .seconds(2),
                now: @escaping @Sendable () -> Instant = { ContinuousClock.now },
                compute: @escaping @Sendable () async -> Value) {
        precondition(maxStale >= interval, "a value may be served stale only once it is due for a refresh")
        self.interval = interval
        self.maxStale = maxStale
        self.now = now
        self.compute = compute
    }

    /// How many computations started (what the tests count).
    public var computations: Int { state.withLock { $0.computations } }

    private enum Answer { case ready(Value), wait(Task<Value, Never>) }

    public func value() async -> Value {
        let instant = now()
        let answer: Answer = state.withLock { s in
            if let cached = s.cached, instant - cached.at < interval { return .ready(cached.value) }
            let refresh = s.running ?? startRefresh(&s)
            if let cached = s.cached, instant - cached.at <= maxStale { return .ready(cached.value) }
            return .wait(refresh)
        }
        switch answer {
        case .ready(let value): return value
        case .wait(let refresh): return await refresh.value
        }
    }

    /// Called under the lock: the task takes the lock only after it has computed.
    private func startRefresh(_ s: inout State) -> Task<Value, Never> {
        s.computations += 1
        let started = now()
        let task = Task { [compute] in
            let value = await compute()
            self.state.withLock { s in
                s.cached = (value, started)
                s.running = nil
            }
            return value
        }
        s.running = task
        return task
    }
}
