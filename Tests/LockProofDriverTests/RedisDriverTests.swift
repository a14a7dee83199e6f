import LockProofRedis
import LockProofTestSupport
import XCTest

final class RedisDriverTests: XCTestCase {
    func testBinarySafeArguments() throws {
        let redis = try TestServers.redis()
        let value: [UInt8] = [0, 13, 10, 255, 36, 42, 0]
        XCTAssertEqual(try redis.command(bytes: [Array("SET".utf8), Array("lockproof:test:binary".utf8), value]), .status("OK"))
        XCTAssertEqual(try redis.command(["GET", "lockproof:test:binary"]), .string(value))
        XCTAssertEqual(try redis.command(["DEL", "lockproof:test:binary"]), .integer(1))
    }

    /// A subscriber whose connection dropped must subscribe again: reading would otherwise open
    /// a fresh connection with no subscription and wait on it forever (the lock release notifier
    /// after a Redis restart). A new SUBSCRIBE reconnects.
    func testAReadAfterTheConnectionDroppedNeverReconnectsButSubscribingAgainDoes() throws {
        let subscriber = try TestServers.redis(commandTimeout: 5)
        try subscriber.send(["SUBSCRIBE", "lockproof:test:channel"])
        XCTAssertEqual(try subscriber.readReply().array?.first?.text, "subscribe")
        _ = try TestServers.redis().checked(["CLIENT", "KILL", "TYPE", "pubsub"])
        XCTAssertThrowsError(try subscriber.readReply(), "the server closed it")
        XCTAssertThrowsError(try subscriber.readReply()) {
            XCTAssertTrue("\($0)".contains("subscribe again"), "a read reconnected instead: \($0)")
        }
        try subscriber.send(["SUBSCRIBE", "lockproof:test:channel"])
        XCTAssertEqual(try subscriber.readReply().array?.first?.text, "subscribe")
        _ = try TestServers.redis().checked(["PUBLISH", "lockproof:test:channel", "hello"])
        XCTAssertEqual(try subscriber.readReply().array?.last?.text, "hello")
    }

    /// A named connection keeps its name across a reconnect: `redis-client-kill` finds the
    /// virtual clients' connections by it, before and after it has struck them once.
    func testAClientNameIsSetOnConnectAndAgainOnReconnect() throws {
        let named = try RedisConnection(endpoint: TestServers.configuration.redis, clientName: "lockproof-test-named")
        XCTAssertEqual(try named.checked(["CLIENT", "GETNAME"]).text, "lockproof-test-named")
        let id = try XCTUnwrap(try named.checked(["CLIENT", "ID"]).integer)
        XCTAssertEqual(try TestServers.redis().checked(["CLIENT", "KILL", "ID", String(id)]).integer, 1)
        XCTAssertThrowsError(try named.checked(["PING"]), "the server closed it")
        XCTAssertEqual(try named.checked(["CLIENT", "GETNAME"]).text, "lockproof-test-named", "reconnected with its name")
        XCTAssertEqual(try TestServers.redis().checked(["CLIENT", "GETNAME"]), .null, "unnamed by default")
    }

    func testErrorReplyIsTypedAndConnectionStaysUsable() throws {
        let redis = try TestServers.redis()
        guard case .error(let message) = try redis.command(["NOSUCHCOMMAND"]) else { return XCTFail("expected an error reply") }
        XCTAssertTrue(message.contains("unknown command"), message)
        XCTAssertThrowsError(try redis.checked(["INCR"])) { XCTAssertEqual(($0 as? RedisError)?.kind, .server) }
        XCTAssertEqual(try redis.command(["PING"]), .status("PONG"))
    }

    func testScriptFallsBackToEvalAfterScriptFlush() throws {
        let redis = try TestServers.redis()
        let script = RedisScript("return tonumber(ARGV[1]) + #KEYS")
        XCTAssertEqual(try redis.eval(script, keys: ["a", "b"], arguments: ["40"]), .integer(42))
        try redis.checked(["SCRIPT", "FLUSH"])
        XCTAssertEqual(try redis.eval(script, keys: ["a"], arguments: ["40"]), .integer(41), "EVAL after NOSCRIPT")
        XCTAssertEqual(try redis.eval(script, keys: [], arguments: ["40"]), .integer(40))
    }

    func testCommandTimeoutIsTypedAndTheNextCommandReconnects() throws {
        let redis = try TestServers.redis(commandTimeout: 0.2)
        XCTAssertThrowsError(try redis.command(["BLPOP", "lockproof:test:never", "2"])) {
            XCTAssertEqual(($0 as? RedisError)?.kind, .timeout, "\($0)")
        }
        XCTAssertEqual(try redis.command(["PING"]), .status("PONG"))
    }

    /// `interrupt` (the lock notifier's stop, from another thread) wakes a blocked read, and the
    /// connection stays interrupted: the reader's next command fails instead of reconnecting and
    /// blocking again (its context is freed under the lock `interrupt` takes, never read after).
    func testInterruptWakesABlockedReadAndNoCommandReconnectsAfterIt() throws {
        let box = InterruptBox(try TestServers.redis(commandTimeout: 0))
        let woke = DispatchSemaphore(value: 0)
        let thread = Thread {
            box.blockedError = Result { try box.redis.command(["BLPOP", "lockproof:test:interrupt", "0"]) }.failure
            box.laterError = Result { try box.redis.command(["PING"]) }.failure
            woke.signal()
        }
        thread.start()
        Thread.sleep(forTimeInterval: 0.2)
        box.redis.interrupt()
        XCTAssertEqual(woke.wait(timeout: .now() + 10), .success, "the blocked read did not wake up")
        XCTAssertEqual((box.blockedError as? RedisError)?.kind, .io, "\(String(describing: box.blockedError))")
        XCTAssertNotNil(box.laterError, "a command after interrupt reconnected")
        XCTAssertFalse(box.redis.isConnected)
    }

    func testUnreachableServerIsConnectionFailed() {
        XCTAssertThrowsError(try RedisConnection(url: "redis://127.0.0.1:1/0", connectTimeout: 1)) {
            XCTAssertEqual(($0 as? RedisError)?.kind, .connectionFailed)
        }
    }

    func testURLParsing() throws {
        XCTAssertEqual(try RedisEndpoint(url: "redis://10.1.2.3:7000/4"), RedisEndpoint(host: "10.1.2.3", port: 7000, database: 4))
        XCTAssertEqual(try RedisEndpoint(url: "redis://localhost"), RedisEndpoint(host: "localhost", port: 6379, database: 0))
        let secret = try RedisEndpoint(url: "redis://:pw@h:1/0")
        XCTAssertEqual(secret.password, "pw")
        XCTAssertFalse(secret.description.contains("pw"))
        // A lone userinfo is most likely a password written where the user goes: never printed.
        XCTAssertEqual(try RedisEndpoint(url: "redis://Sec0Ret9Xq@h:1/0").description, "redis://***@h:1/0")
        XCTAssertThrowsError(try RedisEndpoint(url: "http://x"))
        XCTAssertThrowsError(try RedisEndpoint(url: "redis://h:99999/0"))
        XCTAssertThrowsError(try RedisEndpoint(url: "redis://h:1/x"))
    }

    func testSelectsTheDatabaseFromTheURL() throws {
        let base = TestServers.configuration.redis
        let other = try RedisConnection(endpoint: RedisEndpoint(host: base.host, port: base.port, database: 3))
        try other.checked(["SET", "lockproof:test:db", "three"])
        XCTAssertEqual(try TestServers.redis().command(["EXISTS", "lockproof:test:db"]), .integer(base.database == 3 ? 1 : 0))
        try other.checked(["DEL", "lockproof:test:db"])
    }
}

/// The connection and what its reader thread saw, handed between the test's two threads (the
/// semaphore orders the accesses).
private final class InterruptBox: @unchecked Sendable {
    let redis: RedisConnection
    var blockedError: Error?
    var laterError: Error?
    init(_ redis: RedisConnection) { self.redis = redis }
}

extension Result {
    fileprivate var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
