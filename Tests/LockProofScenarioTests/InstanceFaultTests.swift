import Foundation
import LockProofCommerce
import LockProofHTTP
import LockProofPostgres
@testable import LockProofScenario
import LockProofTestSupport
import Synchronization
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// `instance-kill` and `instance-pause` against a real cluster (`scripts/cluster.sh`: built
/// `lockproof serve` processes on the test servers), driven through the HTTP API by concurrent
/// clients (barrier + timeout), the final state checked through SQL. Until black-box mode exists,
/// this is where the instance faults meet the strategies.
/// The cluster's ports: LOCKPROOF_CLUSTER_PORT_BASE (default 28600) and up (API), +100 (metrics).
final class InstanceFaultTests: XCTestCase {
    private static var basePort: Int {
        ProcessInfo.processInfo.environment["LOCKPROOF_CLUSTER_PORT_BASE"].flatMap(Int.init) ?? 28_600
    }

    /// A cluster in a run folder of its own, stopped at the end of the test.
    struct Cluster: Sendable {
        let folder: String
        let apiPorts: [Int]
        let metricsPorts: [Int]
    }

    /// `databaseURL`: the instances' database (default: the tests' own).
    private func clusterScript(_ arguments: [String], folder: String, databaseURL: String? = nil) throws -> Launched {
        let bash = try XCTUnwrap(executableOnPath("bash"), "bash is not on PATH")
        var environment = TestServers.binaryEnvironment.merging([
            "LOCKPROOF_CLUSTER_DIR": folder, "LOCKPROOF_BIN": try BuiltBinary.lockproof().path,
        ]) { $1 }
        if let databaseURL { environment["LOCKPROOF_DATABASE_URL"] = databaseURL }
        return try launch(
            bash, [Repository.root.appendingPathComponent("scripts/cluster.sh").path] + arguments,
            environment: environment, timeoutSeconds: 180)
    }

    /// `databaseURL`: the instances' database (default: the tests' own; a target's is its own).
    func startCluster(_ count: Int, serveOptions: [String], databaseURL: String? = nil) throws -> Cluster {
        let folder = NSTemporaryDirectory() + "lockproof-cluster-\(getpid())-\(UUID().uuidString.prefix(8))"
        let started = try clusterScript(
            ["start", "\(count)", "\(Self.basePort)", "--"] + serveOptions, folder: folder, databaseURL: databaseURL)
        addTeardownBlock { [self] in
            _ = try? clusterScript(["stop"], folder: folder, databaseURL: databaseURL)
            unsetenv(ManagedInstances.environmentKey)
            try? FileManager.default.removeItem(atPath: folder)
        }
        XCTAssertEqual(started.status, 0, started.err)
        XCTAssertTrue(started.out.contains("export \(ManagedInstances.environmentKey)=\(folder)"), started.out)
        // The faults find the cluster where a shell that evaluated `start`'s output would.
        setenv(ManagedInstances.environmentKey, folder, 1)
        let ports = (0..<count).map { Self.basePort + $0 }
        return Cluster(folder: folder, apiPorts: ports, metricsPorts: ports.map { $0 + 100 })
    }

    /// Stops a cluster before the test ends (a test that starts another on the same ports).
    func stopCluster(_ cluster: Cluster, databaseURL: String? = nil) {
        _ = try? clusterScript(["stop"], folder: cluster.folder, databaseURL: databaseURL)
    }

    // MARK: Clients

    enum Outcome: String, Sendable { case ok, fail, unknown }

    /// 2xx ok; 4xx, a refused connection (nothing sent) and a 5xx that is not `outcome-unknown`
    /// fail; a timeout, a cut connection and an `outcome-unknown` problem are unknown.
    private static func post(port: Int, path: String, body: String, key: String?) -> Outcome {
        do {
            let response = try BlockingHTTPClient.request(
                method: "POST", port: port, path: path,
                headers: [HTTPHeader(name: "Content-Type", value: "application/json")]
                    + (key.map { [HTTPHeader(name: "Idempotency-Key", value: $0)] } ?? []),
                body: Array(body.utf8), timeoutSeconds: 30)
            switch response.status {
            case 200..<300: return .ok
            case 400..<500: return .fail
            default: return String(decoding: response.body, as: UTF8.self).contains("outcome-unknown") ? .unknown : .fail
            }
        } catch {
            return "\(error)".contains("connect to") ? .fail : .unknown
        }
    }

    private struct Counts: CustomStringConvertible {
        var ok = 0, fail = 0, unknown = 0
        init(_ outcomes: [Outcome]) {
            for outcome in outcomes {
                switch outcome {
                case .ok: ok += 1
                case .fail: fail += 1
                case .unknown: unknown += 1
                }
            }
        }
        var description: String { "ok \(ok) fail \(fail) unknown \(unknown)" }
    }

    /// Sums a counter family's samples in one instance's /metrics.
    static func metricSum(port: Int, name: String) -> Double {
        guard let page = try? BlockingHTTPClient.get(port: port, path: "/metrics", timeoutSeconds: 10) else { return 0 }
        return String(decoding: page.body, as: UTF8.self).split(separator: "\n")
            .filter { $0.hasPrefix(name + "{") || $0.hasPrefix(name + " ") }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
    }

    // MARK: instance-pause

    /// What the SQL says about the hot user's charges against what the clients were told.
    private struct ChargeAudit: CustomStringConvertible {
        var counts: Counts
        /// Opening balance plus every committed charge's ledger row, minus the balance: updates lost.
        var lost = 0
        /// Acknowledged (2xx) charges with no ledger row.
        var acknowledgedMissing = 0
        /// Refused charges that were applied.
        var failedApplied = 0
        /// Unknown charges that were applied (allowed: their outcome is unknown).
        var unknownApplied = 0
        var description: String {
            "\(counts); lost updates \(lost), acknowledged missing \(acknowledgedMissing), refused but applied \(failedApplied), unknown applied \(unknownApplied)"
        }
    }

    private func auditCharges(user: Int, outcomes: [(String, Outcome)]) throws -> ChargeAudit {
        let db = try TestServers.database()
        let balance = try XCTUnwrap(try db.query("SELECT balance FROM users WHERE id = $1", [user]).int(0, 0))
        let ledger = try XCTUnwrap(try db.query("SELECT coalesce(sum(delta), 0) FROM balance_ledger WHERE user_id = $1", [user]).int(0, 0))
        let rows = try db.query("SELECT reference FROM balance_ledger WHERE user_id = $1 AND reason = 'charge'", [user])
        let applied = Set((0..<rows.rowCount).compactMap { rows.string($0, 0) })
        var audit = ChargeAudit(counts: Counts(outcomes.map(\.1)))
        audit.lost = ledger - balance
        for (key, outcome) in outcomes {
            switch outcome {
            case .ok where !applied.contains(key): audit.acknowledgedMissing += 1
            case .fail where applied.contains(key): audit.failedApplied += 1
            case .unknown where applied.contains(key): audit.unknownApplied += 1
            default: break
            }
        }
        return audit
    }

    /// 16 clients charge one hot user with a 0.2 s think time between read and write: 12 through
    /// instance 1, 4 through instance 2 only while instance 1 is frozen (a load balancer sending
    /// traffic to the instance that answers), so that the pause finds instance 1 holding the lock
    /// most of the time. Instance 1 is frozen for 6.5 s (past the 5 s lease) per round, up to 5
    /// rounds, until `struck` says the pause met a lock holder. Returns the audit, the rounds it
    /// took and the optimistic conflicts the instances counted.
    private func pauseRun(strategy: String, struck: @escaping @Sendable (Cluster, Int) throws -> Bool) throws -> (ChargeAudit, Int, Double) {
        try TestServers.reset()
        let user = try XCTUnwrap(try SeedData(db: TestServers.database()).users(count: 1, balance: 1_000).first)
        let cluster = try startCluster(
            2,
            serveOptions: [
                "--strategy", "charge-balance=\(strategy)", "--processing-delay", "0.2", "--workers", "32", "--connections", "8",
            ])
        let clients = 16
        let stop = Atomic<Bool>(false)
        let rounds = Atomic<Int>(0)
        let instance1Frozen = Atomic<Bool>(false)
        let nemesisError = Mutex<String?>(nil)
        let results = try runConcurrently(clients: clients + 1, timeout: 180, setup: { _ in () }) { index, _ -> [(String, Outcome)] in
            if index == clients {
                defer { stop.store(true, ordering: .sequentiallyConsistent) }
                Thread.sleep(forTimeInterval: 1.5)
                for round in 1...5 {
                    rounds.store(round, ordering: .sequentiallyConsistent)
                    let fault = InstancePauseFault(
                        spec: FaultSpec(kind: .instancePause, startSeconds: 0, durationSeconds: 6.5, parameters: ["instance": 1]))
                    var record = FaultRecord(kind: "instance-pause", start: 0, targets: [])
                    do {
                        try fault.begin(into: &record)
                        instance1Frozen.store(true, ordering: .sequentiallyConsistent)
                        Thread.sleep(forTimeInterval: 6.5)
                        try fault.end(into: &record)
                        instance1Frozen.store(false, ordering: .sequentiallyConsistent)
                    } catch {
                        fault.restore()
                        nemesisError.withLock { $0 = "\(error)" }
                        return []
                    }
                    Thread.sleep(forTimeInterval: 1.5)
                    if (try? struck(cluster, user)) == true { break }
                }
                return []
            }
            let port = index < 12 ? cluster.apiPorts[0] : cluster.apiPorts[1]
            var outcomes: [(String, Outcome)] = []
            var sequence = 0
            while !stop.load(ordering: .sequentiallyConsistent) {
                if index >= 12, !instance1Frozen.load(ordering: .sequentiallyConsistent) {
                    Thread.sleep(forTimeInterval: 0.01)
                    continue
                }
                sequence += 1
                let key = "c\(index)-\(sequence)"
                outcomes.append((key, Self.post(port: port, path: "/users/\(user)/charges", body: #"{"amount": 1}"#, key: key)))
            }
            return outcomes
        }
        XCTAssertNil(nemesisError.withLock { $0 })
        let outcomes = try results.flatMap { try $0.get() }
        let conflicts = cluster.metricsPorts.map { Self.metricSum(port: $0, name: "lockproof_optimistic_conflicts_total") }.reduce(0, +)
        return (try auditCharges(user: user, outcomes: outcomes), rounds.load(ordering: .sequentiallyConsistent), conflicts)
    }

    /// The seed (Redis lock + version check) loses nothing when the paused instance wakes: its
    /// stale write fails the version check and is retried; the pause is shown to have met a lock
    /// holder by the conflicts the woken instance counted.
    func testInstancePauseSeedLosesNothing() throws {
        let (audit, rounds, conflicts) = try pauseRun(strategy: "seed") { cluster, _ in
            Self.metricSum(port: cluster.metricsPorts[0], name: "lockproof_optimistic_conflicts_total") > 0
        }
        print("instance-pause charge-balance=seed: \(audit); rounds \(rounds); optimistic conflicts \(Int(conflicts))")
        XCTAssertGreaterThan(conflicts, 0, "no pause met a lock holder in \(rounds) rounds: the fault proved nothing")
        XCTAssertEqual(audit.lost, 0, "\(audit)")
        XCTAssertEqual(audit.acknowledgedMissing, 0, "\(audit)")
        XCTAssertEqual(audit.failedApplied, 0, "\(audit)")
        XCTAssertGreaterThan(audit.counts.ok, 0, "\(audit)")
        XCTAssertLessThanOrEqual(audit.counts.unknown, 16, "\(audit): more unknowns than requests in flight")
    }

    /// The negative control: the Redis lock alone (`redis-lock`: no version check, no fencing, no
    /// row lock). The paused instance wakes believing it holds the lock and writes back a stale
    /// balance: updates are lost, and the SQL audit says so.
    func testInstancePauseCatchesTheRedisLockOnlyControl() throws {
        let (audit, rounds, _) = try pauseRun(strategy: "redis-lock") { _, user in
            let db = try TestServers.database()
            let balance = try db.query("SELECT balance FROM users WHERE id = $1", [user]).int(0, 0) ?? 0
            let ledger = try db.query("SELECT coalesce(sum(delta), 0) FROM balance_ledger WHERE user_id = $1", [user]).int(0, 0) ?? 0
            return ledger != balance
        }
        print("instance-pause charge-balance=redis-lock: \(audit); rounds \(rounds)")
        XCTAssertGreaterThan(audit.lost, 0, "the Redis-lock-only control lost no update in \(rounds) rounds: \(audit)")
    }

    // MARK: instance-kill

    /// Payments (seed strategy) of 240 pending orders through two instances; instance 1 is killed
    /// with SIGKILL 1.5 s in, payments between their deduction and the gateway's 0.3 s answer left
    /// `open`, and started again 2 s later. Recovery (every second) settles every open intent;
    /// money and stock are conserved (every balance and stock equals its ledger), every
    /// acknowledged payment is PAID with its deduction, no refused one is, and the unknowns are
    /// bounded by the requests in flight at the kill.
    func testInstanceKillLosesNothingAndRecoverySettlesInterruptedPayments() throws {
        try TestServers.reset()
        let seed = SeedData(db: try TestServers.database())
        let users = try seed.users(count: 20, balance: 1_000_000)
        let products = try seed.products(count: 4, price: 10, stock: 100_000)
        let orders = try seed.pendingOrders(count: 240, users: users, products: products, itemsPerOrder: 2, quantity: 1, price: 10)
        let cluster = try startCluster(
            2, serveOptions: ["--gateway-latency", "0.3", "--recover-interval", "1", "--workers", "32", "--connections", "8"])
        let clients = 16
        let next = Atomic<Int>(0)
        let openAfterKill = Atomic<Int>(-1)
        let nemesisError = Mutex<String?>(nil)
        let killRecord = Mutex<FaultRecord?>(nil)
        let results = try runConcurrently(clients: clients + 1, timeout: 180, setup: { _ in () }) { index, _ -> [(Int, Outcome)] in
            if index == clients {
                Thread.sleep(forTimeInterval: 1.5)
                let fault = InstanceKillFault(
                    spec: FaultSpec(kind: .instanceKill, startSeconds: 0, durationSeconds: 2, parameters: ["instance": 1]))
                var record = FaultRecord(kind: "instance-kill", start: 0, targets: [])
                do {
                    try fault.begin(into: &record)
                    let open = try TestServers.database().query("SELECT count(*) FROM payment_intents WHERE status = 'open'").int(0, 0)
                    openAfterKill.store(open ?? -1, ordering: .sequentiallyConsistent)
                    Thread.sleep(forTimeInterval: 2)
                    try fault.end(into: &record)
                } catch {
                    fault.restore()
                    nemesisError.withLock { $0 = "\(error)" }
                }
                killRecord.withLock { $0 = record }
                return []
            }
            var outcomes: [(Int, Outcome)] = []
            while true {
                let position = next.add(1, ordering: .sequentiallyConsistent).oldValue
                guard position < orders.count else { return outcomes }
                let order = orders[position]
                let port = cluster.apiPorts[index % 2]
                let outcome = Self.post(port: port, path: "/orders/\(order)/payment", body: "", key: nil)
                outcomes.append((order, outcome))
                // A refused connection (the killed instance is down): the order was not paid; it
                // goes again through the other instance, as a load balancer would send it.
                if outcome == .fail, !(try Self.isPending(order)) { continue }
                if outcome == .fail {
                    outcomes.append((order, Self.post(port: cluster.apiPorts[(index + 1) % 2], path: "/orders/\(order)/payment", body: "", key: nil)))
                }
            }
        }
        XCTAssertNil(nemesisError.withLock { $0 })
        let outcomes = try results.flatMap { try $0.get() }
        // Recovery: every open intent settled (at least 1 s old, every second), within 30 s.
        let db = try TestServers.database()
        var open = -1
        let deadline = Date(timeIntervalSinceNow: 30)
        repeat {
            open = try db.query("SELECT count(*) FROM payment_intents WHERE status = 'open'").int(0, 0) ?? -1
            if open == 0 { break }
            Thread.sleep(forTimeInterval: 0.5)
        } while Date() < deadline
        XCTAssertEqual(open, 0, "payments left open after recovery")
        let moneyBroken = try db.query(
            "SELECT count(*) FROM users u WHERE balance <> (SELECT coalesce(sum(delta), 0) FROM balance_ledger l WHERE l.user_id = u.id)")
            .int(0, 0)
        let stockBroken = try db.query(
            "SELECT count(*) FROM products p WHERE stock <> (SELECT coalesce(sum(delta), 0) FROM stock_ledger l WHERE l.product_id = p.id)")
            .int(0, 0)
        // Net deductions per order: -total for a paid order, 0 for any other (compensated or never deducted).
        let paidWrong = try db.query(
            """
            SELECT count(*) FROM orders o
            WHERE (SELECT coalesce(sum(delta), 0) FROM balance_ledger l WHERE l.reference = 'order:' || o.id)
                  <> CASE WHEN o.status IN ('PAID', 'COMPLETED') THEN -o.total_amount ELSE 0 END
            """
        ).int(0, 0)
        let statuses = try db.query("SELECT id, status FROM orders WHERE id = ANY($1::bigint[])", [postgresArray(orders)])
        var status: [Int: String] = [:]
        for row in 0..<statuses.rowCount { status[statuses.int(row, 0)!] = statuses.string(row, 1) }
        let acknowledgedNotPaid = outcomes.filter { $0.1 == .ok && status[$0.0] != "PAID" }.count
        let paidOrders = status.values.filter { $0 == "PAID" }.count
        let settled = try db.query("SELECT count(*) FROM payment_intents WHERE status = 'compensated'").int(0, 0) ?? 0
        let counts = Counts(outcomes.map(\.1))
        print(
            "instance-kill process-payment=seed: \(counts); open intents right after the kill \(openAfterKill.load(ordering: .sequentiallyConsistent)), open after recovery \(open), compensated by recovery \(settled), paid \(paidOrders) of \(orders.count); money broken \(moneyBroken ?? -1), stock broken \(stockBroken ?? -1), orders with wrong deductions \(paidWrong ?? -1), acknowledged but not paid \(acknowledgedNotPaid); \(killRecord.withLock { $0?.targets ?? [] })"
        )
        XCTAssertEqual(moneyBroken, 0)
        XCTAssertEqual(stockBroken, 0)
        XCTAssertEqual(paidWrong, 0)
        XCTAssertEqual(acknowledgedNotPaid, 0)
        XCTAssertGreaterThan(counts.ok, 0)
        XCTAssertGreaterThan(counts.unknown + openAfterKill.load(ordering: .sequentiallyConsistent), 0, "the kill met no request in flight: it proved nothing")
        XCTAssertLessThanOrEqual(counts.unknown, clients, "more unknowns than requests in flight at the kill")
    }

    private static func isPending(_ order: Int) throws -> Bool {
        try TestServers.database().query("SELECT status FROM orders WHERE id = $1", [order]).string(0, 0) == "PENDING"
    }

    // MARK: Refusals

    /// A pid the cluster did not start (a `sleep` written into a pid file) and an instance number
    /// the cluster does not list are refused before any signal; no cluster named at all too.
    func testInstanceFaultsStrikeOnlyInstancesLockProofStarted() throws {
        let folder = NSTemporaryDirectory() + "lockproof-cluster-refusal-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer {
            try? FileManager.default.removeItem(atPath: folder)
            unsetenv(ManagedInstances.environmentKey)
        }
        let sleeper = Process()
        sleeper.executableURL = try XCTUnwrap(executableOnPath("sleep"))
        sleeper.arguments = ["30"]
        try sleeper.run()
        defer { sleeper.terminate() }
        try "1 \(Self.basePort) \(Self.basePort + 100)\n".write(toFile: folder + "/instances", atomically: true, encoding: .utf8)
        try "\(sleeper.processIdentifier)\n".write(toFile: folder + "/instance-1.pid", atomically: true, encoding: .utf8)

        unsetenv(ManagedInstances.environmentKey)
        var record = FaultRecord(kind: "instance-kill", start: 0, targets: [])
        let kill = InstanceKillFault(spec: FaultSpec(kind: .instanceKill, startSeconds: 0, durationSeconds: 1, parameters: ["instance": 1]))
        XCTAssertThrowsError(try kill.begin(into: &record)) { XCTAssertTrue("\($0)".contains("names none"), "\($0)") }

        setenv(ManagedInstances.environmentKey, folder, 1)
        XCTAssertThrowsError(try kill.begin(into: &record)) { XCTAssertTrue("\($0)".contains("which is not a lockproof"), "\($0)") }
        let pause = InstancePauseFault(spec: FaultSpec(kind: .instancePause, startSeconds: 0, durationSeconds: 6, parameters: ["instance": 2]))
        XCTAssertThrowsError(try pause.begin(into: &record)) { XCTAssertTrue("\($0)".contains("lists instances [1]"), "\($0)") }
        XCTAssertTrue(sleeper.isRunning, "the sleep the pid file named was signalled")
        XCTAssertTrue(record.targets.isEmpty)
    }
}
