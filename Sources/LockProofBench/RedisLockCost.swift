import Foundation
import LockProofCommerce
import LockProofConfiguration
import LockProofLocking
import LockProofRedis

/// The Redis lock's cost on its own: LockProof's lock client taking and releasing uncontended
/// locks (its acquire `EVAL` runs `SET key token NX PX lease` and bumps the fencing counter; its
/// release `EVAL` is the compare-and-delete) against redis-benchmark running the same two scripts,
/// with the same number of clients. The difference is the client's own overhead.
func measureRedisLockCost(configuration: ServerConfiguration, clientCounts: [Int], seconds: Double) throws
    -> [RedisLockCost]
{
    guard let redisBenchmark = findTool("redis-benchmark") else {
        throw BenchError("redis-benchmark not found (Debian's redis-tools); run scripts/install-deps.sh")
    }
    let login = try BenchRedisLogin(configuration.redis)
    defer { login.remove() }
    var costs: [RedisLockCost] = []
    for clients in clientCounts {
        let pairs = try lockPairsPerSecond(configuration.redis, clients: clients, seconds: seconds)
        // Requests sized to take about `seconds` at the pair rate measured above.
        let requests = max(2_000, Int(pairs * seconds * 2))
        let acquire = try redisBenchmarkRate(
            redisBenchmark, configuration.redis, login: login, clients: clients, requests: requests,
            command: [
                "EVAL", acquireScript, "2", "lockproof:bench:k:__rand_int__", "lockproof:bench:f:__rand_int__", "token",
                "5000",
            ])
        let release = try redisBenchmarkRate(
            redisBenchmark, configuration.redis, login: login, clients: clients, requests: requests,
            command: ["EVAL", releaseScript, "1", "lockproof:bench:k:__rand_int__", "token", "lockproof:bench:released"])
        costs.append(
            RedisLockCost(
                clients: clients, lockProofPairsPerSecond: pairs, redisBenchmarkAcquire: acquire, redisBenchmarkRelease: release))
    }
    let cleanup = try RedisConnection(endpoint: configuration.redis)
    var cursor = "0"
    repeat {
        let reply = try cleanup.checked(["SCAN", cursor, "MATCH", "lockproof:bench:*", "COUNT", "1000"])
        guard let parts = reply.array, parts.count == 2, let next = parts[0].text else { break }
        cursor = next
        let keys = parts[1].array?.compactMap(\.text) ?? []
        if !keys.isEmpty { try cleanup.checked(["DEL"] + keys) }
    } while cursor != "0"
    return costs
}

// The same scripts as LockProofLocking's LockScripts (a test compares them with what the client sends).
let acquireScript = """
    if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
      return {1, redis.call('INCR', KEYS[2])}
    end
    return {0, redis.call('PTTL', KEYS[1])}
    """
let releaseScript = """
    if redis.call('GET', KEYS[1]) == ARGV[1] then
      redis.call('DEL', KEYS[1])
      redis.call('PUBLISH', ARGV[2], KEYS[1])
      return 1
    end
    return 0
    """

/// Acquire + release pairs per second through LockProof's lock client, one key per client.
private func lockPairsPerSecond(_ endpoint: RedisEndpoint, clients: Int, seconds: Double) throws -> Double {
    let setupFailures = LockedCounts(1)
    let counts = LockedCounts(clients)
    let failures = LockedCounts(1)
    let barrier = StartBarrier(parties: clients + 1)
    let group = DispatchGroup()
    let options = DistributedLockOptions(leaseMilliseconds: 5_000, waitMilliseconds: 1_000, renewLease: false)
    for index in 0..<clients {
        group.enter()
        let thread = Thread {
            defer { group.leave() }
            let connection = try? RedisConnection(endpoint: endpoint)
            if connection == nil { setupFailures.add(0, 1) }
            barrier.arriveAndWait()
            guard let connection else { return }
            let locks = DistributedLockClient(redis: connection)
            let probe = Probe(caseName: "bench")
            let deadline = monotonicSeconds() + seconds
            var done = 0
            while monotonicSeconds() < deadline {
                do {
                    let handle = try locks.acquire("lockproof:bench:lock:\(index)", options: options, probe: probe)
                    try locks.release(handle, probe: probe)
                    done += 1
                } catch {
                    failures.add(0, 1)
                    break
                }
            }
            counts.add(index, done)
        }
        thread.start()
    }
    let started = monotonicSeconds()
    barrier.arriveAndWait()
    guard group.wait(timeout: .now() + seconds + 30) == .success else {
        throw BenchError("the Redis lock clients did not finish within \(Int(seconds + 30)) s")
    }
    let elapsed = monotonicSeconds() - started
    if setupFailures.total > 0 { throw BenchError("\(setupFailures.total) lock clients could not connect to Redis") }
    if failures.total > 0 { throw BenchError("\(failures.total) lock clients failed against Redis") }
    return Double(counts.total) / elapsed
}

/// redis-benchmark's requests per second for one command (`__rand_int__` spreads the keys).
private func redisBenchmarkRate(
    _ tool: String, _ endpoint: RedisEndpoint, login: BenchRedisLogin, clients: Int, requests: Int, command: [String]
) throws -> Double {
    var arguments = [
        "-h", endpoint.host, "-p", String(endpoint.port), "-c", String(clients), "-n", String(requests), "-r", "100000",
        "--csv", "--dbnum", String(endpoint.database),
    ]
    arguments += login.arguments
    arguments += command
    let (status, output) = try runProgram(tool, arguments, timeoutSeconds: 120)
    guard status == 0 else { throw BenchError("redis-benchmark exited with status \(status)") }
    // --csv: a header line, then "test","rps","avg_latency_ms", … 5 more latency columns. The test
    // name holds the script (with commas), so count the fields from the end.
    for line in output.split(separator: "\n") where !line.hasPrefix("\"test\"") {
        let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\" ")) }
        if fields.count >= 8, let rate = Double(fields[fields.count - 7]) { return rate }
    }
    throw BenchError("redis-benchmark printed no rate")
}

/// How redis-benchmark logs in. It takes a password only on its command line (`-a`, `-u`), where
/// every local user reads it in /proc/PID/cmdline, and reads none from the environment
/// (REDISCLI_AUTH is redis-cli's; checked with redis-benchmark 7.0.15 against `requirepass`). So
/// against a Redis with a password it never gets the user's: LockProof creates a temporary ACL
/// user of its own with a random one-time password, allowed only the benchmark's keys and
/// channel (`lockproof:bench:*`) and the commands of the two lock scripts (not CONFIG, which
/// would show the server's own password), and deletes it when the measurement ends.
final class BenchRedisLogin {
    private let admin: RedisConnection?
    private let user: String?
    /// redis-benchmark's login options: none without a password, else the temporary user's.
    let arguments: [String]

    init(_ endpoint: RedisEndpoint) throws {
        guard endpoint.password != nil else {
            admin = nil
            user = nil
            arguments = []
            return
        }
        let admin = try RedisConnection(endpoint: endpoint)
        let user = "lockproof-bench-\(String(UInt64.random(in: .min ... .max), radix: 16))"
        let password = (0..<4).map { _ in String(UInt64.random(in: .min ... .max), radix: 16) }.joined()
        do {
            try admin.checked([
                "ACL", "SETUSER", user, "reset", "on", ">\(password)", "~lockproof:bench:*", "&lockproof:bench:*",
                "+eval", "+evalsha", "+ping", "+select", "+set", "+get", "+del", "+incr", "+pttl", "+publish",
            ])
        } catch {
            throw BenchError(
                "redis-benchmark would need the Redis password on its command line, where any local user can read it, and this Redis user may not create a temporary ACL user for it (ACL SETUSER: \(error)); not measured")
        }
        self.admin = admin
        self.user = user
        arguments = ["--user", user, "-a", password]
    }

    /// Deletes the temporary user.
    func remove() {
        if let admin, let user { _ = try? admin.checked(["ACL", "DELUSER", user]) }
    }
}

final class LockedCounts: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Int]
    init(_ count: Int) { values = Array(repeating: 0, count: count) }
    func add(_ index: Int, _ value: Int) {
        lock.lock()
        values[index] += value
        lock.unlock()
    }
    var total: Int {
        lock.lock()
        defer { lock.unlock() }
        return values.reduce(0, +)
    }
}
