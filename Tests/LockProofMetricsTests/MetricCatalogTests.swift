import Foundation
import LockProofCommerce
import LockProofHTTP
import LockProofLocking
import LockProofMetrics
import LockProofTestSupport
import XCTest

/// The catalog in code, the catalog file the dashboards are checked against, the exposition on
/// /metrics and the names the alerts and dashboards use must all agree.
final class MetricCatalogTests: XCTestCase {
    private func catalogFileNames() throws -> [String] {
        try Repository.text("Dashboards/metric-catalog.txt").split(separator: "\n").map {
            $0.trimmingCharacters(in: .whitespaces)
        }.filter { !$0.isEmpty }
    }

    func testCodeCatalogDeclaresExactlyTheFamiliesOfTheCatalogFile() throws {
        XCTAssertEqual(MetricCatalog.all.map(\.name), try catalogFileNames())
    }

    func testEveryCatalogFamilyAppearsOnMetricsOverHTTP() throws {
        let (endpoint, port) = try startEndpoint(LockProofMetrics())
        defer { endpoint.stop() }
        let exposition = try scrape(port: port)
        for name in try catalogFileNames() {
            XCTAssertTrue(exposition.familyNames.contains(name), "\(name) is in the catalog but not on /metrics")
        }
        XCTAssertEqual(exposition.familyNames, Set(try catalogFileNames()), "/metrics exports a family the catalog lacks")
    }

    func testEveryMetricNameInAlertsAndDashboardsIsInTheCatalog() throws {
        let catalog = Set(try catalogFileNames())
        let histograms = Set(MetricCatalog.all.filter { $0.kind == .histogram }.map(\.name))
        func family(_ name: String) -> String? {
            if catalog.contains(name) { return name }
            for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
                let base = String(name.dropLast(suffix.count))
                if histograms.contains(base) { return base }
            }
            return nil
        }
        let dashboardFolder = Repository.root.appendingPathComponent("Dashboards/grafana")
        let dashboards = try FileManager.default.contentsOfDirectory(atPath: dashboardFolder.path)
            .filter { $0.hasSuffix(".json") }.map { "Dashboards/grafana/\($0)" }
        XCTAssertFalse(dashboards.isEmpty, "no Grafana dashboard found")
        let pattern = try NSRegularExpression(pattern: "(?<![A-Za-z0-9_])lockproof_[a-z0-9_]*[a-z0-9]")
        var used = 0
        for file in ["Dashboards/alerts.yml"] + dashboards {
            let text = try Repository.text(file)
            for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                let name = String(text[Range(match.range, in: text)!])
                used += 1
                XCTAssertNotNil(family(name), "\(file) uses \(name), which is not in the catalog")
            }
        }
        XCTAssertGreaterThan(used, 10, "the alert and dashboard files should use the catalog's metrics")
    }

    func testEveryFamilyIsDocumented() throws {
        let documentation = try Repository.text("docs/METRICS.md")
        for family in MetricCatalog.all {
            XCTAssertTrue(documentation.contains("`\(family.name)`"), "docs/METRICS.md does not document \(family.name)")
        }
    }

    func testEveryKnownLabelCombinationIsExportedAtZeroFromTheStart() throws {
        let exposition = try Exposition(LockProofMetrics().render())
        var expectedSamples = 0
        for family in MetricCatalog.all {
            XCTAssertEqual(exposition.types[family.name], family.kind.rawValue, family.name)
            for values in family.series {
                let labels = Dictionary(uniqueKeysWithValues: zip(family.labelNames, values))
                switch family.kind {
                case .histogram:
                    XCTAssertEqual(exposition.value(family.name + "_count", labels), 0, "\(family.name)\(labels)")
                    XCTAssertEqual(exposition.value(family.name + "_sum", labels), 0, "\(family.name)\(labels)")
                    for bound in family.buckets.map({ "\($0)" }) + ["+Inf"] {
                        var bucket = labels
                        bucket["le"] = bound
                        XCTAssertEqual(exposition.value(family.name + "_bucket", bucket), 0, "\(family.name)\(bucket)")
                    }
                    expectedSamples += family.buckets.count + 3
                case .counter, .gauge:
                    let expected: Double
                    switch family.name {
                    case MetricCatalog.buildInfo.name: expected = 1
                    case MetricCatalog.circuitBreakerState.name: expected = labels["state"] == "closed" ? 1 : 0
                    default: expected = 0
                    }
                    XCTAssertEqual(exposition.value(family.name, labels), expected, "\(family.name)\(labels)")
                    expectedSamples += 1
                }
            }
        }
        XCTAssertEqual(exposition.samples.count, expectedSamples, "every sample is a declared combination, once")
    }

    func testLabelValuesComeFromTheCoreEnums() {
        XCTAssertEqual(MetricCatalog.caseNames, CaseName.allCases.map(\.rawValue))
        XCTAssertEqual(MetricCatalog.strategies(of: .chargeBalance), ChargeBalanceStrategy.allCases.map(\.rawValue))
        XCTAssertEqual(MetricCatalog.strategies(of: .cartQuantity), StateChangeStrategy.allCases.map(\.rawValue))
        XCTAssertEqual(MetricCatalog.outcomes, ["success", "rejected", "error", "unknown"])
        XCTAssertEqual(
            MetricCatalog.retryCallKinds,
            ["successful_without_retry", "successful_with_retry", "failed_without_retry", "failed_with_retry"])
        // Prometheus label values must be safe words: swift-prometheus does not escape them for us.
        let safe = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyz0123456789_-.")
        for family in MetricCatalog.all {
            for label in family.labels {
                for value in label.values {
                    XCTAssertTrue(value.unicodeScalars.allSatisfy(safe.contains), "\(family.name) \(label.name)=\(value)")
                }
            }
        }
    }

    func testPromtoolFindsNoProblemInAFreshOrAFullyPopulatedExposition() throws {
        let metrics = LockProofMetrics()
        let (endpoint, port) = try startEndpoint(metrics)
        defer { endpoint.stop() }
        let fresh = try BlockingHTTPClient.get(port: port, path: "/metrics")
        let freshCheck = try promtoolCheckMetrics(fresh.body)
        XCTAssertEqual(freshCheck.status, 0, freshCheck.output)
        XCTAssertEqual(freshCheck.output.trimmingCharacters(in: .whitespacesAndNewlines), "", "promtool printed problems")

        metrics.populateEverySeries()
        let populated = try BlockingHTTPClient.get(port: port, path: "/metrics")
        let populatedCheck = try promtoolCheckMetrics(populated.body)
        XCTAssertEqual(populatedCheck.status, 0, populatedCheck.output)
        XCTAssertEqual(populatedCheck.output.trimmingCharacters(in: .whitespacesAndNewlines), "", "promtool printed problems")
        let exposition = try Exposition(populated.text)
        for family in MetricCatalog.all where family.kind == .counter {
            for sample in exposition.samples(named: family.name) {
                XCTAssertGreaterThan(sample.value, 0, "populateEverySeries left \(family.name)\(sample.labels) at 0")
            }
        }
    }

    func testCircuitBreakerExportsOneSeriesPerStateWithOnlyTheCurrentAtOne() throws {
        let metrics = LockProofMetrics()
        for state in [CircuitBreakerState.open, .halfOpen, .closed, .open] {
            metrics.setCircuitBreaker(state: state)
            let exposition = try Exposition(metrics.render())
            for candidate in CircuitBreakerState.allCases {
                XCTAssertEqual(
                    exposition.value(
                        "lockproof_circuit_breaker_state", ["name": "redis", "state": candidate.rawValue]),
                    candidate == state ? 1 : 0, "after setting \(state), \(candidate)")
            }
        }
        XCTAssertEqual(try Exposition(metrics.render()).value("lockproof_build_info", ["version": LockProofBuild.version]), 1)
    }

    func testUnknownLabelValuesFallBackToOtherAndUnknownCasesAreNotExported() throws {
        let metrics = LockProofMetrics()
        let issue = CaseName.issueCoupon.rawValue
        metrics.record(.databaseError(.uniqueViolation, constraint: "a_constraint_added_later"), caseName: issue)
        metrics.record(.databaseError(.uniqueViolation, constraint: nil), caseName: issue)
        metrics.record(.optimisticConflict(entity: "coupon"), caseName: issue)
        metrics.record(.retryAttempt, caseName: "a-case-that-does-not-exist")
        metrics.recordOperation(case: .issueCoupon, strategy: "no-such-strategy", outcome: .success, seconds: 0.1)
        let exposition = try Exposition(metrics.render())
        XCTAssertEqual(exposition.value("lockproof_db_unique_violations_total", ["case": issue, "constraint": "other"]), 2)
        XCTAssertEqual(exposition.value("lockproof_optimistic_conflicts_total", ["case": issue, "entity": "other"]), 1)
        XCTAssertEqual(exposition.samples(named: "lockproof_retry_attempts_total").map(\.value).reduce(0, +), 0)
        XCTAssertEqual(exposition.samples(named: "lockproof_operations_total").map(\.value).reduce(0, +), 0)
        XCTAssertNil(exposition.samples.first { $0.labels.values.contains("a-case-that-does-not-exist") })
    }

    func testRecordingFromManyThreadsLosesNothing() throws {
        let metrics = LockProofMetrics()
        let threads = 8
        let perThread = 5_000
        let group = DispatchGroup()
        for index in 0..<threads {
            group.enter()
            Thread {
                let caseName = CaseName.allCases[index % CaseName.allCases.count]
                for _ in 0..<perThread {
                    metrics.record(.retryAttempt, caseName: caseName.rawValue)
                    metrics.record(.lockWaited(.row, seconds: 0.003), caseName: caseName.rawValue)
                    metrics.recordOperation(case: .chargeBalance, strategy: ChargeBalanceStrategy.atomic, outcome: .success, seconds: 0.002)
                }
                group.leave()
            }.start()
        }
        XCTAssertEqual(group.wait(timeout: .now() + 120), .success, "recording threads hung")
        let exposition = try Exposition(metrics.render())
        XCTAssertEqual(exposition.samples(named: "lockproof_retry_attempts_total").map(\.value).reduce(0, +), Double(threads * perThread))
        XCTAssertEqual(exposition.samples(named: "lockproof_lock_wait_seconds_count").map(\.value).reduce(0, +), Double(threads * perThread))
        let charges = ["case": "charge-balance", "strategy": "atomic"]
        XCTAssertEqual(exposition.value("lockproof_operations_total", charges.merging(["outcome": "success"]) { $1 }), Double(threads * perThread))
        XCTAssertEqual(exposition.value("lockproof_operation_duration_seconds_count", charges), Double(threads * perThread))
        XCTAssertEqual(exposition.value("lockproof_operation_duration_seconds_bucket", charges.merging(["le": "0.0025"]) { $1 }), Double(threads * perThread))
        XCTAssertEqual(exposition.value("lockproof_operation_duration_seconds_bucket", charges.merging(["le": "0.001"]) { $1 }), 0)
    }

    func testDisabledInstrumentationRecordsNothingButStillExportsTheCatalog() throws {
        let metrics = LockProofMetrics(instrumentationEnabled: false)
        XCTAssertTrue(metrics.eventSink is NoEventSink)
        metrics.populateEverySeries()
        let exposition = try Exposition(metrics.render())
        XCTAssertEqual(exposition.familyNames, Set(MetricCatalog.all.map(\.name)))
        XCTAssertEqual(exposition.samples(named: "lockproof_operations_total").map(\.value).reduce(0, +), 0)
        XCTAssertEqual(exposition.samples(named: "lockproof_compensations_total").map(\.value).reduce(0, +), 0)
    }
}
