import Foundation
import PasserelleCore
import Synchronization

/// The MLLP listener's connection policy, apart from the framing: who may connect, how many
/// connections per client, which connection gives way when the listener is full, and the
/// per-message deadline. Values and pure decisions, testable without sockets.
public struct MLLPConnectionPolicy: Sendable, Hashable {
    /// Open connections at most (`[mllp] max_connections`).
    public var maxConnections: Int
    /// Open connections from one client address at most (`[mllp] max_connections_per_peer`).
    public var maxConnectionsPerPeer: Int
    /// Whole-message deadline (`[mllp] message_timeout_seconds`).
    public var messageTimeout: TimeInterval
    /// Empty: every address is served (`[mllp] allowed_clients`).
    public var allowedClients: [ClientAddressRange]

    public init(maxConnections: Int = 16, maxConnectionsPerPeer: Int = 8, messageTimeout: TimeInterval = 120,
                allowedClients: [ClientAddressRange] = []) {
        self.maxConnections = maxConnections
        self.maxConnectionsPerPeer = maxConnectionsPerPeer
        self.messageTimeout = messageTimeout
        self.allowedClients = allowedClients
    }

    /// True when `address` may connect.
    public func allows(_ address: String) -> Bool {
        allowedClients.isEmpty || allowedClients.contains { $0.contains(address) }
    }

    /// What one open connection is doing, as the policy sees it.
    public struct ConnectionState: Sendable, Hashable {
        public var id: Int
        public var peerHost: String
        public var openedAt: Date
        /// Last byte received or ACK sent.
        public var lastActivity: Date
        /// First byte of the message being received, nil between messages.
        public var messageStartedAt: Date?
        /// A message was handed to the handler and its ACK is not sent yet.
        public var busy: Bool
        /// No message completed yet on this connection.
        public var awaitingFirstMessage: Bool

        public init(id: Int, peerHost: String, openedAt: Date, lastActivity: Date? = nil, messageStartedAt: Date? = nil,
                    busy: Bool = false, awaitingFirstMessage: Bool = true) {
            self.id = id
            self.peerHost = peerHost
            self.openedAt = openedAt
            self.lastActivity = lastActivity ?? openedAt
            self.messageStartedAt = messageStartedAt
            self.busy = busy
            self.awaitingFirstMessage = awaitingFirstMessage
        }

        /// When the current message must be complete, nil when no message is due (between
        /// messages: the idle timeout applies) or its ACK is being prepared.
        public func deadline(_ timeout: TimeInterval) -> Date? {
            guard !busy else { return nil }
            if let start = messageStartedAt { return start.addingTimeInterval(timeout) }
            return awaitingFirstMessage ? openedAt.addingTimeInterval(timeout) : nil
        }
    }

    /// The decision for a new connection.
    public enum Admission: Sendable, Hashable {
        case admit
        /// Admit after closing this connection (the listener is full).
        case admitEvicting(id: Int)
        case refuseNotAllowed
        case refusePeerLimit
        /// Full and every connection has a message being processed.
        case refuseFull
    }

    /// Whether a connection from `peerHost` is served, given the open ones.
    public func admission(of peerHost: String, among open: [ConnectionState]) -> Admission {
        guard allows(peerHost) else { return .refuseNotAllowed }
        if open.count(where: { $0.peerHost == peerHost }) >= maxConnectionsPerPeer { return .refusePeerLimit }
        guard open.count >= maxConnections else { return .admit }
        guard let victim = Self.evictionCandidate(open) else { return .refuseFull }
        return .admitEvicting(id: victim.id)
    }

    /// The connection to close so a new client can be served: never one whose message is
    /// being processed; between messages (or before any byte) rather than mid-message; then
    /// the one silent for the longest time. Nil when every connection is busy.
    public static func evictionCandidate(_ open: [ConnectionState]) -> ConnectionState? {
        open.filter { !$0.busy }.min { a, b in
            let aIdle = a.messageStartedAt == nil, bIdle = b.messageStartedAt == nil
            if aIdle != bIdle { return aIdle }
            return a.lastActivity < b.lastActivity
        }
    }
}

/// The open connections of one listener, shared by the connection threads (and the deadline
/// watch): the policy's state plus a way to interrupt each connection.
final class MLLPConnectionTable: Sendable {
    struct Entry: Sendable {
        var state: MLLPConnectionPolicy.ConnectionState
        let peer: String
        let interrupt: @Sendable () -> Void
        /// Why the listener ended it, for the connection's own log line.
        var closedBecause: String?
    }

    let policy: MLLPConnectionPolicy
    private let entries = Mutex<(next: Int, open: [Int: Entry])>((0, [:]))

    init(policy: MLLPConnectionPolicy) { self.policy = policy }

    var count: Int { entries.withLock { $0.open.count } }

    /// The outcome of ``admit(peer:peerHost:now:interrupt:)``.
    enum Admitted: Sendable {
        case admitted(id: Int, evicted: (peer: String, idleSeconds: Int)?)
        case refused(MLLPConnectionPolicy.Admission)
    }

    /// Registers a new connection, or says why not; a connection evicted for it is interrupted here.
    func admit(peer: String, peerHost: String, now: Date = Date(), interrupt: @escaping @Sendable () -> Void) -> Admitted {
        entries.withLock { table in
            let decision = policy.admission(of: peerHost, among: table.open.values.map(\.state))
            var evicted: (String, Int)?
            switch decision {
            case .admit: break
            case .admitEvicting(let victim):
                if var entry = table.open.removeValue(forKey: victim) {
                    entry.closedBecause = "evicted"
                    entry.interrupt()
                    evicted = (entry.peer, Int(now.timeIntervalSince(entry.state.lastActivity)))
                }
            case .refuseNotAllowed, .refusePeerLimit, .refuseFull:
                return .refused(decision)
            }
            table.next += 1
            let id = table.next
            table.open[id] = Entry(state: .init(id: id, peerHost: peerHost, openedAt: now), peer: peer, interrupt: interrupt)
            return .admitted(id: id, evicted: evicted)
        }
    }

    /// Bytes arrived: the first ones after a message (or ever) start the message clock.
    func received(_ id: Int, now: Date = Date()) {
        update(id) { s in
            s.lastActivity = now
            if s.messageStartedAt == nil { s.messageStartedAt = now }
        }
    }

    /// A complete message goes to the handler: not evictable, no deadline until its ACK is sent.
    func processing(_ id: Int) { update(id) { $0.busy = true; $0.messageStartedAt = nil } }

    /// The ACK was sent; `pending`: bytes of a next message are already buffered.
    func answered(_ id: Int, pending: Bool, now: Date = Date()) {
        update(id) { s in
            s.busy = false
            s.awaitingFirstMessage = false
            s.lastActivity = now
            s.messageStartedAt = pending ? now : nil
        }
    }

    /// Forgets a connection; returns why the listener ended it, if it did.
    @discardableResult
    func remove(_ id: Int) -> String? { entries.withLock { $0.open.removeValue(forKey: id)?.closedBecause } }

    /// Interrupts the connections whose message deadline passed; returns their peers.
    func expire(now: Date = Date()) -> [String] {
        entries.withLock { table in
            var expired: [String] = []
            for (id, entry) in table.open {
                guard let deadline = entry.state.deadline(policy.messageTimeout), deadline <= now, entry.closedBecause == nil else { continue }
                table.open[id]!.closedBecause = "deadline"
                entry.interrupt()
                expired.append(entry.peer)
            }
            return expired
        }
    }

    private func update(_ id: Int, _ body: (inout MLLPConnectionPolicy.ConnectionState) -> Void) {
        entries.withLock { table in
            guard var entry = table.open[id] else { return }
            body(&entry.state)
            table.open[id] = entry
        }
    }
}
