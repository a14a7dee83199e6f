import ArgumentParser
import Foundation
import LockProofScenario

/// A run refused after its input was read but before any scenario ran (a server unreachable, more
/// connections than the server has left, faults the servers cannot take): exit status 2 as for
/// every refusal, and with --report-dir every run is reported as an error that did not run
/// (NAME.json with status error, an <error> in junit.xml, report.html), so that a CI job reading
/// JUnit sees the reason rather than no result.
func refusal(_ message: String, runs: [Scenario], reportURL: URL?) -> ExitCode {
    let exit = startupFailure(message)
    guard let reportURL else { return exit }
    let results = runs.map { ScenarioResult.error($0, "not run: refused before anything ran: \(message)") }
    do {
        try FileManager.default.createDirectory(at: reportURL, withIntermediateDirectories: true)
        for result in results { try ReportWriter.write(result, to: reportURL) }
        try writeRunReports(results, to: reportURL)
    } catch {
        FileHandle.standardError.write(Data("lockproof: error: the refusal could not be reported in \(reportURL.path): \(error)\n".utf8))
    }
    return exit
}

/// junit.xml and report.html for `results`, after every NAME.json.
func writeRunReports(_ results: [ScenarioResult], to reportURL: URL) throws {
    try ReportFile.write(ReportWriter.junit(results), named: "junit.xml", in: reportURL)
    // report.html: verdicts plus a timeline around every caught violation's first example.
    try RunReportHTML.write(results, to: reportURL)
}
