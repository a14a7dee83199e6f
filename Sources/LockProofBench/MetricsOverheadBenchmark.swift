import Foundation
import LockProofCommerce
import LockProofConfiguration
import LockProofHTTP
import LockProofLocking
import LockProofMetrics
import LockProofPostgres

#if canImport(Glibc)
    import Glibc
#endif

/// What the metrics cost (`lockproof bench-metrics`): a benchmark, not a test; it reports numbers
/// and never fails on them. Runs one charge-balance workload (each client on its own user, so the
/// numbers are steady) in rounds alternating instrumentation on and off, then times rendering and
/// serving the exposition with every series populated.
public struct MetricsOverheadBenchmark {
    public var configuration: ServerConfiguration
    public var clients: Int
    public var rounds: Int
    public var seconds: Double
    public var strategy: ChargeBalanceStrategy
    public var scrapes: Int

    public init(
        configuration: ServerConfiguration, clients: Int, rounds: Int, seconds: Double, strategy: ChargeBalanceStrategy,
        scrapes: Int
    ) {
        self.configuration = configuration
        self.clients = clients
        self.rounds = rounds
        self.seconds = seconds
        self.strategy = strategy
        self.scrapes = scrapes
    }

    /// Runs and prints the figures. Throws `BenchError` when the servers cannot be used.
    public func run() throws {
        let chargeStrategy = strategy
        let claim: DatabaseClaim
        let shared: SharedServices
        let workers: [BenchClient]
        do {
            // It adds users and takes Redis locks: refused where a run or serve is (see DatabaseClaim).
            claim = try DatabaseClaim.claimForWriting(.run, configuration: configuration, command: "bench-metrics")
            shared = try SharedServices(configuration: configuration)
            let database = try configuration.openDatabase()
            let users = try SeedData(db: database).users(count: clients, balance: 0)
            workers = try users.map { userId in
                BenchClient(
                    client: try CommerceClient(configuration: configuration, shared: shared),
                    charge: chargeStrategy, userId: userId)
            }
        } catch {
            throw BenchError("\(error)")
        }
        defer {
            shared.stop()
            claim.release()
        }

        print("workload: charge-balance strategy \(strategy.rawValue), \(clients) clients on their own users, \(rounds) rounds of \(seconds) s on + \(seconds) s off")
        let instrumented = LockProofMetrics(instrumentationEnabled: true)
        let bare = LockProofMetrics(instrumentationEnabled: false)
        var onRates: [Double] = []
        var offRates: [Double] = []
        var pairedOverheads: [Double] = []
        var onCPU: [Double] = []
        var offCPU: [Double] = []
        for round in 0..<rounds {
            // Alternate which half goes first, so that warm-up and drift do not favour one side.
            let order = round % 2 == 0 ? [instrumented, bare] : [bare, instrumented]
            for metrics in order {
                let result = try runPhase(workers, metrics: metrics)
                let label = metrics.instrumentationEnabled ? "on " : "off"
                print(String(format: "  round %d %@: %8.1f ops/s, %6.1f µs CPU of this process per op (%d ops, %d failed)", round + 1, label, result.rate, result.cpuSecondsPerOperation * 1e6, result.operations, result.failures))
                if metrics.instrumentationEnabled {
                    onRates.append(result.rate)
                    onCPU.append(result.cpuSecondsPerOperation)
                } else {
                    offRates.append(result.rate)
                    offCPU.append(result.cpuSecondsPerOperation)
                }
            }
            // Within a round both halves ran back to back: their ratio cancels slow drift of the machine.
            pairedOverheads.append((offRates[round] - onRates[round]) / offRates[round] * 100)
        }
        let onMedian = median(onRates)
        let offMedian = median(offRates)
        print(String(format: "instrumentation on:  median %.1f ops/s, mean %.1f", onMedian, mean(onRates)))
        print(String(format: "instrumentation off: median %.1f ops/s, mean %.1f", offMedian, mean(offRates)))
        print(String(format: "overhead: %+.2f%% (median on vs median off; negative = on was faster, i.e. noise)", (offMedian - onMedian) / offMedian * 100))
        let sortedPairs = pairedOverheads.sorted()
        print(String(format: "overhead per round (off - on) / off: median %+.2f%%, range %+.2f%% .. %+.2f%%", median(pairedOverheads), sortedPairs.first!, sortedPairs.last!))
        // CPU time of this process is what instrumentation adds to; unlike throughput it is not
        // moved by other processes competing for the database, Redis or the cores.
        print(String(format: "CPU of this process per op: on median %.1f µs, off median %.1f µs (%+.2f%%)", median(onCPU) * 1e6, median(offCPU) * 1e6, (median(onCPU) - median(offCPU)) / median(offCPU) * 100))

        timeRecording()
        try timeExposition()
    }

    /// The cost of one recording on the hot path, without the noise of a database round trip: what
    /// one operation of the workload records (a lock wait, a retry call, the operation itself).
    private func timeRecording() {
        let metrics = LockProofMetrics()
        let caseName = CaseName.chargeBalance.rawValue
        let operations = 1_000_000
        let started = monotonicSeconds()
        for index in 0..<operations {
            metrics.record(.lockWaited(.redis, seconds: 0.0005), caseName: caseName)
            metrics.record(.retryCall(.successfulWithoutRetry), caseName: caseName)
            metrics.recordOperation(
                case: .chargeBalance, strategy: ChargeBalanceStrategy.seed, outcome: .success,
                seconds: Double(index % 7) * 0.0003)
        }
        let perOperation = (monotonicSeconds() - started) / Double(operations)
        print(String(format: "recording one operation's metrics (lock wait + retry call + operation, one thread): %.0f ns", perOperation * 1e9))
    }

    private struct PhaseResult {
        let operations: Int
        let failures: Int
        let rate: Double
        let cpuSecondsPerOperation: Double
    }

    /// User + system CPU seconds of this whole process so far.
    private func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1_000_000 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    private func runPhase(_ workers: [BenchClient], metrics: LockProofMetrics) throws -> PhaseResult {
        for worker in workers { worker.prepare(metrics: metrics) }
        let start = DispatchSemaphore(value: 0)
        let group = DispatchGroup()
        let phaseSeconds = seconds
        for worker in workers {
            group.enter()
            let thread = Thread {
                start.wait()
                worker.run(forSeconds: phaseSeconds)
                group.leave()
            }
            thread.start()
        }
        let began = monotonicSeconds()
        let cpuBefore = processCPUSeconds()
        for _ in workers { start.signal() }
        group.wait()
        let elapsed = monotonicSeconds() - began
        let cpu = processCPUSeconds() - cpuBefore
        let operations = workers.map(\.operations).reduce(0, +)
        let failures = workers.map(\.failures).reduce(0, +)
        return PhaseResult(
            operations: operations, failures: failures, rate: Double(operations) / elapsed,
            cpuSecondsPerOperation: cpu / Double(max(1, operations)))
    }

    private func timeExposition() throws {
        let metrics = LockProofMetrics()
        metrics.populateEverySeries()
        let body = metrics.renderBytes()
        let samples = body.split(separator: UInt8(ascii: "\n")).filter { $0.first != UInt8(ascii: "#") }.count
        print("exposition with every series populated: \(MetricCatalog.all.count) families, \(samples) samples, \(body.count) bytes")

        _ = metrics.renderBytes()  // warm-up
        var renderTimes: [Double] = []
        for _ in 0..<scrapes {
            let started = monotonicSeconds()
            _ = metrics.renderBytes()
            renderTimes.append(monotonicSeconds() - started)
        }
        report("render", renderTimes)

        let endpoint = MetricsEndpoint(metrics: metrics, address: try HTTPBindAddress(host: "127.0.0.1", port: 0))
        try endpoint.start()
        defer { endpoint.stop() }
        guard let port = endpoint.boundPort else { throw BenchError("the metrics endpoint did not report its port") }
        _ = try BlockingHTTPClient.get(port: port, path: "/metrics")  // warm-up
        var scrapeTimes: [Double] = []
        for _ in 0..<scrapes {
            let started = monotonicSeconds()
            let response = try BlockingHTTPClient.get(port: port, path: "/metrics")
            scrapeTimes.append(monotonicSeconds() - started)
            guard response.status == 200, response.body.count > 0 else {
                throw BenchError("scrape answered \(response.status)")
            }
        }
        report("render + serve over loopback HTTP (connect, GET /metrics, read to close)", scrapeTimes)
    }

    private func report(_ what: String, _ times: [Double]) {
        let sorted = times.sorted()
        func percentile(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] * 1000 }
        print(String(format: "%@: mean %.3f ms, p50 %.3f ms, p99 %.3f ms, max %.3f ms (%d runs)", what, mean(times) * 1000, percentile(0.5), percentile(0.99), sorted.last! * 1000, times.count))
    }

    private func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    private func mean(_ values: [Double]) -> Double { values.reduce(0, +) / Double(values.count) }
}

/// One benchmark client: its own connections, used by one thread per phase.
private final class BenchClient: @unchecked Sendable {
    let client: CommerceClient
    let charge: ChargeBalanceStrategy
    let userId: Int
    private var metrics = LockProofMetrics(instrumentationEnabled: false)
    private(set) var operations = 0
    private(set) var failures = 0

    init(client: CommerceClient, charge: ChargeBalanceStrategy, userId: Int) {
        self.client = client
        self.charge = charge
        self.userId = userId
    }

    /// Called between phases, while no thread runs this client.
    func prepare(metrics: LockProofMetrics) {
        self.metrics = metrics
        client.events = metrics.eventSink
        operations = 0
        failures = 0
    }

    /// What a scenario runner does per operation: time it, classify it, record it.
    func run(forSeconds seconds: Double) {
        let operation = ChargeBalance(client: client, strategy: charge)
        let deadline = monotonicSeconds() + seconds
        while monotonicSeconds() < deadline {
            let started = monotonicSeconds()
            let outcome: OperationOutcome
            do {
                _ = try operation.charge(userId: userId, amount: 1)
                outcome = .success
            } catch {
                outcome = OperationOutcome.classify(error)
                failures += 1
            }
            metrics.recordOperation(
                case: .chargeBalance, strategy: charge, outcome: outcome, seconds: monotonicSeconds() - started)
            operations += 1
        }
    }
}
