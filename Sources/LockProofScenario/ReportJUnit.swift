import Foundation

extension ReportWriter {
    /// JUnit XML: one test suite per scenario, one test case per check and threshold. Counts mean
    /// the same at both levels: `<testsuites tests failures errors>` are the sums of its suites'.
    /// A check's violations are in its test case (as the failure for a scenario that expects none,
    /// as system-out for a negative control that caught them); the run's key figures are
    /// properties of its suite.
    public static func junit(_ results: [ScenarioResult]) -> String {
        var suites: [String] = []
        var totals = (tests: 0, failures: 0, errors: 0, seconds: 0.0)
        for result in results {
            let report = ScenarioReport(result)
            var cases: [(name: String, failure: String?, output: String?)] = []
            // Checkers that could not judge the run (a target that maps none of their input): skipped, with the reason.
            var skipped: [(name: String, reason: String)] = []
            let expectViolation = result.scenario.expect == .violation
            for check in report.checks {
                if let reason = check.notChecked {
                    skipped.append(("check \(check.name)", reason))
                    continue
                }
                let text = check.violations.map { "\($0.name) ×\($0.count): \($0.firstExample)" }.joined(separator: "\n")
                // For a negative control, a violated check is the expected outcome: its text is output.
                let failed = !expectViolation && !check.passed
                cases.append(("check \(check.name)", failed ? text : nil, !failed && !text.isEmpty ? text : nil))
            }
            if expectViolation && report.error == nil {
                cases.append(("negative control caught", result.violationCaught ? nil : "no check caught a violation", nil))
            }
            // A control of the judging: its thresholds are meant to fail, and its fault to be an
            // error; one test case says whether the judging refused them, the rest is output.
            let judgingControl = result.scenario.expect.controlsTheJudging
            for threshold in report.thresholds where !expectViolation {
                let name = "threshold \(threshold.metric) \(threshold.expression)"
                cases.append(judgingControl ? (name, nil, threshold.message) : (name, threshold.passed ? nil : threshold.message, nil))
            }
            if judgingControl && report.error == nil {
                cases.append(("judging control (expect \(report.expect))", result.passed ? nil : verdict(result), report.expectedError))
            }
            if report.error == nil {
                cases.append(("operations performed", result.nothingTested ? nothingTestedMessage : nil, nil))
            }
            let failed = cases.filter { $0.failure != nil }.count
            // A broken run is an <error>, which JUnit readers count apart from failures.
            let runError = report.error
            let tests = cases.count + skipped.count + (runError == nil ? 0 : 1)
            let errors = runError == nil ? 0 : 1
            totals.tests += tests
            totals.failures += failed
            totals.errors += errors
            totals.seconds += report.durationSeconds
            var xml = [
                "  <testsuite name=\"\(escape(report.scenario))\" tests=\"\(tests)\" failures=\"\(failed)\" errors=\"\(errors)\" skipped=\"\(skipped.count)\" time=\"\(String(format: "%.3f", report.durationSeconds))\" timestamp=\"\(report.startedAt)\">"
            ]
            xml.append("    <properties>")
            for (name, value) in junitProperties(report) {
                xml.append("      <property name=\"\(escape(name))\" value=\"\(escape(value))\"/>")
            }
            xml.append("    </properties>")
            if let runError {
                xml.append("    <testcase classname=\"\(escape(report.scenario))\" name=\"run\">")
                xml.append("      <error message=\"\(escape(String(runError.prefix(200))))\">\(escape(runError))</error>")
                xml.append("    </testcase>")
            }
            for (name, failure, output) in cases {
                guard failure != nil || output != nil else {
                    xml.append("    <testcase classname=\"\(escape(report.scenario))\" name=\"\(escape(name))\"/>")
                    continue
                }
                xml.append("    <testcase classname=\"\(escape(report.scenario))\" name=\"\(escape(name))\">")
                if let failure {
                    xml.append("      <failure message=\"\(escape(String(failure.prefix(200))))\">\(escape(failure))</failure>")
                }
                if let output { xml.append("      <system-out>\(escape(output))</system-out>") }
                xml.append("    </testcase>")
            }
            for (name, reason) in skipped {
                xml.append("    <testcase classname=\"\(escape(report.scenario))\" name=\"\(escape(name))\">")
                xml.append("      <skipped message=\"\(escape("not checked: \(reason)"))\"/>")
                xml.append("    </testcase>")
            }
            xml.append("  </testsuite>")
            suites.append(xml.joined(separator: "\n"))
        }
        let header = "<testsuites name=\"lockproof\" tests=\"\(totals.tests)\" failures=\"\(totals.failures)\" errors=\"\(totals.errors)\" time=\"\(String(format: "%.3f", totals.seconds))\">"
        return (["<?xml version=\"1.0\" encoding=\"UTF-8\"?>", header] + suites + ["</testsuites>"]).joined(separator: "\n") + "\n"
    }

    /// A scenario's key figures, as JUnit properties (names as in NAME.json).
    static func junitProperties(_ report: ScenarioReport) -> [(String, String)] {
        var properties: [(String, String)] = [
            ("status", report.status), ("expect", report.expect), ("case", report.case), ("strategy", report.strategy),
            ("virtual_users", String(report.virtualUsers)), ("violation_caught", String(report.violationCaught)),
            ("operations_ok", String(report.operations.ok)), ("operations_fail", String(report.operations.fail)),
            ("operations_unknown", String(report.operations.unknown)),
            ("throughput_per_second", String(format: "%.3f", report.throughputPerSecond)),
        ]
        let latency = report.latencySeconds
        for (name, value) in [("latency_p50_seconds", latency.p50), ("latency_p99_seconds", latency.p99)] {
            if let value { properties.append((name, String(format: "%.6f", value))) }
        }
        if let target = report.target { properties.append(("target", target)) }
        properties.append(("tool_version", report.toolVersion))
        return properties
    }

    /// Escapes text for HTML and XML (report.html, junit.xml, bench.html).
    public static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
