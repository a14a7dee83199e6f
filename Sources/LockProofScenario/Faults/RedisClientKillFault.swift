import LockProofCommerce
import LockProofRedis

/// `redis-client-kill`: at `start` and then every `interval` until `start + duration`, Redis closes
/// `clients` connections named `lockproof-client` (the virtual clients' own or pooled lock
/// connections in process, serve's through a target), picked at random, with `CLIENT KILL ID`: a
/// dropped connection, as a proxy's idle timeout or a network blip does it. The owner's next command
/// fails, which the circuit breaker counts as one failure (the operation falls back to its database
/// locks), and the command after it reconnects. Isolated drops among successes must never open a
/// breaker that counts consecutive failures.
final class RedisClientKillFault: FaultInjector {
    static let kind = FaultKind.redisClientKill
    static let timing = FaultTiming.strikes
    static let parameters = [
        FaultParameter(name: "clients", range: 1...1_000, defaultValue: 1, help: "client connections closed per strike")
    ]
    static let touchesServers = true
    private let spec: FaultSpec
    private let context: FaultContext
    private var connection: RedisConnection?

    init(spec: FaultSpec, context: FaultContext) {
        self.spec = spec
        self.context = context
    }

    func prepare() throws {
        guard let servers = context.servers else { throw FaultRefused(message: "no throwaway Redis whose clients to disconnect") }
        connection = try RedisConnection(endpoint: servers.primary, commandTimeout: 2)
    }

    func begin(into record: inout FaultRecord) throws {
        guard let connection else { return }
        guard let list = try connection.checked(["CLIENT", "LIST", "TYPE", "normal"]).text else {
            throw FaultRefused(message: "CLIENT LIST gave no text")
        }
        let ids = Self.clientIDs(in: list, named: CommerceClient.applicationName).shuffled()
            .prefix(Int(spec.parameter("clients")))
        var closed: [String] = []
        for id in ids where try connection.checked(["CLIENT", "KILL", "ID", id]).integer == 1 {
            closed.append("redis client id \(id)")
        }
        record.targets = closed
        record.hits = closed.count
        record.end = record.start
    }

    /// The ids of `CLIENT LIST`'s connections with this name (`id=7 addr=… name=lockproof-client …`).
    static func clientIDs(in list: String, named name: String) -> [String] {
        list.split(separator: "\n").compactMap { line in
            let fields = Dictionary(
                line.split(separator: " ").compactMap { field -> (Substring, Substring)? in
                    guard let equals = field.firstIndex(of: "=") else { return nil }
                    return (field[..<equals], field[field.index(after: equals)...])
                }, uniquingKeysWith: { first, _ in first })
            guard fields["name"].map(String.init) == name, let id = fields["id"] else { return nil }
            return String(id)
        }
    }

    func restore() { connection = nil }
}
