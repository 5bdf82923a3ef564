import Foundation

/// One readiness condition (`journal`, `certificate authentication`, `dmp endpoint`…).
public struct ReadinessCheck: Sendable, Hashable, Codable {
    public var name: String
    public var ready: Bool
    /// What is wrong, for the operator; no patient data.
    public var detail: String

    public init(name: String, ready: Bool, detail: String = "") {
        self.name = name
        self.ready = ready
        self.detail = detail
    }
}

/// Something `/ready` asks: the journal, a certificate, an endpoint.
public protocol ReadinessProbe: Sendable {
    func check() async -> ReadinessCheck
}

/// A probe from a closure.
public struct ClosureProbe: ReadinessProbe {
    let body: @Sendable () async -> ReadinessCheck
    public init(_ body: @escaping @Sendable () async -> ReadinessCheck) { self.body = body }
    public func check() async -> ReadinessCheck { await body() }
}
