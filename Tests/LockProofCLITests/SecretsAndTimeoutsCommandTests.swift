import Foundation
import LockProofHTTP
import LockProofPostgres
import LockProofRedis
import LockProofTestSupport
import XCTest

/// Issue 11, as an operator meets it: every form of password the servers' URLs may carry, through
/// every output of the `lockproof` binary (stdout, stderr and its log lines, report files,
/// /metrics, /healthz with the database up and down), and never printed; and a server that
/// accepts and never answers makes `run`, `verify` and `serve` exit 2 instead of hanging.
final class SecretsAndTimeoutsCommandTests: XCTestCase {
    private let secret = "Sec0Ret9Xq"
    /// The password and every piece of it that a wrong parser could print.
    private let secretPieces = ["Sec0Ret9Xq", "Sec0", "Ret9Xq", "ZZRet"]

    private let scenario = """
        name: secrets-pass
        case: charge-balance
        strategy: atomic
        seed: {users: 1}
        workload: {virtual_users: 2, iterations: 2}
        thresholds:
          throughput: ["count == 4"]
        """

    private func assertNoSecret(_ text: String, _ context: String, file: StaticString = #filePath, line: UInt = #line) {
        for piece in secretPieces where text.contains(piece) {
            XCTFail("\(context): '\(piece)' printed in: \(text.prefix(2000))", file: file, line: line)
        }
    }

    private func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lp-secrets-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// The test servers' own addresses, without any password.
    private var database: PostgresTarget { get throws { try PostgresTarget(conninfo: TestServers.configuration.databaseURL) } }

    /// Runs the binary with `environment` on top of the test servers' and returns status, stdout, stderr.
    private func lockproof(_ arguments: [String], environment: [String: String], timeoutSeconds: Double = 120) throws
        -> (status: Int32, out: String, err: String)
    {
        let result = try launch(
            try BuiltBinary.lockproof(), arguments, environment: TestServers.binaryEnvironment.merging(environment) { $1 },
            timeoutSeconds: timeoutSeconds)
        return (result.status, result.out, result.err)
    }

    /// Every output of `run` (stdout, stderr, every report file) for one environment.
    private func runOutputs(_ environment: [String: String], expectStatus: Int32, _ context: String) throws -> String {
        let folder = try temporaryFolder()
        let file = folder.appendingPathComponent("secrets.yaml")
        try scenario.write(to: file, atomically: true, encoding: .utf8)
        let reports = folder.appendingPathComponent("reports")
        let result = try lockproof(
            ["run", file.path, "--report-dir", reports.path, "--metrics-address", "127.0.0.1:0", "--connect-timeout", "2",
             "--metrics-first-scrape-wait", "0"],  // nothing scrapes here
            environment: environment)
        XCTAssertEqual(result.status, expectStatus, "\(context): \(result.err)")
        var everything = result.out + result.err
        for name in (try? FileManager.default.contentsOfDirectory(atPath: reports.path)) ?? [] {
            everything += try String(contentsOf: reports.appendingPathComponent(name), encoding: .utf8)
        }
        if expectStatus == 0 {
            XCTAssertTrue(FileManager.default.fileExists(atPath: reports.appendingPathComponent("junit.xml").path), context)
        }
        return everything
    }

    /// `serve`: its start-up line and logs, /metrics and /healthz, then (if given) /healthz after
    /// the database went away, and the logs of stopping.
    private func serveOutputs(_ environment: [String: String], cutDatabase: TCPForwarder? = nil, _ context: String) throws -> String {
        let process = Process()
        process.executableURL = try BuiltBinary.lockproof()
        process.arguments = ["serve", "--metrics-address", "127.0.0.1:0", "--pending-interval", "0.2", "--connect-timeout", "2"]
        process.environment = ProcessInfo.processInfo.environment.merging(TestServers.binaryEnvironment) { $1 }.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let lines = LineReader(out.fileHandleForReading)
        let errText = OutputCollector()
        try process.run()
        Thread { errText.set(err.fileHandleForReading.readDataToEndOfFile()) }.start()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        guard let line = lines.nextLine(containing: "metrics: http://", timeoutSeconds: 60),
            let portText = line.split(separator: ":").last?.split(separator: "/").first, let port = Int(portText)
        else {
            XCTFail("\(context): serve printed no address: \(errText.wait(timeoutSeconds: 10))")
            return ""
        }
        var everything = line
        let metrics = try BlockingHTTPClient.get(port: port, path: "/metrics")
        XCTAssertEqual(metrics.status, 200, context)
        everything += metrics.text
        let health = try BlockingHTTPClient.get(port: port, path: "/healthz")
        XCTAssertEqual(health.status, 200, "\(context): \(health.text)")
        everything += health.text
        if let cutDatabase {
            cutDatabase.cut()
            var unhealthy: HTTPClientResponse?
            let deadline = Date(timeIntervalSinceNow: 30)
            while Date() < deadline {
                let response = try BlockingHTTPClient.get(port: port, path: "/healthz")
                if response.status == 503 {
                    unhealthy = response
                    break
                }
                Thread.sleep(forTimeInterval: 0.1)
            }
            XCTAssertNotNil(unhealthy, "\(context): /healthz never reported the database down")
            everything += unhealthy?.text ?? ""
        }
        kill(process.processIdentifier, SIGTERM)
        everything += errText.wait(timeoutSeconds: 60)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, context)
        return everything
    }

    func testNoPasswordFormReachesAnyOutput() throws {
        let db = try database
        let host = try XCTUnwrap(db.host), port = try XCTUnwrap(db.port)
        let user = db.user ?? "lockproof", name = db.database ?? "lockproof"
        // The test PostgreSQL trusts loopback, so these connect whatever the password.
        let workingDatabaseForms: [(String, (Int) -> String)] = [
            ("URL ?password=", { "postgresql://\(user)@\(host):\($0)/\(name)?password=\(self.secret)" }),
            ("URL user:password@", { "postgresql://\(user):\(self.secret)@\(host):\($0)/\(name)" }),
            ("conninfo password = S", { "host=\(host) port=\($0) user=\(user) dbname=\(name) password = \(self.secret)" }),
            ("conninfo quoted", { "host=\(host) port=\($0) user=\(user) dbname=\(name) password='Sec0 Ret9Xq'" }),
        ]
        for (form, url) in workingDatabaseForms {
            let context = "PostgreSQL \(form)"
            assertNoSecret(try runOutputs(["LOCKPROOF_DATABASE_URL": url(Int(port)!)], expectStatus: 0, context), "run, \(context)")
            assertNoSecret(try runOutputs(["LOCKPROOF_DATABASE_URL": url(1)], expectStatus: 2, context + " (down)"), "run, \(context) down")
            let forwarder = try TCPForwarder(toLoopbackPort: Int(port)!)
            assertNoSecret(
                try serveOutputs(["LOCKPROOF_DATABASE_URL": url(forwarder.port)], cutDatabase: forwarder, context),
                "serve, \(context)")
            let down = try lockproof(["serve", "--metrics-address", "127.0.0.1:0"], environment: ["LOCKPROOF_DATABASE_URL": url(1)])
            XCTAssertEqual(down.status, 2, context)
            assertNoSecret(down.out + down.err, "serve, \(context) down")
        }

        // A password-protected Redis of this test's own, with an ACL user.
        let redis = try ThrowawayRedis(arguments: [
            "--user", "default", "on", ">Sec0/Ret9Xq", ">\(secret)", "~*", "&*", "+@all",
            "--user", "admin", "on", ">Sec0@Ret9Xq", "~*", "&*", "+@all",
        ])
        let workingRedisForms: [(String, (Int) -> String)] = [
            ("'/' in the password", { "redis://:Sec0/Ret9Xq@127.0.0.1:\($0)/0" }),
            ("?password=", { "redis://127.0.0.1:\($0)/0?password=\(self.secret)" }),
            ("ACL user", { "redis://admin:Sec0%40Ret9Xq@127.0.0.1:\($0)/0" }),
        ]
        for (form, url) in workingRedisForms {
            let context = "Redis \(form)"
            assertNoSecret(try runOutputs(["LOCKPROOF_REDIS_URL": url(redis.port)], expectStatus: 0, context), "run, \(context)")
            assertNoSecret(try runOutputs(["LOCKPROOF_REDIS_URL": url(1)], expectStatus: 2, context + " (down)"), "run, \(context) down")
            assertNoSecret(try serveOutputs(["LOCKPROOF_REDIS_URL": url(redis.port)], context), "serve, \(context)")
            let down = try lockproof(["serve", "--metrics-address", "127.0.0.1:0"], environment: ["LOCKPROOF_REDIS_URL": url(1)])
            XCTAssertEqual(down.status, 2, context)
            assertNoSecret(down.out + down.err, "serve, \(context) down")
        }

        // A lone userinfo is most likely a password written where the user goes (issue 15): never
        // printed, whether the (password-free) test Redis answers or nothing does.
        let lone = { (port: Int) in "redis://\(self.secret)@127.0.0.1:\(port)/0" }
        let testRedisPort = TestServers.configuration.redis.port
        assertNoSecret(try runOutputs(["LOCKPROOF_REDIS_URL": lone(testRedisPort)], expectStatus: 0, "lone"), "run, Redis lone userinfo")
        assertNoSecret(try runOutputs(["LOCKPROOF_REDIS_URL": lone(1)], expectStatus: 2, "lone down"), "run, Redis lone userinfo down")
        assertNoSecret(try serveOutputs(["LOCKPROOF_REDIS_URL": lone(testRedisPort)], "lone"), "serve, Redis lone userinfo")

        // Malformed: refused as bad input (exit 2), quoting nothing of the URL.
        let malformed = [
            ["LOCKPROOF_DATABASE_URL": "postgresql://\(user):Sec0@Ret9Xq@\(host):\(port)/\(name)"],
            ["LOCKPROOF_DATABASE_URL": "postgresql://\(user):Sec0%ZZRet9Xq@\(host):\(port)/\(name)"],
            ["LOCKPROOF_DATABASE_URL": "host=\(host) port=\(port) password='Sec0 Ret9Xq"],
            ["LOCKPROOF_REDIS_URL": ":\(secret)@127.0.0.1:\(redis.port)/0"],
            ["LOCKPROOF_REDIS_URL": "rediss://:\(secret)@127.0.0.1:\(redis.port)/0"],
            ["LOCKPROOF_REDIS_URL": "redis://:Sec0?Ret9Xq@127.0.0.1:\(redis.port)/0"],
        ]
        for environment in malformed {
            let context = "\(environment.keys.first!) malformed"
            assertNoSecret(try runOutputs(environment, expectStatus: 2, context), "run, \(context)")
            let verify = try lockproof(["verify", try temporaryFolder().path], environment: environment)
            XCTAssertEqual(verify.status, 2, context)
            assertNoSecret(verify.out + verify.err, "verify, \(context)")
            let serve = try lockproof(["serve", "--metrics-address", "127.0.0.1:0"], environment: environment)
            XCTAssertEqual(serve.status, 2, context)
            assertNoSecret(serve.out + serve.err, "serve, \(context)")
        }
    }

    /// Issue 15: `bench` puts no password on a child's command line, which every local user reads
    /// in /proc/PID/cmdline. With the PostgreSQL password in the URL twice (`user:password@` and
    /// `?password=`) and a Redis that requires one, every descendant's command line is read while
    /// the shortest bench runs: none holds any piece of it; pgbench has it in its environment
    /// (PGPASSWORD: the test cluster trusts loopback, so that is how the test sees pgbench got
    /// it); redis-benchmark logs in as a temporary ACL user, gone afterwards, and its rates are
    /// measured. The same run writes bench.json, .csv and .md over links planted at those names,
    /// never through them. (Old code: the URL with the password was pgbench's last argument,
    /// `-a PASSWORD` redis-benchmark's, and bench.json was written through its link.)
    func testBenchPutsNoPasswordOnAChildsCommandLine() throws {
        let db = try database
        let host = try XCTUnwrap(db.host), port = try XCTUnwrap(db.port)
        let databaseURL = "postgresql://\(db.user ?? "lockproof"):\(secret)@\(host):\(port)/\(db.database ?? "lockproof")?password=\(secret)"
        let redis = try ThrowawayRedis(arguments: ["--requirepass", secret])
        let folder = try temporaryFolder()
        let reports = folder.appendingPathComponent("reports")
        try FileManager.default.createDirectory(at: reports, withIntermediateDirectories: true)
        var targets: [String: Data] = [:]
        for name in ["bench.json", "bench.csv", "bench.md"] {
            let target = folder.appendingPathComponent("target-\(name)")
            targets[target.path] = Data("not LockProof's: \(name)\n".utf8)
            try targets[target.path]!.write(to: target)
            try FileManager.default.createSymbolicLink(atPath: reports.appendingPathComponent(name).path, withDestinationPath: target.path)
        }

        let process = Process()
        process.executableURL = try BuiltBinary.lockproof()
        process.arguments = [
            "bench", "--quick", "--cases", "issue-coupon", "--clients", "1", "--repetitions", "1", "--seconds", "1",
            "--report-dir", reports.path,
        ]
        var env = ProcessInfo.processInfo.environment
        env["LOCKPROOF_DATABASE_URL"] = databaseURL
        env["LOCKPROOF_REDIS_URL"] = "redis://:\(secret)@127.0.0.1:\(redis.port)/0"
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let outText = OutputCollector(), errText = OutputCollector()
        try process.run()
        Thread { outText.set(out.fileHandleForReading.readDataToEndOfFile()) }.start()
        Thread { errText.set(err.fileHandleForReading.readDataToEndOfFile()) }.start()
        let watcher = ChildCommandLines(of: process.processIdentifier)
        let deadline = Date(timeIntervalSinceNow: 300)
        while process.isRunning && Date() < deadline { watcher.look() }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            XCTFail("bench did not finish within 300 s")
        }
        process.waitUntilExit()
        let output = outText.wait(timeoutSeconds: 10) + errText.wait(timeoutSeconds: 10)
        // gnuplot (bench.html) may be missing here: exit 1 after bench.json/.csv/.md are written.
        XCTAssertTrue([0, 1].contains(process.terminationStatus), output)

        for (pid, line) in watcher.commandLines { assertNoSecret(line, "the command line of child \(pid)") }
        assertNoSecret(output, "bench's output")
        let programs = Set(watcher.commandLines.values.compactMap { $0.split(separator: " ").first.map { ($0 as NSString).lastPathComponent } })
        XCTAssertTrue(programs.isSuperset(of: ["pgbench", "redis-benchmark"]), "children seen: \(programs)")
        XCTAssertTrue(watcher.environments.contains { $0.contains("PGPASSWORD=\(secret)") }, "pgbench got the password in its environment")
        XCTAssertTrue(watcher.commandLines.values.contains { $0.contains("redis-benchmark") && $0.contains("--user lockproof-bench-") })
        let admin = try RedisConnection(endpoint: RedisEndpoint(host: "127.0.0.1", port: redis.port, password: secret))
        let users = try admin.checked(["ACL", "USERS"]).array?.compactMap(\.text) ?? []
        XCTAssertEqual(users, ["default"], "the temporary ACL user is deleted")

        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: reports.appendingPathComponent("bench.json"))) as? [String: Any])
        XCTAssertFalse((json["redis_lock_costs"] as? [Any] ?? []).isEmpty, "redis-benchmark measured: \(output.suffix(2000))")
        for (path, content) in targets {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), content, "\(path) was written through a link")
        }
        for name in ["bench.json", "bench.csv", "bench.md"] {
            let attributes = try FileManager.default.attributesOfItem(atPath: reports.appendingPathComponent(name).path)
            XCTAssertEqual(attributes[.type] as? FileAttributeType, .typeRegular, name)
            assertNoSecret(try String(contentsOf: reports.appendingPathComponent(name), encoding: .utf8), name)
        }
    }

    func testASilentServerMakesEveryCommandExitTwoInsteadOfHanging() throws {
        let listener = try SilentListener()
        let folder = try temporaryFolder()
        try scenario.write(to: folder.appendingPathComponent("silent.yaml"), atomically: true, encoding: .utf8)
        let file = folder.appendingPathComponent("silent.yaml").path
        let silentDatabase = ["LOCKPROOF_DATABASE_URL": "postgresql://lockproof@127.0.0.1:\(listener.port)/lockproof"]
        let silentRedis = ["LOCKPROOF_REDIS_URL": "redis://127.0.0.1:\(listener.port)/0"]
        for (what, environment) in [("PostgreSQL", silentDatabase), ("Redis", silentRedis)] {
            for arguments in [
                ["run", file, "--connect-timeout", "2"],
                ["verify", folder.path, "--connect-timeout", "2"],
                ["serve", "--metrics-address", "127.0.0.1:0", "--connect-timeout", "2"],
            ] {
                // Without a connect timeout this would wait forever: the bound is a hang guard.
                let result = try lockproof(arguments, environment: environment, timeoutSeconds: 60)
                XCTAssertEqual(result.status, 2, "\(what) \(arguments[0]): \(result.err)")
                XCTAssertTrue(result.err.contains("timeout"), "\(what) \(arguments[0]) names the timeout: \(result.err)")
            }
            // The environment sets the same bound.
            let result = try lockproof(
                ["run", file], environment: environment.merging(["LOCKPROOF_CONNECT_TIMEOUT": "2"]) { $1 }, timeoutSeconds: 60)
            XCTAssertEqual(result.status, 2, "\(what) with LOCKPROOF_CONNECT_TIMEOUT: \(result.err)")
        }
        let bad = try lockproof(["run", file], environment: ["LOCKPROOF_CONNECT_TIMEOUT": "soon"])
        XCTAssertEqual(bad.status, 2, bad.err)
        XCTAssertTrue(bad.err.contains("LOCKPROOF_CONNECT_TIMEOUT"), bad.err)
    }

    func testArgumentErrorsExitTwo() throws {
        for arguments in [["run"], ["run", "x.yaml", "--connect-timeout", "0"], ["bogus"], ["serve", "--pending-interval", "-1"], ["check", "--no-such-flag"]] {
            let result = try lockproof(arguments, environment: [:])
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.err)")
            XCTAssertTrue(result.err.contains("Usage") || result.err.contains("Error"), result.err)
        }
        XCTAssertEqual(try lockproof(["run", "--help"], environment: [:]).status, 0)
    }
}

/// The command lines (and environments) of every descendant of one process, read from /proc as
/// any local user could while they run.
final class ChildCommandLines {
    private let root: pid_t
    private(set) var commandLines: [pid_t: String] = [:]
    private(set) var environments: [String] = []

    init(of root: pid_t) { self.root = root }

    /// One look at the process table; call it in a loop while the root runs.
    func look() {
        var parents: [pid_t: pid_t] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(name), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let parent = pid_t(fields[1]) { parents[pid] = parent }
        }
        for pid in parents.keys where pid != root {
            var ancestor = parents[pid]
            var depth = 0
            while let current = ancestor, current != root, current > 1, depth < 64 {
                ancestor = parents[current]
                depth += 1
            }
            guard ancestor == root else { continue }
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !data.isEmpty else { continue }
            let line = String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            // Read again when the command line changes: before its exec a child is still a copy of its parent.
            if commandLines[pid] != line, let environment = FileManager.default.contents(atPath: "/proc/\(pid)/environ") {
                environments.append(String(decoding: environment.map { $0 == 0 ? 0x0A : $0 }, as: UTF8.self))
            }
            commandLines[pid] = line
        }
    }
}
