import Foundation
import LockProofCommerce
import LockProofConfiguration
import LockProofRedis
import Synchronization

/// What a run ran on, for the JSON reports: figures from two machines are compared knowing it.
public struct MachineInfo: Sendable, Codable, Equatable {
    /// Cores this process may use.
    public let cores: Int
    /// `Linux 6.1.0-…`, from uname.
    public let os: String
    /// `SHOW server_version`; nil when the server could not be asked.
    public var postgresqlVersion: String?
    /// `INFO server`'s redis_version; nil when the server could not be asked.
    public var redisVersion: String?

    enum CodingKeys: String, CodingKey {
        case cores, os
        case postgresqlVersion = "postgresql_version"
        case redisVersion = "redis_version"
    }

    /// This machine, without asking the servers.
    public static func local() -> MachineInfo {
        var name = utsname()
        uname(&name)
        func text<T>(_ field: T) -> String {
            withUnsafeBytes(of: field) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return MachineInfo(
            cores: ProcessInfo.processInfo.activeProcessorCount, os: "\(text(name.sysname)) \(text(name.release)) \(text(name.machine))",
            postgresqlVersion: nil, redisVersion: nil)
    }

    /// Versions already asked, per configuration: the servers do not change within a process.
    private static let probed = Mutex<[(configuration: ServerConfiguration, machine: MachineInfo)]>([])

    /// `probe`, asked once per process and configuration (a verify runs dozens of scenarios; each
    /// asking again opened two connections more). A server that did not answer is asked again next time.
    public static func probeOnce(_ configuration: ServerConfiguration) -> MachineInfo {
        if let known = probed.withLock({ $0.first { $0.configuration == configuration }?.machine }),
            known.postgresqlVersion != nil, known.redisVersion != nil
        {
            return known
        }
        let machine = probe(configuration)
        probed.withLock { cache in
            cache.removeAll { $0.configuration == configuration }
            cache.append((configuration, machine))
        }
        return machine
    }

    /// This machine and the versions of the servers `configuration` names (nil for one that does not answer).
    public static func probe(_ configuration: ServerConfiguration) -> MachineInfo {
        var machine = local()
        if let db = try? configuration.openDatabase(), let rows = try? db.query("SHOW server_version"), rows.rowCount > 0 {
            machine.postgresqlVersion = rows.string(0, 0)
        }
        if let redis = try? RedisConnection(endpoint: configuration.redis, commandTimeout: 2),
            let info = try? redis.checked(["INFO", "server"]).text
        {
            machine.redisVersion = info.split(whereSeparator: \.isNewline)
                .first { $0.hasPrefix("redis_version:") }
                .map { String($0.dropFirst("redis_version:".count)) }
        }
        return machine
    }
}
