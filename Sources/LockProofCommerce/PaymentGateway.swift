import Foundation
import Synchronization

import LockProofPostgres

/// The one external system LockProof simulates: it is called outside every lock and transaction.
/// Like a real gateway with idempotency keys, it remembers its answer for each order id.
public protocol PaymentGateway: Sendable {
    /// Charges `amount` for `orderId`; throws `GatewayDeclined` when the payment fails, or
    /// `GatewayTimeout` when no answer came (the charge may or may not have happened). Charging an
    /// order again returns the first answer, never a second charge.
    func charge(orderId: Int, amount: Int) throws -> String
    /// What happened to `orderId`'s charge. An order it never saw is voided first, so that a charge
    /// still in flight is declined when it arrives: the answer is final either way.
    func settle(orderId: Int) throws -> GatewayAnswer
}

/// The gateway's final word on one order.
public enum GatewayAnswer: String, Sendable, Equatable {
    case approved
    case declined
    /// Never charged, and now never will be.
    case voided
}

public struct GatewayDeclined: Error, CustomStringConvertible, Sendable {
    public let reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { "gateway declined: \(reason)" }
}

/// The gateway did not answer in time: the charge may have happened. Recovery asks it later.
public struct GatewayTimeout: Error, CustomStringConvertible, Sendable {
    public let orderId: Int
    public init(orderId: Int) { self.orderId = orderId }
    public var description: String { "gateway timed out on order \(orderId)" }
}

/// Approves everything, remembering its answers in memory.
public final class AlwaysApprovingGateway: PaymentGateway, @unchecked Sendable {
    private let answers = GatewayMemory()
    public init() {}
    public func charge(orderId: Int, amount: Int) throws -> String {
        switch try answers.first(orderId: orderId, amount: amount, .approved) {
        case .approved: return "approved-\(orderId)"
        case let other: throw GatewayDeclined(reason: other.rawValue)
        }
    }
    public func settle(orderId: Int) throws -> GatewayAnswer { try answers.first(orderId: orderId, amount: 0, .voided) }
}

/// Where a simulated gateway keeps its answers: the first answer for an order id wins.
public protocol GatewayRecords: Sendable {
    /// Records `answer` unless the order already has one; returns the order's answer.
    func first(orderId: Int, amount: Int, _ answer: GatewayAnswer) throws -> GatewayAnswer
}

/// In this process's memory (a gateway for one run).
public final class GatewayMemory: GatewayRecords, Sendable {
    private let answers = Mutex<[Int: GatewayAnswer]>([:])
    public init() {}
    public func first(orderId: Int, amount: Int, _ answer: GatewayAnswer) throws -> GatewayAnswer {
        answers.withLock { answers in
            if let known = answers[orderId] { return known }
            answers[orderId] = answer
            return answer
        }
    }
}

/// In the `gateway_charges` table, over the gateway's own sessions, so that `lockproof recover` in
/// another process can ask what happened. A real gateway answers many callers at once: with one
/// shared session every payment queued behind the others' INSERTs (38 ms per payment at 64
/// clients in the benchmark), a cost of the simulator, not of any locking strategy. A session
/// that was dropped reconnects.
public final class DatabaseGatewayRecords: GatewayRecords, @unchecked Sendable {
    /// Sessions the gateway records on (counted in the scenario runner's connection budget).
    public static let defaultSessions = 4
    private let sessions: ConnectionPool<PostgresConnection>

    /// Opens one session now, so that an unreachable database is reported to the caller.
    public init(databaseURL: String, sessions size: Int = defaultSessions, waitSeconds: Double = 30) throws {
        sessions = ConnectionPool(kind: .postgres, size: size, waitSeconds: waitSeconds) {
            try PostgresConnection(databaseURL)
        }
        let (first, _) = try sessions.borrow()
        sessions.giveBack(first)
    }

    public func first(orderId: Int, amount: Int, _ answer: GatewayAnswer) throws -> GatewayAnswer {
        let connection: PostgresConnection
        do {
            connection = try sessions.borrow(by: "the gateway's records").connection
        } catch is PoolTimeout {
            // The gateway is overloaded and never answered: it recorded nothing, so recovery,
            // asking later, finds no charge and voids the order.
            throw GatewayTimeout(orderId: orderId)
        }
        var row: PostgresResult
        do {
            try connection.reconnectIfNeeded()
            row = try connection.query(
                """
                WITH inserted AS (
                    INSERT INTO gateway_charges (order_id, amount, outcome) VALUES ($1, $2, $3)
                    ON CONFLICT (order_id) DO NOTHING RETURNING outcome)
                SELECT outcome FROM inserted UNION ALL SELECT outcome FROM gateway_charges WHERE order_id = $1
                """, [orderId, amount, answer.rawValue])
            // A concurrent first answer for the same order (two recovery passes settling it at once)
            // makes the INSERT wait and do nothing, and the statement's snapshot, taken before that
            // answer committed, does not show it: read it again in a statement of its own.
            if row.rowCount == 0 {
                row = try connection.query("SELECT outcome FROM gateway_charges WHERE order_id = $1", [orderId])
            }
        } catch {
            if connection.isConnected { sessions.giveBack(connection) } else { sessions.discard(connection) }
            throw error
        }
        sessions.giveBack(connection)
        guard let text = row.string(0, 0), let known = GatewayAnswer(rawValue: text) else {
            throw GatewayTimeout(orderId: orderId)
        }
        return known
    }
}

/// How the simulated gateway behaves now; a `gateway-failure` fault changes it mid-run.
public struct GatewayBehaviour: Sendable, Equatable {
    public var latencySeconds: ClosedRange<Double>
    /// Share of charges declined.
    public var failureRate: Double
    /// Share of charges that are carried out but whose answer never arrives.
    public var timeoutRate: Double

    public init(latencySeconds: ClosedRange<Double> = 0...0, failureRate: Double = 0, timeoutRate: Double = 0) {
        self.latencySeconds = latencySeconds
        self.failureRate = failureRate
        self.timeoutRate = timeoutRate
    }
}

/// Latency, declines and timeouts drawn from a seeded generator, so a run can be repeated.
public final class SimulatedPaymentGateway: PaymentGateway, Sendable {
    private struct State {
        var generator: SeededGenerator
        var current: GatewayBehaviour
        var calls = 0
    }

    private let state: Mutex<State>
    private let records: any GatewayRecords

    /// Charges asked for so far.
    public var calls: Int { state.withLock { $0.calls } }

    public init(
        latencySeconds: ClosedRange<Double> = 0...0, failureRate: Double, seed: UInt64,
        records: any GatewayRecords = GatewayMemory()
    ) {
        precondition((0...1).contains(failureRate), "failure rate must be within 0...1")
        self.state = Mutex(
            State(
                generator: SeededGenerator(seed: seed),
                current: GatewayBehaviour(latencySeconds: latencySeconds, failureRate: failureRate)))
        self.records = records
    }

    public var behaviour: GatewayBehaviour {
        get { state.withLock { $0.current } }
        set { state.withLock { $0.current = newValue } }
    }

    public var latencySeconds: ClosedRange<Double> { behaviour.latencySeconds }
    public var failureRate: Double { behaviour.failureRate }

    public func charge(orderId: Int, amount: Int) throws -> String {
        let (behaviour, latency, draw) = state.withLock { state in
            state.calls += 1
            let behaviour = state.current
            let latency = Double.random(in: behaviour.latencySeconds, using: &state.generator)
            let draw = Double.random(in: 0..<1, using: &state.generator)
            return (behaviour, latency, draw)
        }
        let fails = behaviour.failureRate >= 1 || draw < behaviour.failureRate
        let timesOut = !fails && draw < behaviour.failureRate + behaviour.timeoutRate
        if latency > 0 { Thread.sleep(forTimeInterval: latency) }
        let answer = try records.first(orderId: orderId, amount: amount, fails ? .declined : .approved)
        if timesOut { throw GatewayTimeout(orderId: orderId) }
        switch answer {
        case .approved: return "approved-\(orderId)"
        case .declined: throw GatewayDeclined(reason: "simulated failure")
        case .voided: throw GatewayDeclined(reason: "voided by recovery")
        }
    }

    public func settle(orderId: Int) throws -> GatewayAnswer { try records.first(orderId: orderId, amount: 0, .voided) }
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
