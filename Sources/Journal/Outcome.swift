import Foundation

/// Why a send attempt failed, classified so the journal knows whether to retry.
public enum FailureCause: Sendable, Hashable, CustomStringConvertible {
    /// Connection refused, reset, timed out, TLS handshake interrupted.
    case network(String)
    /// HTTP 5xx from the DMP or a proxy.
    case httpServerError(status: Int, String)
    /// SMTP 4xx: the server asks to try again later.
    case smtpTemporary(code: Int, String)
    /// DMP "service unavailable" (temporary refusal in the SOAP/registry response).
    case dmpServiceUnavailable(String)
    /// The document does not pass the schema or schematron: resending will not help.
    case schema(String)
    /// The patient's identity is not usable (INS not qualified, unknown to the DMP).
    case identity(String)
    /// SMTP 5xx: the message or recipient is refused for good.
    case smtpPermanent(code: Int, String)
    /// The DMP refused the document for a business reason (registry error code).
    case dmpBusinessRefusal(code: String, String)
    /// Anything else the sender knows to be final (HTTP 4xx, bad configuration).
    case permanent(String)
    /// `cause`, for which the peer named the earliest retry (HTTP `Retry-After`, capped by the
    /// transport): the next attempt waits at least `seconds`, and at least the backoff.
    indirect case retryAfter(seconds: TimeInterval, FailureCause)

    /// Transient causes are retried with backoff; the others fail at once.
    public var isTransient: Bool {
        switch self {
        case .network, .httpServerError, .smtpTemporary, .dmpServiceUnavailable: true
        case .schema, .identity, .smtpPermanent, .dmpBusinessRefusal, .permanent: false
        case .retryAfter(_, let cause): cause.isTransient
        }
    }

    /// The wait the peer asked for (``retryAfter(seconds:_:)``), nil when it named none.
    public var requestedDelay: TimeInterval? {
        if case .retryAfter(let seconds, _) = self { seconds } else { nil }
    }

    /// The cause without the peer's requested delay.
    public var underlying: FailureCause {
        if case .retryAfter(_, let cause) = self { cause.underlying } else { self }
    }

    public var description: String {
        switch self {
        case .network(let m): "network: \(m)"
        case .httpServerError(let s, let m): "HTTP \(s): \(m)"
        case .smtpTemporary(let c, let m): "SMTP \(c) (temporary): \(m)"
        case .dmpServiceUnavailable(let m): "DMP service unavailable: \(m)"
        case .schema(let m): "document invalid: \(m)"
        case .identity(let m): "identity refused: \(m)"
        case .smtpPermanent(let c, let m): "SMTP \(c) (permanent): \(m)"
        case .dmpBusinessRefusal(let code, let m): "DMP refusal \(code): \(m)"
        case .permanent(let m): m
        case .retryAfter(let seconds, let cause): "\(cause.description) (the server asks to wait \(Int(seconds)) s)"
        }
    }
}

/// The result of one send attempt, reported by the sender.
public enum TransmissionOutcome: Sendable, Hashable {
    /// The peer accepted it. `state` is `.sent` for SMTP (acknowledgements follow) or
    /// `.acknowledged`/`.delivered` when the peer's answer is already final.
    case success(state: TransmissionState = .sent, response: String? = nil)
    /// It failed; ``FailureCause/isTransient`` decides retry or dead letter.
    case failure(FailureCause, response: String? = nil)
    /// A mail some recipients are done with (accepted it, or refused it for good) and others
    /// not (`cause`: the refusals, kept as the transmission's last error). `pending` are the
    /// recipients that answered 4xx: the
    /// transmission waits (retry-wait, backoff) and the next attempt goes to them alone, so the
    /// others never receive it twice. Empty `pending` (the rest refused for good, 5xx): the
    /// transmission is `sent` and shows `cause`.
    case partial(pending: [String], cause: FailureCause, response: String? = nil)
}

/// What ``JournalStore/complete(_:owner:outcome:now:)`` decided.
public struct CompletionResult: Sendable, Hashable {
    public var state: TransmissionState
    /// When the next attempt is due (retry-wait only).
    public var nextAttemptAt: Date?
    /// True when this failure opens an incident: raise one alert now and none for its retries.
    public var shouldAlert: Bool

    public init(state: TransmissionState, nextAttemptAt: Date?, shouldAlert: Bool) {
        self.state = state
        self.nextAttemptAt = nextAttemptAt
        self.shouldAlert = shouldAlert
    }
}

/// Exponential backoff with jitter, a cap on one delay, a maximum number of attempts and a
/// deadline counted from the transmission's creation.
public struct RetryPolicy: Sendable, Hashable {
    /// Delay after the first failed attempt.
    public var initialDelay: TimeInterval
    /// Each further delay is multiplied by this.
    public var multiplier: Double
    /// No single delay exceeds this (before jitter).
    public var maxDelay: TimeInterval
    /// Fraction of each delay that is random: 0 = none, 0.5 = between 50 % and 100 % of it.
    public var jitter: Double
    /// Attempts after which a transient failure becomes final.
    public var maxAttempts: Int
    /// Time from enqueueing (or operator requeue) after which a transient failure becomes final.
    public var deadline: TimeInterval
    /// How long an interrupted send whose peer-side id (SMTP Message-ID) was recorded waits
    /// before it may be claimed again: the mail may have been taken by the relay just before
    /// the crash, and an acknowledgement carrying that id (a DSN) settles it without a second
    /// mail (``JournalStore/confirmInterruptedSend(transmissionID:now:)``). 0: resend at once.
    public var interruptedHold: TimeInterval

    public init(initialDelay: TimeInterval = 30, multiplier: Double = 2, maxDelay: TimeInterval = 3600,
                jitter: Double = 0.5, maxAttempts: Int = 20, deadline: TimeInterval = 72 * 3600,
                interruptedHold: TimeInterval = 0) {
        precondition(initialDelay >= 0 && multiplier >= 1 && maxDelay >= initialDelay && (0...1).contains(jitter) && interruptedHold >= 0)
        self.initialDelay = initialDelay
        self.multiplier = multiplier
        self.maxDelay = maxDelay
        self.jitter = jitter
        self.maxAttempts = maxAttempts
        self.deadline = deadline
        self.interruptedHold = interruptedHold
    }

    /// The capped delay after `attempts` failed attempts (≥ 1), before jitter.
    public func baseDelay(afterAttempts attempts: Int) -> TimeInterval {
        let exponent = Double(max(attempts, 1) - 1)
        return min(maxDelay, initialDelay * pow(multiplier, exponent))
    }

    /// The delay with jitter; `random` is in [0, 1).
    public func delay(afterAttempts attempts: Int, random: Double) -> TimeInterval {
        let base = baseDelay(afterAttempts: attempts)
        return base * (1 - jitter) + base * jitter * min(max(random, 0), 1)
    }

    /// When to try again after `attempts` failures, or nil when the transient failure must
    /// become final (attempts exhausted, or the next try would fall after `deadline`).
    /// `notBefore`: the least wait the peer asked for (Retry-After); the later of it and the backoff wins.
    public func nextAttempt(afterAttempts attempts: Int, deadline: Date, now: Date, random: Double,
                            notBefore: TimeInterval = 0) -> Date? {
        guard attempts < maxAttempts else { return nil }
        let next = now.addingTimeInterval(max(delay(afterAttempts: attempts, random: random), notBefore))
        guard next <= deadline else { return nil }
        return next
    }
}
