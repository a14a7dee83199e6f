import Foundation
import LockProofCommerce
import LockProofConfiguration
import LockProofHTTP
import LockProofLocking
import LockProofMetrics
import LockProofScenario

/// `--metrics-address`: the run's Prometheus metrics while it runs, and the pending-compensations
/// count polled in the database as serve does (`SuiteMetrics` for the suite runner).
final class RunMetricsEndpoint: SuiteMetrics {
    private let metrics = LockProofMetrics()
    private let address: HTTPBindAddress
    private let option: String
    private let options: ScenarioRunOptions
    private var endpoint: MetricsEndpoint?
    private var pendingMonitor: CompensationsPendingMonitor?

    init(address: HTTPBindAddress, option: String, options: ScenarioRunOptions) {
        self.address = address
        self.option = option
        self.options = options
    }

    /// The pending-compensations poller holds a session of its own.
    var databaseSessions: Int { 1 }

    func start(configuration: ServerConfiguration) throws {
        let server = MetricsEndpoint(metrics: metrics, address: address)
        do { try server.start() } catch { throw RunMetricsError(message: "--metrics-address \(option): \(error)") }
        FileHandle.standardError.write(Data("metrics: http://\(address.host):\(server.boundPort ?? address.port)/metrics\n".utf8))
        do {
            pendingMonitor = try CompensationsPendingMonitor(
                metrics: metrics, databaseURL: configuration.databaseURL, intervalSeconds: options.pendingInterval,
                connectTimeoutSeconds: configuration.connectTimeoutSeconds)
        } catch {
            server.stop()
            throw RunMetricsError(message: "cannot reach PostgreSQL: \(error)")
        }
        endpoint = server
    }

    func attach(to runner: ScenarioRunner) {
        let metrics = self.metrics
        runner.forward = metrics
        runner.operationObserver = { caseName, strategy, outcome, seconds in
            metrics.recordOperation(case: caseName, strategy: strategy, outcome: outcome, seconds: seconds)
        }
        // Through a target: the load side (the requests LockProof's client sent), next to the
        // service's own lockproof_http_* on its /metrics.
        runner.targetRequestObserver = { operation, status, seconds in
            metrics.recordTargetRequest(operation: operation, status: status, seconds: seconds)
        }
    }

    func beforeFirstOperation(stopped: @escaping () -> Bool) {
        pendingMonitor?.start()
        guard let endpoint else { return }
        // A scrape before the first operation: Prometheus sees every series at 0, so the counter
        // alerts and rate() count the run's first events.
        waitForScrape(
            endpoint, after: monotonicSeconds(), timeoutSeconds: options.metricsFirstScrapeWait,
            moment: "before the first operation",
            missed: "Prometheus may miss the run's first events", stop: stopped)
    }

    func finished(_ result: ScenarioResult) {
        if let pending = result.statistics.gauge("lockproof_compensations_pending") {
            metrics.setCompensationsPending(Int(pending))
        }
    }

    func afterLastOperation(stopped: @escaping () -> Bool) {
        guard let endpoint else { return }
        // The last values reach Prometheus only through a scrape that renders them.
        pendingMonitor?.stop()
        waitForScrape(
            endpoint, after: monotonicSeconds(), timeoutSeconds: options.metricsLinger ?? endpoint.scrapes.defaultLingerSeconds(),
            moment: "after the last operation",
            missed: "Prometheus does not have the final values", stop: stopped)
    }

    func stop() {
        pendingMonitor?.stop()
        endpoint?.stop()
    }
}

struct RunMetricsError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Waits, bounded, for a scrape that renders after `instant`, and says on stderr how it went:
/// `metrics: <moment>: scraped after N s` or `metrics: <moment>: not scraped within N s (<missed>)`.
private func waitForScrape(
    _ endpoint: MetricsEndpoint, after instant: Double, timeoutSeconds: Double, moment: String, missed: String,
    stop: () -> Bool
) {
    let message: String
    if timeoutSeconds <= 0 {
        message = "metrics: \(moment): not waiting for a scrape (\(missed))"
    } else if let seconds = endpoint.scrapes.waitForScrape(after: instant, timeoutSeconds: timeoutSeconds, stop: stop) {
        message = "metrics: \(moment): scraped after \(String(format: "%.1f", seconds)) s"
    } else if stop() {
        message = "metrics: \(moment): stopped waiting for a scrape"
    } else {
        message = "metrics: \(moment): not scraped within \(String(format: "%g", timeoutSeconds)) s (\(missed))"
    }
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
