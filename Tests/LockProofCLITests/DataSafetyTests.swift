// Kept whole (over 400 lines): one class whose tests share the throwaway databases and the fixtures that shape them.
import Foundation
import LockProofCommerce
import LockProofPostgres
import LockProofScenario
import LockProofTestSupport
import XCTest

/// LockProof writes only a database it owns, and one run at a time: the built binary against
/// throwaway databases (unique names, dropped afterwards) built the way a user's would be.
final class DataSafetyTests: XCTestCase {
    /// What one launch of the binary did.
    struct Launch: Sendable {
        let status: Int32
        let out: String
        let err: String
        let pid: Int32
        let timedOut: Bool
    }

    private var binary: URL {
        get throws {
            // LOCKPROOF_SAFETY_TEST_BINARY runs these tests against another build (an older one, to
            // see what it did).
            if let other = ProcessInfo.processInfo.environment["LOCKPROOF_SAFETY_TEST_BINARY"], !other.isEmpty {
                return URL(fileURLWithPath: other)
            }
            return try BuiltBinary.lockproof()
        }
    }

    private func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lp-safety-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// A process not started yet, its output going to files (no pipe can fill and block it).
    private static func process(_ arguments: [String], databaseURL: String, in folder: URL, binary: URL) -> (Process, URL, URL) {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(TestServers.binaryEnvironment) { $1 }
            .merging(["LOCKPROOF_DATABASE_URL": databaseURL]) { $1 }
        let name = UUID().uuidString
        let out = folder.appendingPathComponent("\(name).out"), err = folder.appendingPathComponent("\(name).err")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        process.standardOutput = try? FileHandle(forWritingTo: out)
        process.standardError = try? FileHandle(forWritingTo: err)
        return (process, out, err)
    }

    /// Waits for a started process, stopping it after `timeout` seconds (a hang, or a serve that
    /// started when it should have been refused).
    private static func finish(_ process: Process, out: URL, err: URL, timeout: Double) -> Launch {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        let timedOut = process.isRunning
        if timedOut {
            process.terminate()
            let killAt = Date().addingTimeInterval(10)
            while process.isRunning && Date() < killAt { Thread.sleep(forTimeInterval: 0.05) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        let read = { (url: URL) in (try? String(contentsOf: url, encoding: .utf8)) ?? "" }
        return Launch(
            status: process.terminationStatus, out: read(out), err: read(err), pid: process.processIdentifier, timedOut: timedOut)
    }

    private func lockproof(_ arguments: [String], databaseURL: String, timeout: Double = 120) throws -> Launch {
        let (process, out, err) = Self.process(arguments, databaseURL: databaseURL, in: try folder(), binary: try binary)
        try process.run()
        return Self.finish(process, out: out, err: err, timeout: timeout)
    }

    // MARK: Throwaway databases

    /// A new empty database on the test server, dropped after the test; returns its URL.
    private func makeDatabase(_ label: String) throws -> String {
        let name = "lp_safety_\(UUID().uuidString.prefix(8).lowercased())_\(label)"
        let admin = try TestServers.database()
        try admin.execute(try XCTUnwrap(admin.query("SELECT format('CREATE DATABASE %I', $1::text)", [name]).string(0, 0)))
        addTeardownBlock {
            let admin = try TestServers.database()
            try admin.execute(try XCTUnwrap(admin.query("SELECT format('DROP DATABASE %I WITH (FORCE)', $1::text)", [name]).string(0, 0)))
        }
        return try TestServers.withDatabase(TestServers.configuration.databaseURL, name)
    }

    /// Every row of every table (a checksum of each table's rows in order, and its count), every
    /// column, constraint and sequence value: what must not change when LockProof refuses.
    private func snapshot(_ url: String) throws -> [String] {
        let db = try PostgresConnection(url)
        var lines: [String] = []
        let tables = try db.query(
            """
            SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
            WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1
            """)
        for row in 0..<tables.rowCount {
            let table = try XCTUnwrap(tables.string(row, 0))
            let content = try db.execute(
                "SELECT count(*), coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM \(table) t")
            lines.append("table \(table): \(content.string(0, 0) ?? "?") rows, md5 \(content.string(0, 1) ?? "?")")
        }
        let structure = try db.query(
            """
            SELECT format('column %s.%s %s', table_name, column_name, data_type) FROM information_schema.columns
            WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
            UNION ALL
            SELECT format('constraint %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid)) FROM pg_constraint
            WHERE connamespace = 'public'::regnamespace
            UNION ALL
            SELECT format('sequence %s %s', sequencename, last_value) FROM pg_sequences
            ORDER BY 1
            """)
        lines += (0..<structure.rowCount).compactMap { structure.string($0, 0) }
        return lines
    }

    private func execute(_ url: String, _ statements: [String]) throws {
        let db = try PostgresConnection(url)
        for statement in statements { try db.execute(statement) }
    }

    /// (a) A shop: LockProof-like tables with data, no marker, and `invoices` referencing `users`.
    private func shop() throws -> String {
        let url = try makeDatabase("shop")
        try execute(url, [
            "CREATE TABLE users (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL DEFAULT '', balance BIGINT NOT NULL DEFAULT 0, version BIGINT NOT NULL DEFAULT 0)",
            "CREATE TABLE products (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL DEFAULT '', price BIGINT NOT NULL, stock BIGINT NOT NULL, version BIGINT NOT NULL DEFAULT 0)",
            "CREATE TABLE orders (id BIGSERIAL PRIMARY KEY, user_id BIGINT NOT NULL REFERENCES users (id), status TEXT NOT NULL, total_amount BIGINT NOT NULL, version BIGINT NOT NULL DEFAULT 0, created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            "CREATE TABLE coupons (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL DEFAULT '', total_quantity INT NOT NULL, issued_quantity INT NOT NULL DEFAULT 0, version BIGINT NOT NULL DEFAULT 0)",
            "CREATE TABLE invoices (id BIGSERIAL PRIMARY KEY, user_id BIGINT NOT NULL REFERENCES users (id), amount BIGINT NOT NULL)",
            "INSERT INTO users (name, balance) SELECT 'user ' || g, g * 100 FROM generate_series(1, 500) g",
            "INSERT INTO products (name, price, stock) SELECT 'product ' || g, g * 10, 100 FROM generate_series(1, 50) g",
            "INSERT INTO orders (user_id, status, total_amount) SELECT 1 + g % 500, 'PAID', g FROM generate_series(1, 300) g",
            "INSERT INTO coupons (name, total_quantity) VALUES ('launch', 10)",
            "INSERT INTO invoices (user_id, amount) SELECT 1 + g % 500, g FROM generate_series(1, 200) g",
        ])
        return url
    }

    /// (b) A `users` table of an older shape (no `version`), 100 rows.
    private func olderUsers() throws -> String {
        let url = try makeDatabase("older")
        try execute(url, [
            "CREATE TABLE users (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL, balance BIGINT NOT NULL DEFAULT 0)",
            "INSERT INTO users (name, balance) SELECT 'user ' || g, g FROM generate_series(1, 100) g",
        ])
        return url
    }

    /// (c) Only a foreign table named like one of LockProof's, referencing nothing.
    private func foreignOrders() throws -> String {
        let url = try makeDatabase("foreign")
        try execute(url, [
            "CREATE TABLE orders (reference TEXT PRIMARY KEY, customer TEXT NOT NULL, total NUMERIC(12, 2) NOT NULL)",
            "INSERT INTO orders SELECT 'R' || g, 'customer ' || g, g * 1.5 FROM generate_series(1, 40) g",
        ])
        return url
    }

    /// (d) A database LockProof created, with data, whose marker says a version this build does not know.
    private func unknownVersion() throws -> String {
        let url = try makeDatabase("future")
        let db = try PostgresConnection(url)
        try Schema.apply(db)
        _ = try SeedData(db: db).users(count: 10, balance: 1_000)
        try db.execute("UPDATE lockproof_schema SET version = 99")
        return url
    }

    /// (e) What an older LockProof build left: every table, seeded, and no marker.
    private func olderLockProof() throws -> String {
        let url = try makeDatabase("oldbuild")
        let db = try PostgresConnection(url)
        try Schema.apply(db)
        _ = try SeedData(db: db).users(count: 5, balance: 1_000)
        try db.execute("DROP TABLE lockproof_schema")
        return url
    }

    private static let tiny = """
        name: safety-tiny
        case: charge-balance
        strategy: atomic
        seed: {users: 1}
        workload: {virtual_users: 2, iterations: 2}
        """

    /// Every command that writes, against each database, is refused with exit 2 naming what it
    /// found, and every row, column, constraint and sequence is as it was.
    func testDatabasesThatAreNotLockProofsAreRefusedByEveryWritingCommandAndKeepEveryRow() throws {
        let files = try folder()
        let scenarios = files.appendingPathComponent("scenarios")
        try FileManager.default.createDirectory(at: scenarios, withIntermediateDirectories: true)
        let scenario = scenarios.appendingPathComponent("tiny.yaml")
        try Self.tiny.write(to: scenario, atomically: true, encoding: .utf8)
        let reports = files.appendingPathComponent("reports")
        let commands: [[String]] = [
            ["run", scenario.path, "--quiet", "--report-dir", reports.path],
            ["verify", scenarios.path, "--quiet", "--report-dir", reports.path],
            ["serve", "--metrics-address", "127.0.0.1:0"],
            ["recover"],
            [
                "bench", "--preset", "quick", "--cases", "charge-balance", "--clients", "1", "--repetitions", "1", "--seconds", "1",
                "--report-dir", reports.path,
            ],
            ["bench-metrics", "--clients", "1", "--rounds", "1", "--seconds", "0.2", "--scrapes", "1"],
        ]
        let databases: [(label: String, url: String, expected: [String])] = [
            ("shop", try shop(), [
                "invoices (constraint invoices_user_id_fkey, references users)", "(coupons, orders, products, users)",
                "no lockproof_schema marker", "createdb",
            ]),
            ("older users", try olderUsers(), ["(users)", "no lockproof_schema marker", "createdb"]),
            ("foreign orders", try foreignOrders(), ["(orders)", "no lockproof_schema marker"]),
            ("unknown version", try unknownVersion(), ["schema version 99", "knows version 1 only"]),
            ("older LockProof", try olderLockProof(), ["If an older LockProof build created them", "dropdb", "createdb"]),
        ]
        for database in databases {
            let before = try snapshot(database.url)
            for command in commands {
                // serve refused exits at once; one that started serves until stopped here.
                let result = try lockproof(command, databaseURL: database.url, timeout: command[0] == "serve" ? 15 : 60)
                let label = "\(database.label): \(command[0])"
                XCTAssertFalse(result.timedOut, "\(label) did not stop by itself: \(result.err)")
                XCTAssertEqual(result.status, 2, "\(label): \(result.out) \(result.err)")
                for expected in database.expected {
                    XCTAssertTrue(result.err.contains(expected), "\(label): no '\(expected)' in: \(result.err)")
                }
                let after = try snapshot(database.url)
                // Only what differs, so that a failure reads as "invoices: 200 rows → 0 rows".
                let gone = before.filter { !after.contains($0) }, new = after.filter { !before.contains($0) }
                XCTAssertTrue(gone.isEmpty && new.isEmpty, "\(label) changed the database: was \(gone), now \(new)")
                try checkRefusalReports(reports, command: command[0], label: label)
            }
        }
    }

    /// A refused run or verify reports the refusal in its report folder (every scenario an error
    /// that did not run, an <error> in junit.xml) and writes nothing else; other commands make no
    /// report folder. The folder is removed for the next command.
    private func checkRefusalReports(_ reports: URL, command: String, label: String) throws {
        defer { try? FileManager.default.removeItem(at: reports) }
        guard ["run", "verify"].contains(command) else {
            XCTAssertFalse(FileManager.default.fileExists(atPath: reports.path), "\(label) made its report folder")
            return
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: reports.path)) ?? []
        XCTAssertTrue(names.contains("junit.xml"), "\(label): no junit.xml for the refusal, only \(names)")
        let junit = (try? String(contentsOf: reports.appendingPathComponent("junit.xml"), encoding: .utf8)) ?? ""
        XCTAssertTrue(junit.contains("<error"), "\(label): junit.xml has no <error>: \(junit)")
        for name in names where name.hasSuffix(".json") {
            let report = try String(contentsOf: reports.appendingPathComponent(name), encoding: .utf8)
            XCTAssertTrue(report.contains("\"error\""), "\(label): \(name) is not an error report: \(report)")
        }
        XCTAssertFalse(names.contains { $0.hasSuffix(".history.jsonl") }, "\(label) wrote a history: \(names)")
    }

    /// An empty database is LockProof's once its first writer created the schema and the marker;
    /// two writers creating it at once leave one marker row.
    func testAnEmptyDatabaseGetsTheSchemaAndOneMarkerFromConcurrentFirstWriters() throws {
        let url = try makeDatabase("empty")
        let results = try runConcurrently(clients: 4, timeout: 60, setup: { _ in try PostgresConnection(url) }) { _, db in
            try Schema.apply(db)
        }
        for result in results { XCTAssertNoThrow(try result.get()) }
        let db = try PostgresConnection(url)
        XCTAssertEqual(try db.query("SELECT count(*), min(version), max(created_by) FROM lockproof_schema").int(0, 0), 1)
        XCTAssertEqual(try db.query("SELECT version FROM lockproof_schema").int(0, 0), Schema.version)
        XCTAssertNil(try Schema.ownership(db).problem)
        XCTAssertTrue(try Schema.ownership(db).isComplete)
    }

    /// Two runs started at once on one database: one runs and passes, the other is refused with
    /// exit 2 naming the first (its pid, host, since when).
    func testTwoRunsAtOnceTheSecondIsRefusedNamingTheFirstWhoseVerdictStands() throws {
        let url = try makeDatabase("tworuns")
        let files = try folder()
        let scenario = files.appendingPathComponent("long.yaml")
        try """
            name: safety-two-runs
            case: charge-balance
            strategy: atomic
            seed: {users: 4, balance: 1000000}
            workload: {virtual_users: 4, duration: 3s}
            """.write(to: scenario, atomically: true, encoding: .utf8)
        let binary = try self.binary
        let launches = try runConcurrently(
            clients: 2, timeout: 120,
            setup: { _ in Self.process(["run", scenario.path, "--quiet"], databaseURL: url, in: files, binary: binary) }
        ) { _, prepared in
            let (process, out, err) = prepared
            try process.run()
            return Self.finish(process, out: out, err: err, timeout: 90)
        }.map { try $0.get() }
        let refused = launches.filter { $0.status == 2 }
        let ran = launches.filter { $0.status != 2 }
        XCTAssertEqual(refused.count, 1, launches.map { "\($0.status): \($0.err)" }.joined(separator: "\n"))
        XCTAssertEqual(ran.count, 1)
        guard let first = ran.first, let second = refused.first else { return }
        XCTAssertEqual(first.status, 0, first.out + first.err)
        XCTAssertTrue(first.out.contains("verdict: PASS"), first.out)
        XCTAssertTrue(second.err.contains("is held by a LockProof run: lockproof run pid=\(first.pid) since="), second.err)
        XCTAssertTrue(second.err.contains("--wait-for-database"), second.err)
        XCTAssertFalse(second.out.contains("verdict"), "the refused run ran nothing: \(second.out)")
    }

    /// --wait-for-database waits for the holder and then runs; a bound too short is refused, as
    /// is a bound that is not a whole number of seconds 0–86400.
    func testWaitForDatabaseWaitsForTheHolderThenRuns() throws {
        let url = try makeDatabase("wait")
        let files = try folder()
        let scenario = files.appendingPathComponent("tiny.yaml")
        try Self.tiny.write(to: scenario, atomically: true, encoding: .utf8)
        var configuration = TestServers.configuration
        configuration.databaseURL = url
        let holder = try DatabaseClaim.claimForWriting(.run, configuration: configuration, command: "test")

        let short = try lockproof(["run", scenario.path, "--quiet", "--wait-for-database", "1"], databaseURL: url)
        XCTAssertEqual(short.status, 2, short.err)
        XCTAssertTrue(short.err.contains("lockproof test pid=\(getpid())") && short.err.contains("(waited 1 s)"), short.err)

        let (process, out, err) = Self.process(
            ["run", scenario.path, "--quiet", "--wait-for-database", "120"], databaseURL: url, in: files, binary: try binary)
        try process.run()
        // Released once the waiting run has said it waits.
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, !((try? String(contentsOf: err, encoding: .utf8)) ?? "").contains("waiting for the database") {
            Thread.sleep(forTimeInterval: 0.05)
        }
        XCTAssertTrue(process.isRunning, "it waits while the database is held")
        holder.release()
        let waited = Self.finish(process, out: out, err: err, timeout: 90)
        XCTAssertEqual(waited.status, 0, waited.err)
        XCTAssertTrue(waited.err.contains("waiting for the database: database \(url.split(separator: "/").last!) is held by a LockProof run: lockproof test pid="), waited.err)
        XCTAssertTrue(waited.out.contains("verdict: PASS"), waited.out)

        for bad in ["-1", "86401", "1.5", "soon"] {
            let result = try lockproof(["run", scenario.path, "--wait-for-database", bad], databaseURL: url)
            XCTAssertEqual(result.status, 2, bad)
            XCTAssertTrue(result.err.contains("--wait-for-database: found '\(bad)'"), "\(bad): \(result.err)")
            XCTAssertFalse(result.err.contains("Missing value"), "\(bad): \(result.err)")
        }
    }

    /// serve writes to the database without the run lock, but marks it: a run refuses a database a
    /// serve instance writes to (naming it), and serve refuses one a run holds.
    func testServeAndRunsExcludeEachOther() throws {
        let url = try makeDatabase("serve")
        let files = try folder()
        let scenario = files.appendingPathComponent("tiny.yaml")
        try Self.tiny.write(to: scenario, atomically: true, encoding: .utf8)
        var configuration = TestServers.configuration
        configuration.databaseURL = url

        let (serve, serveOut, serveErr) = Self.process(["serve", "--metrics-address", "127.0.0.1:0"], databaseURL: url, in: files, binary: try binary)
        try serve.run()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, serve.isRunning, !((try? String(contentsOf: serveOut, encoding: .utf8)) ?? "").contains("metrics: http://") {
            Thread.sleep(forTimeInterval: 0.05)
        }
        let run = try lockproof(["run", scenario.path, "--quiet"], databaseURL: url)
        let recover = try lockproof(["recover"], databaseURL: url)
        serve.terminate()
        let served = Self.finish(serve, out: serveOut, err: serveErr, timeout: 30)
        XCTAssertEqual(served.status, 0, served.err)
        XCTAssertEqual(run.status, 2, run.err)
        XCTAssertTrue(run.err.contains("is being written to by a lockproof serve instance: lockproof serve pid=\(served.pid)"), run.err)
        XCTAssertEqual(recover.status, 2, recover.err)

        let holder = try DatabaseClaim.claimForWriting(.run, configuration: configuration, command: "test")
        defer { holder.release() }
        let refused = try lockproof(["serve", "--metrics-address", "127.0.0.1:0"], databaseURL: url, timeout: 30)
        XCTAssertFalse(refused.timedOut, "serve started on a database a run holds")
        XCTAssertEqual(refused.status, 2, refused.err)
        XCTAssertTrue(refused.err.contains("is held by a LockProof run: lockproof test pid=\(getpid())"), refused.err)
    }

    /// A second run on the same Redis database (another PostgreSQL database) is refused too: it
    /// would clear and take the first run's lock keys.
    func testASecondRunOnTheSameRedisDatabaseIsRefused() throws {
        let first = try makeDatabase("redis1")
        let second = try makeDatabase("redis2")
        var configuration = TestServers.configuration
        configuration.databaseURL = first
        let holder = try DatabaseClaim.claimForWriting(.run, configuration: configuration, command: "test")
        defer { holder.release() }
        let files = try folder()
        let scenario = files.appendingPathComponent("tiny.yaml")
        try Self.tiny.write(to: scenario, atomically: true, encoding: .utf8)
        let result = try lockproof(["run", scenario.path, "--quiet"], databaseURL: second)
        XCTAssertEqual(result.status, 2, result.err)
        XCTAssertTrue(result.err.contains("is in use by another LockProof run (lockproof test pid=\(getpid())"), result.err)
        XCTAssertFalse(result.err.contains("token="), "the token stays private: \(result.err)")
    }

    /// A run whose session was terminated claims the database again when nobody took it; when
    /// another run took it meanwhile, the claim says it was lost, naming that run.
    func testALostClaimIsTakenBackOrReportedNamingTheNewHolder() throws {
        let url = try makeDatabase("lost")
        var configuration = TestServers.configuration
        configuration.databaseURL = url
        let claim = try DatabaseClaim.claimForWriting(.run, configuration: configuration, command: "test", holdRedis: false)
        defer { claim.release() }
        let admin = try PostgresConnection(url)
        let terminate = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1"
        XCTAssertEqual(try admin.query(terminate, [claim.holder]).rowCount, 1)
        XCTAssertNil(claim.lost(), "taken back: nobody else held it")

        XCTAssertEqual(try admin.query(terminate, [claim.holder]).rowCount, 1)
        let other = try DatabaseClaim.acquire(.run, configuration: configuration, command: "other", holdRedis: false)
        defer { other.release() }
        let lost = try XCTUnwrap(claim.lost())
        XCTAssertTrue(lost.contains("lost and taken meanwhile") && lost.contains("lockproof other pid="), lost)
    }

    /// The privilege check reads the catalog: it completes while another session holds a row lock
    /// on a LockProof table, and takes no lock but AccessShareLock (the old check ran TRUNCATE,
    /// ACCESS EXCLUSIVE, and waited behind the row lock).
    func testThePrivilegeCheckTakesNoLockAnotherSessionNotices() throws {
        let url = try makeDatabase("privileges")
        let owner = try PostgresConnection(url)
        try Schema.apply(owner)
        let userId = try SeedData(db: owner).users(count: 1, balance: 10)[0]
        try owner.execute("BEGIN")
        try owner.query("SELECT id FROM users WHERE id = $1 FOR UPDATE", [userId])
        defer { owner.rollbackQuietly() }

        let checker = try PostgresConnection(url)
        try checker.execute("SET lock_timeout = '2s'")
        try checker.execute("BEGIN")
        XCTAssertEqual(try Schema.missingPrivileges(checker), [])
        let observer = try PostgresConnection(url)
        let locks = try observer.query(
            "SELECT mode, coalesce(relation::regclass::text, locktype) FROM pg_locks WHERE pid = $1 AND mode <> 'AccessShareLock' AND locktype = 'relation'",
            [Int(checker.backendPID)])
        XCTAssertEqual(locks.rowCount, 0, (0..<locks.rowCount).map { "\(locks.string($0, 0) ?? "") on \(locks.string($0, 1) ?? "")" }.joined(separator: ", "))
        checker.rollbackQuietly()
        XCTAssertEqual(try owner.query("SELECT balance FROM users WHERE id = $1", [userId]).int(0, 0), 10, "the row lock's holder is undisturbed")
    }
}
