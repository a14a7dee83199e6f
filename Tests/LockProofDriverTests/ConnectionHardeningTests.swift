import Foundation
import LockProofPostgres
import LockProofRedis
import LockProofTestSupport
import XCTest
import Synchronization

/// Issue 11: no password in any form reaches a description or an error, and no connection attempt
/// waits longer than its connect timeout on a server that accepts and never answers.
final class ConnectionHardeningTests: XCTestCase {
    private let secret = "Sec0Ret9Xq"
    private let secretPieces = ["Sec0Ret9Xq", "Sec0", "Ret9Xq", "Sec0 Ret9Xq", "Sec0/Ret9Xq", "Sec0@Ret9Xq", "ZZRet"]

    private func assertNoSecret(_ text: String, _ context: String, file: StaticString = #filePath, line: UInt = #line) {
        for piece in secretPieces {
            XCTAssertFalse(text.contains(piece), "\(context): '\(piece)' printed in: \(text)", file: file, line: line)
        }
    }

    private var databaseTarget: PostgresTarget { get throws { try PostgresTarget(conninfo: TestServers.configuration.databaseURL) } }

    // MARK: PostgreSQL

    func testEveryPasswordFormIsAbsentFromTheTargetDescription() throws {
        let forms = [
            "postgresql://lockproof@127.0.0.1:1/lockproof?password=\(secret)",
            "postgresql://lockproof:\(secret)@127.0.0.1:1/lockproof",
            "host=127.0.0.1 port=1 user=lockproof password = \(secret)",
            "host=127.0.0.1 port=1 user=lockproof password='Sec0 Ret9Xq'",
            "host=127.0.0.1 port=1 password=\(secret) user=lockproof",
        ]
        for form in forms {
            let target = try PostgresTarget(conninfo: form)
            XCTAssertTrue(target.hasPassword, form)
            XCTAssertEqual(target.host, "127.0.0.1", form)
            XCTAssertEqual(target.port, "1", form)
            assertNoSecret(target.description, form)
            assertNoSecret(String(reflecting: target), form)
            assertNoSecret(redactedURL(form), form)
            XCTAssertTrue(target.description.contains(":***@"), "a password is shown as present: \(target)")
            // What a child program (pgbench) gets: the settings on its command line, the password
            // only in its environment (issue 15).
            let child = target.forChildProcess
            assertNoSecret(child.conninfo, "child conninfo of \(form)")
            XCTAssertEqual(child.environment["PGPASSWORD"], form.contains("'Sec0 Ret9Xq'") ? "Sec0 Ret9Xq" : secret, form)
            let reparsed = try PostgresTarget(conninfo: child.conninfo)
            XCTAssertEqual([reparsed.host, reparsed.port, reparsed.user], ["127.0.0.1", "1", "lockproof"], child.conninfo)
            XCTAssertFalse(reparsed.hasPassword, child.conninfo)
        }
        // Quotes and backslashes in a setting survive the child's conninfo.
        let quoted = try PostgresTarget(conninfo: #"host=127.0.0.1 user='o\'brien\\x' password=pw"#)
        XCTAssertEqual(try PostgresTarget(conninfo: quoted.forChildProcess.conninfo).user, #"o'brien\x"#)
        XCTAssertTrue(try PostgresTarget(conninfo: "host=h sslpassword=\(secret)").hasKeyPassphrase)
    }

    func testMalformedConnectionStringsAreRefusedWithoutEchoingThem() {
        let forms = [
            // libpq ends the password at the first '@': the rest would be taken for the host name.
            "postgresql://lockproof:Sec0@Ret9Xq@127.0.0.1:1/lockproof",
            // libpq's own message quotes the bad token: "invalid percent-encoded token: "Sec0%ZZRet9Xq"".
            "postgresql://lockproof:Sec0%ZZRet9Xq@127.0.0.1:1/lockproof",
            "host=127.0.0.1 password='Sec0 Ret9Xq",
            "host=127.0.0.1 passwrd=\(secret)",
        ]
        for form in forms {
            XCTAssertThrowsError(try PostgresTarget(conninfo: form), form) { error in
                assertNoSecret(String(describing: error), form)
            }
            XCTAssertThrowsError(try PostgresConnection(form), form) { error in
                XCTAssertEqual((error as? PostgresError)?.kind, .connectionFailed)
                assertNoSecret(String(describing: error), form)
            }
            assertNoSecret(redactedURL(form), form)
        }
    }

    func testMessagesFromLibpqAreCleanedOfThePassword() throws {
        let target = try PostgresTarget(conninfo: "postgresql://u:Sec0%2FRet9Xq@h/db")
        assertNoSecret(target.scrub("FATAL: something echoed Sec0/Ret9Xq and Sec0%2FRet9Xq"), "scrub")
        XCTAssertEqual(target.scrub("nothing secret"), "nothing secret")
    }

    func testAnUnreachableServerFailsWithoutThePassword() {
        for form in ["postgresql://lockproof@127.0.0.1:1/lockproof?password=\(secret)", "host=127.0.0.1 port=1 password = \(secret)"] {
            XCTAssertThrowsError(try PostgresConnection(form)) { error in
                XCTAssertEqual((error as? PostgresError)?.kind, .connectionFailed)
                assertNoSecret(String(describing: error), form)
            }
        }
    }

    func testASilentServerFailsWithinTheConnectTimeout() throws {
        let listener = try SilentListener()
        let outcome = try boundedAttempt(seconds: 30) {
            _ = try PostgresConnection("postgresql://lockproof@127.0.0.1:\(listener.port)/lockproof", connectTimeoutSeconds: 2)
        }
        XCTAssertEqual((outcome as? PostgresError)?.kind, .connectionFailed, "\(String(describing: outcome))")
        XCTAssertTrue(String(describing: outcome).contains("timeout"), "\(String(describing: outcome))")
    }

    func testAPasswordInTheURLStillConnects() throws {
        // The test server trusts loopback: any password is accepted, so the forms connect.
        guard let target = try? databaseTarget, let host = target.host, let port = target.port else { return }
        for form in [
            "postgresql://\(target.user ?? "lockproof")@\(host):\(port)/\(target.database ?? "lockproof")?password=\(secret)",
            "host=\(host) port=\(port) user=\(target.user ?? "lockproof") dbname=\(target.database ?? "lockproof") password='Sec0 Ret9Xq'",
        ] {
            let db = try PostgresConnection(form)
            XCTAssertEqual(try db.query("SELECT 1").int(0, 0), 1)
        }
    }

    // MARK: Redis

    func testRedisURLForms() throws {
        let slash = try RedisEndpoint(url: "redis://:Sec0/Ret9Xq@10.0.0.1:7000/3")
        XCTAssertEqual(slash, RedisEndpoint(host: "10.0.0.1", port: 7000, database: 3, password: "Sec0/Ret9Xq"))
        let query = try RedisEndpoint(url: "redis://10.0.0.1:7000/0?password=\(secret)")
        XCTAssertEqual(query, RedisEndpoint(host: "10.0.0.1", port: 7000, database: 0, password: secret))
        let acl = try RedisEndpoint(url: "redis://admin:Sec0%40Ret9Xq@h/2")
        XCTAssertEqual(acl, RedisEndpoint(host: "h", port: 6379, database: 2, user: "admin", password: "Sec0@Ret9Xq"))
        let userOnly = try RedisEndpoint(url: "redis://admin@h")
        XCTAssertEqual(userOnly.user, "admin")
        XCTAssertNil(userOnly.password, "a user name is not a password")
        XCTAssertEqual(try RedisEndpoint(url: "redis://[::1]:7000/1"), RedisEndpoint(host: "::1", port: 7000, database: 1))
        for endpoint in [slash, query, acl] {
            assertNoSecret(endpoint.description, "description")
            assertNoSecret(String(reflecting: endpoint), "debug description")
            XCTAssertTrue(endpoint.description.contains(":***@"), endpoint.description)
        }
    }

    func testMalformedRedisURLsAreRefusedWithoutEchoingThem() {
        let forms = [
            ":\(secret)@127.0.0.1:1/0",  // no scheme
            "\(secret)@127.0.0.1",
            "rediss://:\(secret)@127.0.0.1:1/0",
            "redis://:Sec0?Ret9Xq@127.0.0.1:1/0",
            "redis://:Sec0%ZZRet9Xq@127.0.0.1:1/0",
            "redis://127.0.0.1:1/0?passwrd=\(secret)",
            "redis://127.0.0.1:1/Sec0Ret9Xq",
            "redis://h:Sec0Ret9Xq/0",
        ]
        for form in forms {
            XCTAssertThrowsError(try RedisEndpoint(url: form), form) { error in
                assertNoSecret(String(describing: error), form)
            }
        }
        XCTAssertThrowsError(try RedisEndpoint(url: "rediss://h")) { error in
            XCTAssertTrue(String(describing: error).contains("TLS"), "\(error)")
        }
    }

    func testAUserWithoutPasswordSendsNoAUTH() throws {
        // Against the passwordless test server, `AUTH admin` would fail ("called without any password configured").
        let base = TestServers.configuration.redis
        let connection = try RedisConnection(url: "redis://admin@\(base.host):\(base.port)/\(base.database)")
        XCTAssertEqual(try connection.command(["PING"]), .status("PONG"))
    }

    func testACLUserAndPasswordsInEveryFormLogIn() throws {
        let redis = try ThrowawayRedis(arguments: [
            "--user", "default", "on", ">Sec0/Ret9Xq", ">\(secret)", "~*", "&*", "+@all",
            "--user", "admin", "on", ">Sec0@Ret9Xq", "~*", "&*", "+@all",
        ])
        let port = redis.port
        for url in [
            "redis://:Sec0/Ret9Xq@127.0.0.1:\(port)/0",
            "redis://127.0.0.1:\(port)/0?password=\(secret)",
            "redis://admin:Sec0%40Ret9Xq@127.0.0.1:\(port)/1",
        ] {
            let connection = try RedisConnection(url: url)
            XCTAssertEqual(try connection.command(["PING"]), .status("PONG"), url)
        }
        XCTAssertEqual(
            try RedisConnection(url: "redis://admin:Sec0%40Ret9Xq@127.0.0.1:\(port)/0").command(["ACL", "WHOAMI"]).text, "admin")
        for url in ["redis://:wrong-Sec0Ret9Xq-x@127.0.0.1:\(port)/0", "redis://admin@127.0.0.1:\(port)/0"] {
            XCTAssertThrowsError(try RedisConnection(url: url), url) { error in
                XCTAssertEqual((error as? RedisError)?.kind, .connectionFailed, "\(error)")
                assertNoSecret(String(describing: error), url)
            }
        }
    }

    func testASilentRedisFailsWithinTheConnectTimeout() throws {
        let listener = try SilentListener()
        for commandTimeout in [5.0, 0] {  // 0: the lock notifier's connection, which has no command timeout
            let outcome = try boundedAttempt(seconds: 30) {
                _ = try RedisConnection(
                    endpoint: RedisEndpoint(host: "127.0.0.1", port: listener.port, connectTimeoutSeconds: 1),
                    commandTimeout: commandTimeout)
            }
            XCTAssertEqual((outcome as? RedisError)?.kind, .timeout, "\(String(describing: outcome))")
        }
    }

    /// Runs `attempt` on its own thread and returns the error it threw; fails (and gives up waiting)
    /// if it has not returned within `seconds`, a bound far above the timeout under test.
    private func boundedAttempt(seconds: Double, _ attempt: @escaping @Sendable () throws -> Void) throws -> Error? {
        let done = DispatchSemaphore(value: 0)
        let result = LockedBox<Error?>(nil)
        Thread {
            do { try attempt() } catch { result.value = error }
            done.signal()
        }.start()
        guard done.wait(timeout: .now() + seconds) == .success else {
            XCTFail("the connection attempt hung for \(seconds) s")
            throw HangError()
        }
        return result.value
    }
}

private struct HangError: Error {}

private final class LockedBox<T: Sendable>: Sendable {
    private let stored: Mutex<T>
    init(_ value: T) { stored = Mutex(value) }
    var value: T {
        get { stored.withLock { $0 } }
        set { stored.withLock { $0 = newValue } }
    }
}
