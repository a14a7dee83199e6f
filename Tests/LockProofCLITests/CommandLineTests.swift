// Kept whole (over 400 lines): one class of the binary's exit codes and messages, sharing its launch, folder and scenario-file fixtures.
import Foundation
import LockProofCommerce
import LockProofHTTP
import LockProofRedis
import LockProofTestSupport
import XCTest

/// The `lockproof` binary's exit codes and messages, run as a user would.
final class CommandLineTests: XCTestCase {
    private var binary: URL { get throws { try BuiltBinary.lockproof() } }

    func lockproof(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
        let result = try launch(try binary, arguments, environment: TestServers.binaryEnvironment.merging(environment) { $1 })
        return (result.status, result.out, result.err)
    }

    func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lp-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    func write(_ text: String, _ name: String, in folder: URL) throws -> String {
        let url = folder.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    let passing = """
        name: cli-pass
        case: charge-balance
        strategy: atomic
        seed: {users: 1}
        workload: {virtual_users: 2, iterations: 2}
        thresholds:
          throughput: ["count == 4"]
        """

    func testRecoverSettlesAnInterruptedPaymentOnceAndThenFindsNothing() throws {
        try TestServers.reset()
        let db = try TestServers.database()
        let data = SeedData(db: db)
        let user = try data.users(count: 1, balance: 5_000)[0]
        let product = try data.products(count: 1, price: 1_000, stock: 3)[0]
        let order = try XCTUnwrap(
            db.query("INSERT INTO orders (user_id, status, total_amount) VALUES ($1, 'PENDING', 1000) RETURNING id", [user]).int(0, 0))
        try db.query("INSERT INTO order_items (order_id, product_id, quantity, unit_price) VALUES ($1, $2, 1, 1000)", [order, product])
        let client = try TestServers.client(
            gateway: SimulatedPaymentGateway(
                failureRate: 0, seed: 1, records: DatabaseGatewayRecords(databaseURL: TestServers.configuration.databaseURL)))
        client.faults.afterDeduction = { _ in throw ClientCrashed(point: "in a test") }
        XCTAssertThrowsError(try ProcessPayment(client: client).pay(orderId: order))
        XCTAssertEqual(try db.query("SELECT balance FROM users WHERE id = $1", [user]).int(0, 0), 4_000)

        let first = try lockproof(["recover", "--json"])
        XCTAssertEqual(first.status, 0, first.err)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(first.out.utf8)) as? [String: Any])
        XCTAssertEqual(report["interrupted"] as? Int, 1)
        XCTAssertEqual(report["compensated"] as? Int, 1)
        XCTAssertEqual(report["still_open"] as? Int, 0)
        XCTAssertEqual(try db.query("SELECT balance FROM users WHERE id = $1", [user]).int(0, 0), 5_000)
        let second = try lockproof(["recover"])
        XCTAssertEqual(second.status, 0, second.err)
        XCTAssertTrue(second.out.contains("interrupted payments: 0"), second.out)
        XCTAssertEqual(try db.query("SELECT balance FROM users WHERE id = $1", [user]).int(0, 0), 5_000, "re-running changes nothing")
    }

    private let redisDown = """
        name: cli-redis-down
        case: charge-balance
        seed: {users: 1}
        workload: {virtual_users: 1, duration: 2s}
        faults:
          - {kind: redis-down, start: 500ms, duration: 500ms}
        """

    func testServerFaultsAgainstServersNotStartedHereAreRefusedBeforeAnythingRuns() throws {
        let folder = try temporaryFolder()
        let path = try write(redisDown, "down.yaml", in: folder)
        let reports = folder.appendingPathComponent("reports")
        let result = try lockproof(
            ["run", path, "--report-dir", reports.path],
            environment: ["LOCKPROOF_MANAGED_REDIS_PORT": "", "LOCKPROOF_MANAGED_REDIS_CONF": "", "LOCKPROOF_MANAGED_PG_PORT": ""])
        XCTAssertEqual(result.status, 2, result.err)
        XCTAssertTrue(result.err.contains("down.yaml") && result.err.contains("strikes only servers it started itself"), result.err)
        try assertRefusalReported(in: reports, runs: ["cli-redis-down"], reason: "strikes only servers it started itself")
    }

    /// Issue 15, through the binary: LOCKPROOF_MANAGED_REDIS_PIDFILE names an unrelated `sleep`.
    /// The redis-down scenario is refused before it runs (exit 2, reported as an error in its JSON
    /// and junit.xml, naming the pid file and what the pid runs); the sleep lives on and no
    /// redis-server is started from the config. (Old code: killed the sleep, started a second
    /// redis-server from the config and reported "stopped; started again", exit 0.)
    func testAPidFileNamingAnUnrelatedProcessIsNeverSignalled() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let port = environment["LOCKPROOF_MANAGED_REDIS_PORT"], !port.isEmpty else {
            throw XCTSkip("needs the throwaway servers of make test (LOCKPROOF_MANAGED_*)")
        }
        let folder = try temporaryFolder()
        let sleep = Process()
        sleep.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleep.arguments = ["300"]
        try sleep.run()
        defer { sleep.terminate() }
        let pidFile = try write("\(sleep.processIdentifier)\n", "redis.pid", in: folder)
        let log = folder.appendingPathComponent("redis.log").path
        let config = try write(
            "port \(port)\nbind 127.0.0.1\ndaemonize yes\npidfile \(pidFile)\nlogfile \(log)\nsave \"\"\n", "redis.conf", in: folder)
        let path = try write(redisDown, "down.yaml", in: folder)
        let reports = folder.appendingPathComponent("reports")
        let result = try lockproof(
            ["run", path, "--report-dir", reports.path, "--quiet"],
            environment: ["LOCKPROOF_MANAGED_REDIS_PIDFILE": pidFile, "LOCKPROOF_MANAGED_REDIS_CONF": config])
        XCTAssertEqual(result.status, 2, result.out + result.err)
        let reason = "\(pidFile) names pid \(sleep.processIdentifier), which is not a redis-server"
        XCTAssertTrue(result.err.contains(reason), result.err)
        try assertRefusalReported(in: reports, runs: ["cli-redis-down"], reason: reason)
        XCTAssertTrue(sleep.isRunning, "the sleep was signalled")
        XCTAssertFalse(FileManager.default.fileExists(atPath: log), "a redis-server was started from the config")
        XCTAssertEqual(try TestServers.redis().checked(["PING"]).text, "PONG")
    }

    /// A run refused before anything ran is in the report folder all the same: every run's JSON
    /// has status error with the reason, junit.xml has an <error> for each (issue 15).
    private func assertRefusalReported(
        in reports: URL, runs: [String], reason: String, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let junit = try String(contentsOf: reports.appendingPathComponent("junit.xml"), encoding: .utf8)
        XCTAssertTrue(junit.contains("tests=\"\(runs.count)\" failures=\"0\" errors=\"\(runs.count)\""), junit, file: file, line: line)
        for name in runs {
            let json = try XCTUnwrap(
                JSONSerialization.jsonObject(with: Data(contentsOf: reports.appendingPathComponent("\(name).json"))) as? [String: Any],
                file: file, line: line)
            XCTAssertEqual(json["status"] as? String, "error", name, file: file, line: line)
            let error = json["error"] as? String ?? ""
            XCTAssertTrue(error.hasPrefix("not run: refused before anything ran: ") && error.contains(reason), error, file: file, line: line)
            XCTAssertTrue(junit.contains("<testsuite name=\"\(name)\"") && junit.contains("refused before anything ran"), junit, file: file, line: line)
            XCTAssertFalse(FileManager.default.fileExists(atPath: reports.appendingPathComponent("\(name).history.jsonl").path), "it never ran")
        }
    }

    func testCheckReportsFileLineColumnAndExits2() throws {
        let folder = try temporaryFolder()
        let bad = try write(passing.replacingOccurrences(of: "count == 4", with: "count = 4"), "bad.yaml", in: folder)
        let result = try lockproof(["check", bad])
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.err.contains("\(bad):7:16: error:"), result.err)
        XCTAssertEqual(try lockproof(["check", try write(passing, "good.yaml", in: folder)]).status, 0)
    }

    /// The examples the docs point at must pass `check` as they are (a bare-number latency limit
    /// left in one after units became required made it exit 2).
    func testEveryDocumentedExamplePassesCheck() throws {
        let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/examples").standardized
        let files = try FileManager.default.contentsOfDirectory(atPath: examples.path).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertFalse(files.isEmpty, "no example in \(examples.path)")
        for file in files {
            let result = try lockproof(["check", examples.appendingPathComponent(file).path])
            XCTAssertEqual(result.status, 0, "\(file): \(result.err)")
        }
    }

    func testBadInputRunsNothingAndWritesNothing() throws {
        let folder = try temporaryFolder()
        let bad = try write(passing.replacingOccurrences(of: "throughput", with: "throughputt"), "bad.yaml", in: folder)
        let reports = folder.appendingPathComponent("reports")
        let result = try lockproof(["run", bad, "--report-dir", reports.path, "--quiet"])
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.err.contains("did you mean 'throughput'"), result.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: reports.path), "nothing written on bad input")
    }

    /// 1,000 clients with a session each cannot fit a server allowing 400: refused with the numbers
    /// before anything runs, and reported so (old code: no JSON, no junit.xml); the same rush
    /// through a pool of 20 fits.
    func testARunThatCannotFitTheServersConnectionsExits2WithTheNumbers() throws {
        let folder = try temporaryFolder()
        let rush = passing.replacingOccurrences(of: "virtual_users: 2, iterations: 2", with: "virtual_users: 1000, iterations: 1")
            .replacingOccurrences(of: "count == 4", with: "count == 1000")
        let reports = folder.appendingPathComponent("reports")
        let result = try lockproof(["run", try write(rush, "rush.yaml", in: folder), "--report-dir", reports.path, "--quiet"])
        XCTAssertEqual(result.status, 2, result.err)
        XCTAssertTrue(result.err.contains("needs 1001 PostgreSQL sessions (1000 virtual users with a session each"), result.err)
        XCTAssertTrue(result.err.contains("max_connections"), result.err)
        try assertRefusalReported(in: reports, runs: ["cli-pass"], reason: "needs 1001 PostgreSQL sessions")
        let pooled = rush.replacingOccurrences(of: "iterations: 1}", with: "iterations: 1, connections: 20}")
        let ran = try lockproof(["run", try write(pooled, "pooled.yaml", in: folder), "--quiet"])
        XCTAssertEqual(ran.status, 0, ran.out + ran.err)
        XCTAssertTrue(ran.out.contains("pool wait (postgres): 1000 borrows"), ran.out)
    }

    /// Issue 15: in an existing report folder, every report name is a link to a file outside it
    /// (as a hostile user of a shared /tmp would plant them). The run replaces each link with its
    /// report and leaves every target byte for byte as it was. (Old code: junit.xml and
    /// cli-pass.json were written through their links, overwriting the targets.) A report folder
    /// that is itself a link is refused, naming it, and nothing is written through it.
    func testReportsReplaceLinksAtTheirNamesAndNeverWriteThroughThem() throws {
        let folder = try temporaryFolder()
        let reports = folder.appendingPathComponent("reports")
        let outside = folder.appendingPathComponent("outside")
        try FileManager.default.createDirectory(at: reports, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        let names = ["junit.xml", "cli-pass.json", "cli-pass.history.jsonl", "report.html"]
        var targets: [String: Data] = [:]
        for name in names {
            let target = outside.appendingPathComponent("target-\(name)")
            let content = Data("not LockProof's: \(name)\n".utf8)
            try content.write(to: target)
            targets[target.path] = content
            try FileManager.default.createSymbolicLink(atPath: reports.appendingPathComponent(name).path, withDestinationPath: target.path)
        }
        let result = try lockproof(["run", try write(passing, "p.yaml", in: folder), "--report-dir", reports.path, "--quiet"])
        XCTAssertEqual(result.status, 0, result.out + result.err)
        for (path, content) in targets {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), content, "\(path) was written through a link")
        }
        for name in names {
            let attributes = try FileManager.default.attributesOfItem(atPath: reports.appendingPathComponent(name).path)
            XCTAssertEqual(attributes[.type] as? FileAttributeType, .typeRegular, "\(name) is still a link")
            XCTAssertGreaterThan((attributes[.size] as? NSNumber)?.intValue ?? 0, 40, name)
        }
        XCTAssertTrue(try String(contentsOf: reports.appendingPathComponent("junit.xml"), encoding: .utf8).contains("errors=\"0\""))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: reports.path).sorted(), names.sorted(), "no temporary file left")

        let linkedFolder = folder.appendingPathComponent("linked-reports")
        try FileManager.default.createSymbolicLink(atPath: linkedFolder.path, withDestinationPath: outside.path)
        let refused = try lockproof(["run", try write(passing, "p.yaml", in: folder), "--report-dir", linkedFolder.path, "--quiet"])
        XCTAssertEqual(refused.status, 2, refused.err)
        XCTAssertTrue(refused.err.contains("--report-dir \(linkedFolder.path) is a symbolic link (to \(outside.path))"), refused.err)
        let slash = try lockproof(["run", try write(passing, "p.yaml", in: folder), "--report-dir", linkedFolder.path + "/", "--quiet"])
        XCTAssertEqual(slash.status, 2, "a trailing slash does not hide the link: \(slash.err)")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outside.path).count, names.count, "nothing written through it")
    }

    func testUnreachableServerExits2WithoutPrintingThePassword() throws {
        let folder = try temporaryFolder()
        let file = try write(passing, "p.yaml", in: folder)
        let reports = folder.appendingPathComponent("reports")
        let result = try lockproof(
            ["run", file, "--report-dir", reports.path, "--quiet"],
            environment: ["LOCKPROOF_DATABASE_URL": "postgresql://who:hunter2@127.0.0.1:1/x?connect_timeout=2"])
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.err.contains("PostgreSQL is unreachable"), result.err)
        XCTAssertFalse(result.err.contains("hunter2") || result.out.contains("hunter2"))
        try assertRefusalReported(in: reports, runs: ["cli-pass"], reason: "PostgreSQL is unreachable")
        for name in try FileManager.default.contentsOfDirectory(atPath: reports.path) {
            XCTAssertFalse(try String(contentsOf: reports.appendingPathComponent(name), encoding: .utf8).contains("hunter2"), name)
        }
    }

    func testPassingAndFailingRunsExit0And1() throws {
        let folder = try temporaryFolder()
        let reports = folder.appendingPathComponent("reports")
        let good = try lockproof(["run", try write(passing, "p.yaml", in: folder), "--report-dir", reports.path, "--quiet"])
        XCTAssertEqual(good.status, 0, good.out + good.err)
        XCTAssertTrue(good.out.contains("1 passed, 0 failed"), good.out)
        XCTAssertTrue(FileManager.default.fileExists(atPath: reports.appendingPathComponent("cli-pass.json").path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: reports.appendingPathComponent("junit.xml").path))

        let failing = passing.replacingOccurrences(of: "cli-pass", with: "cli-fail").replacingOccurrences(of: "count == 4", with: "count == 5")
        let bad = try lockproof(["run", try write(failing, "f.yaml", in: folder), "--quiet"])
        XCTAssertEqual(bad.status, 1, bad.out + bad.err)
        XCTAssertTrue(bad.out.contains("FAIL"), bad.out)
    }

    /// A run is seen whole: it waits for a scrape before its first operation (every series at 0),
    /// serves its counts while it runs, and stays after its last operation until a scrape has read
    /// the final values. On the old code the first scrape already saw operations (or none at all)
    /// and the process exited right after its last operation, before any scrape of the final values.
    func testRunIsScrapedBeforeItsFirstAndAfterItsLastOperation() throws {
        let folder = try temporaryFolder()
        let long = passing.replacingOccurrences(of: "iterations: 2", with: "duration: 3s")
            .replacingOccurrences(of: "thresholds:\n  throughput: [\"count == 4\"]", with: "")
        let process = Process()
        process.executableURL = try binary
        process.arguments = ["run", try write(long, "m.yaml", in: folder), "--metrics-address", "127.0.0.1:0", "--quiet"]
        process.environment = ProcessInfo.processInfo.environment.merging(TestServers.binaryEnvironment) { $1 }
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        // The first line on stderr names the endpoint, before the run starts.
        var announced = ""
        while !announced.contains("\n") {
            let chunk = err.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            announced += String(decoding: chunk, as: UTF8.self)
        }
        let port = try XCTUnwrap(
            announced.split(separator: "\n").first { $0.hasPrefix("metrics: http://127.0.0.1:") }
                .flatMap { Int($0.split(separator: ":").last!.split(separator: "/").first!) }, announced)
        func successes() throws -> Double? {
            guard let scrape = try? BlockingHTTPClient.get(host: "127.0.0.1", port: port, path: "/metrics") else { return nil }
            XCTAssertEqual(scrape.status, 200)
            let line = scrape.text.split(separator: "\n").first {
                $0.hasPrefix("lockproof_operations_total{case=\"charge-balance\",strategy=\"atomic\",outcome=\"success\"}")
            }
            return try XCTUnwrap(line.flatMap { Double($0.split(separator: " ").last!) }, scrape.text)
        }
        XCTAssertEqual(try successes(), 0, "the run waits for a first scrape, which sees every series at 0")
        // Scrape every 0.25 s until the process is gone (bounded): the last answer is the final count.
        var values: [Double] = []
        let deadline = Date(timeIntervalSinceNow: 60)
        while process.isRunning && Date() < deadline {
            if let value = try successes() { values.append(value) }
            Thread.sleep(forTimeInterval: 0.25)
        }
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        let log = announced + String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(log.contains("metrics: before the first operation: scraped after"), log)
        XCTAssertTrue(log.contains("metrics: after the last operation: scraped after"), log)
        let last = try XCTUnwrap(values.last)
        XCTAssertTrue(values.contains { $0 > 0 && $0 < last }, "operations are visible mid-run: \(values)")
        XCTAssertEqual(values, values.sorted(), "a counter")
        XCTAssertGreaterThan(last, 0)
    }

    /// Nothing scrapes: the bounded wait says so and the run goes on (it does not hang).
    func testRunWithoutScraperSaysTheFirstScrapeDidNotCome() throws {
        let folder = try temporaryFolder()
        let result = try lockproof(
            ["run", try write(passing, "n.yaml", in: folder), "--metrics-address", "127.0.0.1:0", "--quiet",
             "--metrics-first-scrape-wait", "0.5"])
        XCTAssertEqual(result.status, 0, result.err)
        XCTAssertTrue(result.err.contains("metrics: before the first operation: not scraped within 0.5 s"), result.err)
    }

    func testFailFastStopsAtTheFirstFailingScenario() throws {
        let folder = try temporaryFolder()
        let failing = passing.replacingOccurrences(of: "cli-pass", with: "a-fail").replacingOccurrences(of: "count == 4", with: "count == 5")
        _ = try write(failing, "a-fail.yaml", in: folder)
        _ = try write(passing.replacingOccurrences(of: "cli-pass", with: "b-pass"), "b-pass.yaml", in: folder)
        let stopped = try lockproof(["verify", folder.path, "--fail-fast", "--quiet"])
        XCTAssertEqual(stopped.status, 1, stopped.out + stopped.err)
        XCTAssertTrue(stopped.err.contains("stopped after a-fail failed; not run: b-pass"), stopped.err)
        XCTAssertFalse(stopped.out.contains("scenario: b-pass"), stopped.out)

        let all = try lockproof(["verify", folder.path, "--quiet"])
        XCTAssertEqual(all.status, 1)
        XCTAssertTrue(all.out.contains("scenario: b-pass"), "without --fail-fast every scenario runs: \(all.out)")
    }

    func testAnAbortedScenarioIsAnErrorInTheTableJSONAndJUnit() throws {
        let folder = try temporaryFolder()
        let reports = folder.appendingPathComponent("reports")
        // The first one hangs (it cannot finish its operations within its timeout); the second
        // then cannot run beside its clients: both are errors, neither vanishes.
        let hang = passing.replacingOccurrences(of: "cli-pass", with: "cli-hang")
            .replacingOccurrences(of: "iterations: 2}", with: "iterations: 100000, think_ms: 5, timeout: 300ms}")
        let result = try lockproof([
            "run", try write(hang, "a.yaml", in: folder), try write(passing, "b.yaml", in: folder), "--report-dir", reports.path, "--quiet",
        ])
        XCTAssertEqual(result.status, 1, result.out + result.err)
        XCTAssertTrue(result.out.contains("0 passed, 0 failed, 2 errors"), result.out)
        XCTAssertTrue(result.out.contains("error: cli-hang: the run did not finish within"), result.out)
        XCTAssertTrue(result.out.contains("error: cli-pass: not run: cli-hang left clients running"), result.out)
        let junit = try String(contentsOf: reports.appendingPathComponent("junit.xml"), encoding: .utf8)
        XCTAssertTrue(junit.contains("tests=\"2\" failures=\"0\" errors=\"2\""), junit)
        for name in ["cli-hang", "cli-pass"] {
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: reports.appendingPathComponent("\(name).json"))) as! [String: Any]
            XCTAssertEqual(json["status"] as? String, "error", name)
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: reports.appendingPathComponent("cli-hang.history.jsonl").path))
    }

    func testSIGINTStopsTheRunReportsItInterruptedAndFlushesRedirectedOutput() throws {
        let folder = try temporaryFolder()
        let reports = folder.appendingPathComponent("reports")
        let first = passing.replacingOccurrences(of: "cli-pass", with: "cli-first")
        let long = passing.replacingOccurrences(of: "cli-pass", with: "cli-long")
            .replacingOccurrences(of: "iterations: 2}", with: "duration: 120s, think_ms: 1}")
            .replacingOccurrences(of: "thresholds:\n  throughput: [\"count == 4\"]", with: "")
        let output = folder.appendingPathComponent("out.txt")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let process = Process()
        process.executableURL = try binary
        process.arguments = [
            "run", try write(first, "a.yaml", in: folder), try write(long, "b.yaml", in: folder), try write(passing, "c.yaml", in: folder),
            "--report-dir", reports.path, "--quiet",
        ]
        process.environment = ProcessInfo.processInfo.environment.merging(TestServers.binaryEnvironment) { $1 }
        // Standard output to a file, as in CI: block-buffered, lost if the process just died.
        process.standardOutput = try FileHandle(forWritingTo: output)
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        // Wait until the long scenario is running: its history file appears.
        let history = reports.appendingPathComponent("cli-long.history.jsonl")
        let appeared = Date()
        while !FileManager.default.fileExists(atPath: history.path) && Date().timeIntervalSince(appeared) < 60 {
            Thread.sleep(forTimeInterval: 0.1)
        }
        Thread.sleep(forTimeInterval: 1)
        let signalled = Date()
        process.interrupt()
        while process.isRunning && Date().timeIntervalSince(signalled) < 20 { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertFalse(process.isRunning, "lockproof did not stop within 20 s of SIGINT")
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 130, "128 + SIGINT")
        let out = try String(contentsOf: output, encoding: .utf8)
        XCTAssertTrue(out.contains("scenario: cli-first"), "what was printed before the signal reaches the file: \(out)")
        XCTAssertTrue(out.contains("verdict: ERROR (interrupted by SIGINT after"), out)
        XCTAssertTrue(out.contains("1 passed, 0 failed, 2 errors; interrupted by SIGINT"), out)
        XCTAssertTrue(out.contains("error: cli-pass: not run: the run was interrupted by SIGINT"), out)
        let junit = try String(contentsOf: reports.appendingPathComponent("junit.xml"), encoding: .utf8)
        XCTAssertTrue(junit.contains("errors=\"2\""), junit)
        XCTAssertTrue(junit.contains("<error message=\"interrupted by SIGINT"), junit)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: reports.appendingPathComponent("cli-long.json"))) as! [String: Any]
        XCTAssertEqual(json["interrupted"] as? Bool, true)
    }

    func testReportFileNamesAreCheckedBeforeAnythingRuns() throws {
        let folder = try temporaryFolder()
        let reports = folder.appendingPathComponent("reports")
        let long = passing.replacingOccurrences(of: "cli-pass", with: String(repeating: "n", count: 250))
        let result = try lockproof(["run", try write(long, "long.yaml", in: folder), "--report-dir", reports.path, "--quiet"])
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.err.contains("long.yaml:1:1: error: name 'nnn"), result.err)
        XCTAssertTrue(result.err.contains("at most 255 fit"), result.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: reports.path), "nothing written")
        // A sweep's runs and a scenario named like one of them do not share files.
        let sweep = passing.replacingOccurrences(of: "cli-pass", with: "x").replacingOccurrences(of: "virtual_users: 2", with: "virtual_users: [1, 2]")
            .replacingOccurrences(of: "count == 4", with: "count > 0")
        let twin = passing.replacingOccurrences(of: "cli-pass", with: "x-vu1").replacingOccurrences(of: "count == 4", with: "count > 0")
        let both = try lockproof(["run", try write(sweep, "x.yaml", in: folder), try write(twin, "t.yaml", in: folder), "--report-dir", reports.path, "--quiet"])
        XCTAssertEqual(both.status, 0, both.out + both.err)
        for name in ["x@vu1", "x@vu2", "x-vu1"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: reports.appendingPathComponent("\(name).json").path), name)
            XCTAssertTrue(FileManager.default.fileExists(atPath: reports.appendingPathComponent("\(name).history.jsonl").path), name)
        }
    }

    func testVerifyOfAnEmptyFolderIsBadInput() throws {
        let result = try lockproof(["verify", try temporaryFolder().path])
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.err.contains("no scenario files"), result.err)
    }

    /// Every command's --help, each with an example (old code: none had one).
    func testEveryCommandHasHelp() throws {
        let commands = [[], ["run"], ["verify"], ["check"], ["serve"], ["bench"], ["bench-metrics"], ["recover"], ["compare"]]
        for command in commands {
            let result = try lockproof(command + ["--help"])
            XCTAssertEqual(result.status, 0, "\(command)")
            XCTAssertTrue(result.out.contains("USAGE"), "\(command): \(result.out)")
            XCTAssertTrue(result.out.contains("Example") && result.out.contains(":\n  lockproof \(command.first ?? "")"), "\(command): \(result.out)")
        }
    }
}
