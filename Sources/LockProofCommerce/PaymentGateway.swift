import Foundation

/// The one external system LockProof simulates: it is called outside every lock and transaction.
public protocol PaymentGateway: Sendable {
    /// Charges `amount` for `orderId`; throws `GatewayDeclined` when the payment fails.
    func charge(orderId: Int, amount: Int) throws -> String
}

public struct GatewayDeclined: Error, CustomStringConvertible, Sendable {
    public let reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { "gateway declined: \(reason)" }
}

public struct AlwaysApprovingGateway: PaymentGateway {
    public init() {}
    public func charge(orderId: Int, amount: Int) throws -> String { "approved-\(orderId)" }
}

/// Latency and a failure rate drawn from a seeded generator, so a run can be repeated.
public final class SimulatedPaymentGateway: PaymentGateway, @unchecked Sendable {
    public let latencySeconds: ClosedRange<Double>
    public let failureRate: Double
    private var generator: SeededGenerator
    private let lock = NSLock()
    public private(set) var calls = 0

    public init(latencySeconds: ClosedRange<Double> = 0...0, failureRate: Double, seed: UInt64) {
        precondition((0...1).contains(failureRate), "failure rate must be within 0...1")
        self.latencySeconds = latencySeconds
        self.failureRate = failureRate
        self.generator = SeededGenerator(seed: seed)
    }

    public func charge(orderId: Int, amount: Int) throws -> String {
        lock.lock()
        calls += 1
        let latency = Double.random(in: latencySeconds, using: &generator)
        let fails = failureRate >= 1 || (failureRate > 0 && Double.random(in: 0..<1, using: &generator) < failureRate)
        lock.unlock()
        if latency > 0 { Thread.sleep(forTimeInterval: latency) }
        if fails { throw GatewayDeclined(reason: "simulated failure") }
        return "approved-\(orderId)"
    }
}

/// SplitMix64: small, fast and good enough to drive a simulation reproducibly.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
