import Foundation
import LockProofCommerce
import LockProofHTTP
import LockProofMetrics
import LockProofPostgres
import LockProofScenario
import LockProofService
import LockProofTestSupport
import XCTest

/// A run through targets/lockproof-serve.yaml against two real API services (in this process, on a
/// database of their own): the load side's RED metrics on /metrics add up to the run's history, and
/// `instances.spread` decides which instance each request reaches (each service's own
/// lockproof_http_requests_total says where they went).
final class TargetLoadSideTests: XCTestCase {
    private static let scenarioText = """
        name: target-load-side
        case: charge-balance
        strategy: seed
        seed: {users: 4, balance: 0}
        workload: {virtual_users: 4, iterations: 6, start: barrier, pick: random, amount: 100, random_seed: 7, timeout: 60s}
        expect: pass
        """

    /// Two serve instances on a database of their own (a target's database is not LockProof's).
    private struct Instances {
        let services: [APIService]
        let servers: [APIServer]
        let metrics: [LockProofMetrics]
        var urls: [String] { servers.map { "http://127.0.0.1:\($0.boundPort!)" } }

        func stop() {
            for server in servers { server.stop() }
            for service in services { service.close() }
        }

        /// Requests each instance answered on the charge route (from its own metrics).
        func charges() throws -> [Int] {
            try metrics.map { metrics in
                let exposition = try Exposition(metrics.render())
                return Int(exposition.samples(named: "lockproof_http_requests_total").filter { $0.labels["route"] == "charge_user" }.map(\.value).reduce(0, +))
            }
        }
    }

    private func startInstances(_ count: Int) throws -> Instances {
        try TestServers.reset()
        var configuration = TestServers.configuration
        configuration.databaseURL = try TestServers.siblingDatabase("target")
        setenv("LOCKPROOF_SERVE_DATABASE_URL", configuration.databaseURL, 1)
        var options = APIService.Options()
        options.workers = 4
        options.connections = 4
        options.redisConnections = 4
        var services: [APIService] = [], servers: [APIServer] = [], metrics: [LockProofMetrics] = []
        for _ in 0..<count {
            let own = LockProofMetrics()
            let service = APIService(
                options: options, configuration: configuration, shared: TestServers.shared, metrics: own, gateway: AlwaysApprovingGateway())
            let server = service.makeServer(address: try HTTPBindAddress(host: "127.0.0.1", port: 0))
            try server.start()
            services.append(service)
            servers.append(server)
            metrics.append(own)
        }
        return Instances(services: services, servers: servers, metrics: metrics)
    }

    private func target(spread: String) throws -> Target {
        let path = Repository.root.appendingPathComponent("targets/lockproof-serve.yaml").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(text.contains("spread: round-robin"))
        return try TargetParser.parse(text.replacingOccurrences(of: "spread: round-robin", with: "spread: \(spread)"), file: path)
    }

    /// Runs the scenario through `target` at `urls` with the load side's metrics on a real /metrics endpoint.
    private func run(_ target: Target, urls: [String], metrics: LockProofMetrics) throws -> (ScenarioResult, [HistoryEntry]) {
        setenv("LOCKPROOF_SERVE_URLS", urls.joined(separator: " "), 1)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("target-load-side-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let runner = ScenarioRunner(configuration: TestServers.configuration, shared: TestServers.shared, progress: ProgressReporter(enabled: false))
        runner.target = target
        runner.historyDirectory = folder
        runner.targetRequestObserver = { operation, status, seconds in
            metrics.recordTargetRequest(operation: operation, status: status, seconds: seconds)
        }
        let result = try runner.run(try ScenarioParser.parse(Self.scenarioText, file: "target-load-side.yaml"))
        let history = try readHistory(try XCTUnwrap(result.historyFile))
        return (result, history)
    }

    /// The counters of `lockproof_target_requests_total` as scraped over HTTP, by "operation status".
    private func scrapeCounters(_ metrics: LockProofMetrics) throws -> (counts: [String: Int], durationCount: [String: Int]) {
        let endpoint = MetricsEndpoint(metrics: metrics, address: try HTTPBindAddress(host: "127.0.0.1", port: 0))
        try endpoint.start()
        defer { endpoint.stop() }
        let response = try BlockingHTTPClient.get(port: try XCTUnwrap(endpoint.boundPort), path: "/metrics")
        let exposition = try Exposition(response.text)
        var counts: [String: Int] = [:], durations: [String: Int] = [:]
        for sample in exposition.samples(named: "lockproof_target_requests_total") {
            counts["\(sample.labels["operation"]!) \(sample.labels["status"]!)"] = Int(sample.value)
        }
        for sample in exposition.samples(named: "lockproof_target_request_duration_seconds_count") {
            durations[sample.labels["operation"]!] = Int(sample.value)
        }
        return (counts, durations)
    }

    /// Every (operation, status) of the catalog with the number of history entries that ended so.
    static func historyCounts(_ history: [HistoryEntry]) -> [String: Int] {
        var counts: [String: Int] = [:]
        for operation in MetricCatalog.targetOperations {
            for status in MetricCatalog.targetStatuses { counts["\(operation) \(status)"] = 0 }
        }
        for entry in history { counts["\(entry.operation.rawValue) \(entry.outcome.rawValue)", default: 0] += 1 }
        return counts
    }

    func testTheLoadSideCountersEqualTheHistorysOutcomes() throws {
        let instances = try startInstances(2)
        defer { instances.stop() }
        let metrics = LockProofMetrics()
        let (result, history) = try run(try target(spread: "round-robin"), urls: instances.urls, metrics: metrics)
        XCTAssertNil(result.runError, ReportWriter.summary(result))
        XCTAssertEqual(history.count, 24, "4 users × 6 charges")
        let scraped = try scrapeCounters(metrics)
        let expected = Self.historyCounts(history)
        XCTAssertEqual(scraped.counts, expected, "the counters on /metrics are the history's outcomes")
        XCTAssertEqual(expected["charge ok"], 24)
        XCTAssertEqual(scraped.durationCount["charge"], 24, "one duration per request")
        XCTAssertEqual(try instances.charges().reduce(0, +), 24, "the services answered as many charges as the client counted")

        // Negative control 1: the comparison can fail: one entry that ended otherwise is a mismatch.
        var altered = history
        let first = altered.removeFirst()
        altered.append(HistoryEntry(
            client: first.client, index: first.index, operation: first.operation, arguments: first.arguments, items: first.items,
            start: first.start, end: first.end, outcome: .fail, reason: "not_found", result: nil))
        XCTAssertNotEqual(scraped.counts, Self.historyCounts(altered))

        // Negative control 2: requests that fail are counted as fail, not ok. Instance 1 is a port
        // nothing listens on: its virtual users' requests are refused (fail, connection_failed).
        let closed = try SilentListener().port  // released at once: nothing listens there
        let failing = LockProofMetrics()
        let (_, failedHistory) = try run(try target(spread: "round-robin"), urls: [instances.urls[0], "http://127.0.0.1:\(closed)"], metrics: failing)
        let failedScrape = try scrapeCounters(failing)
        XCTAssertEqual(failedScrape.counts, Self.historyCounts(failedHistory))
        XCTAssertEqual(failedScrape.counts["charge fail"], 12, "users 1 and 3 (instance 1 of 2) never reached a service")
        XCTAssertEqual(failedScrape.counts["charge ok"], 12)
        XCTAssertNotEqual(failedScrape.counts, scraped.counts)
    }

    func testRoundRobinPinsVirtualUserIToInstanceIModN() throws {
        let instances = try startInstances(2)
        defer { instances.stop() }
        let target = try target(spread: "round-robin")
        XCTAssertEqual(target.spread, .roundRobin)
        // Each virtual user's client alone, in turn: its requests land on instance i mod 2 only
        // (user 1 does not exist in the empty database: the 404s are counted on the route all the same).
        for index in 0..<4 {
            let before = try instances.charges()
            let client = TargetClient.forVirtualUser(index, of: target, baseURLs: instances.urls, randomSeed: 7)
            try client.open()
            for _ in 0..<5 { _ = client.invoke(Invocation(operation: .charge, strategy: "seed", arguments: ["user": 1, "amount": 1])) }
            client.close()
            let after = try instances.charges()
            XCTAssertEqual(zip(after, before).map { $0 - $1 }, index % 2 == 0 ? [5, 0] : [0, 5], "virtual user \(index)")
        }
    }

    func testRandomSpreadReachesEveryInstanceAndRepeatsWithTheSeed() throws {
        let instances = try startInstances(2)
        defer { instances.stop() }
        let target = try target(spread: "random")
        XCTAssertEqual(target.spread, .random)
        func spread(user index: Int, seed: UInt64) throws -> [Int] {
            let before = try instances.charges()
            let client = TargetClient.forVirtualUser(index, of: target, baseURLs: instances.urls, randomSeed: seed)
            try client.open()
            defer { client.close() }
            for _ in 0..<40 { _ = client.invoke(Invocation(operation: .charge, strategy: "seed", arguments: ["user": 1, "amount": 1])) }
            return zip(try instances.charges(), before).map { $0 - $1 }
        }
        let first = try spread(user: 0, seed: 7)
        XCTAssertEqual(first.reduce(0, +), 40)
        XCTAssertTrue(first.allSatisfy { $0 > 0 }, "one user's requests reach both instances: \(first)")
        XCTAssertEqual(try spread(user: 0, seed: 7), first, "the same seed and user, the same choices")
        // A whole run: both instances answer, and the history is as long as ever.
        let metrics = LockProofMetrics()
        let before = try instances.charges()
        let (result, history) = try run(target, urls: instances.urls, metrics: metrics)
        XCTAssertNil(result.runError, ReportWriter.summary(result))
        let reached = zip(try instances.charges(), before).map { $0 - $1 }
        XCTAssertEqual(reached.reduce(0, +), history.count)
        XCTAssertTrue(reached.allSatisfy { $0 > 0 }, "a random run reaches both instances: \(reached)")
    }
}
