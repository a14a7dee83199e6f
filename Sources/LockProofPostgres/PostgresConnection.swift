import CLibPQ
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A value bound to a statement parameter. Every SQL value travels as a bound parameter.
public enum PostgresValue: Sendable, Equatable {
    case null
    case int(Int64)
    case text(String)
    case bool(Bool)
    case double(Double)

    var wireText: String? {
        switch self {
        case .null: return nil
        case .int(let value): return String(value)
        case .text(let value): return value
        case .bool(let value): return value ? "t" : "f"
        case .double(let value): return String(value)
        }
    }
}

public protocol PostgresBindable {
    var postgresValue: PostgresValue { get }
}
extension Int: PostgresBindable { public var postgresValue: PostgresValue { .int(Int64(self)) } }
extension Int64: PostgresBindable { public var postgresValue: PostgresValue { .int(self) } }
extension String: PostgresBindable { public var postgresValue: PostgresValue { .text(self) } }
extension Bool: PostgresBindable { public var postgresValue: PostgresValue { .bool(self) } }
extension Double: PostgresBindable { public var postgresValue: PostgresValue { .double(self) } }
extension Optional: PostgresBindable where Wrapped: PostgresBindable {
    public var postgresValue: PostgresValue { self?.postgresValue ?? .null }
}
extension PostgresValue: PostgresBindable { public var postgresValue: PostgresValue { self } }

public enum IsolationLevel: String, Sendable, CaseIterable {
    case readCommitted = "READ COMMITTED"
    case repeatableRead = "REPEATABLE READ"
    case serializable = "SERIALIZABLE"

    /// The statement that opens a transaction at this level (a literal: no string built per transaction).
    var begin: String {
        switch self {
        case .readCommitted: return "BEGIN ISOLATION LEVEL READ COMMITTED"
        case .repeatableRead: return "BEGIN ISOLATION LEVEL REPEATABLE READ"
        case .serializable: return "BEGIN ISOLATION LEVEL SERIALIZABLE"
        }
    }
}

/// One PostgreSQL session over libpq. Not thread-safe: each virtual client owns its own.
/// Every call blocks the calling thread, so call it from a dedicated thread, never from
/// Swift concurrency's cooperative pool.
public final class PostgresConnection {
    private var conn: OpaquePointer?
    private var preparedNames: [String: String] = [:]
    private var nextStatementNumber = 0
    public private(set) var inTransaction = false
    public let conninfo: String
    /// What may be printed about the server: libpq's parse of `conninfo`, without the password.
    public let target: PostgresTarget
    public let connectTimeoutSeconds: Int
    /// Sees every statement this session completed, with its parameters and first row. Nil (the
    /// default) costs one check per statement; the benchmark sets it to derive pgbench scripts
    /// from exactly what a strategy sends.
    public var statementObserver: ((PostgresStatementTrace) -> Void)?

    /// libpq waits forever for a server that accepts the connection and never answers unless
    /// `connect_timeout` is set; 5 s unless the caller or the connection string says otherwise.
    public static let defaultConnectTimeoutSeconds = 5

    /// Opens a session from a `postgresql://` URL or a `key=value` conninfo string. Connecting
    /// takes at most `connectTimeoutSeconds` (libpq counts at least 2) per address tried, unless
    /// the string sets its own `connect_timeout`.
    public init(_ conninfo: String, connectTimeoutSeconds: Int = PostgresConnection.defaultConnectTimeoutSeconds) throws {
        self.conninfo = conninfo
        self.target = try PostgresTarget(conninfo: conninfo)
        self.connectTimeoutSeconds = connectTimeoutSeconds
        try connect()
    }

    deinit { PQfinish(conn) }

    private func connect() throws {
        PQfinish(conn)
        preparedNames = [:]
        inTransaction = false
        // connect_timeout first, then the string (expanded from dbname): a later keyword wins, so a
        // connect_timeout written in the string takes precedence over the default.
        let keywords = ["connect_timeout", "dbname"]
        let values = [String(max(1, connectTimeoutSeconds)), conninfo]
        conn = withCStringArray(keywords) { keywordPointers in
            withCStringArray(values) { valuePointers in
                PQconnectdbParams(keywordPointers + [nil], valuePointers + [nil], 1)
            }
        }
        guard let conn, PQstatus(conn) == CONNECTION_OK else {
            let message = conn.map { String(cString: PQerrorMessage($0)) } ?? "out of memory"
            throw PostgresError(
                kind: .connectionFailed, sqlState: nil,
                message: "cannot connect to \(target): \(target.scrub(message.trimmed))")
        }
        // Silence NOTICE messages (e.g. "relation already exists, skipping") on stderr.
        PQsetNoticeProcessor(conn, { _, _ in }, nil)
    }

    /// Reopens the session if the server dropped it.
    public func reconnectIfNeeded() throws {
        if conn == nil || PQstatus(conn) != CONNECTION_OK { try connect() }
    }

    public var isConnected: Bool { conn != nil && PQstatus(conn) == CONNECTION_OK }

    /// The server process id of this session (for pg_terminate_backend / pg_cancel_backend).
    public var backendPID: Int32 { PQbackendPID(conn) }

    /// Runs a statement with bound parameters, preparing it once per session.
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PostgresBindable] = []) throws -> PostgresResult {
        let values = parameters.map { $0.postgresValue.wireText }
        let name = try preparedName(for: sql, parameterCount: values.count)
        let result = withCStringArray(values) { pointers in
            PQexecPrepared(conn, name, Int32(values.count), pointers, nil, nil, 0)
        }
        let checked = try check(result)
        statementObserver?(PostgresStatementTrace(sql: sql, parameters: values, result: checked, simpleProtocol: false))
        return checked
    }

    /// Runs statements without parameters (DDL, SET, BEGIN/COMMIT): the simple query protocol.
    @discardableResult
    public func execute(_ sql: String) throws -> PostgresResult {
        let checked = try check(PQexec(conn, sql))
        statementObserver?(PostgresStatementTrace(sql: sql, parameters: [], result: checked, simpleProtocol: true))
        return checked
    }

    /// Sets `lock_timeout` for the session (0 = wait forever).
    public func setLockTimeout(milliseconds: Int) throws {
        try execute("SET lock_timeout = \(max(0, milliseconds))")
    }

    /// Sets `statement_timeout` for the session (0 = no limit).
    public func setStatementTimeout(milliseconds: Int) throws {
        try execute("SET statement_timeout = \(max(0, milliseconds))")
    }

    /// Runs `body` in a transaction: commits when it returns, rolls back when it throws.
    @discardableResult
    public func transaction<T>(
        isolation: IsolationLevel = .readCommitted, _ body: (PostgresConnection) throws -> T
    ) throws -> T {
        try execute(isolation.begin)
        inTransaction = true
        do {
            let value = try body(self)
            try execute("COMMIT")
            inTransaction = false
            return value
        } catch {
            rollbackQuietly()
            throw error
        }
    }

    /// Rolls back the open transaction, if any, ignoring errors (the session may be gone).
    public func rollbackQuietly() {
        inTransaction = false
        guard isConnected else { return }
        if let result = PQexec(conn, "ROLLBACK") { PQclear(result) }
    }

    private func preparedName(for sql: String, parameterCount: Int) throws -> String {
        if let name = preparedNames[sql] { return name }
        nextStatementNumber += 1
        let name = "lp_\(nextStatementNumber)"
        _ = try check(PQprepare(conn, name, sql, Int32(parameterCount), nil))
        preparedNames[sql] = name
        return name
    }

    private func check(_ result: OpaquePointer?) throws -> PostgresResult {
        guard let result else { throw currentError(nil) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return PostgresResult(result)
        default:
            let error = currentError(result)
            PQclear(result)
            throw error
        }
    }

    private func currentError(_ result: OpaquePointer?) -> PostgresError {
        func field(_ code: Int32) -> String? {
            guard let result, let value = PQresultErrorField(result, code) else { return nil }
            return String(cString: value)
        }
        let sqlState = field(LOCKPROOF_PG_DIAG_SQLSTATE)
        // libpq's own messages (a lost connection, a failed reconnect) are cleaned of the password.
        let message = target.scrub(
            field(LOCKPROOF_PG_DIAG_MESSAGE_PRIMARY)
                ?? conn.map { String(cString: PQerrorMessage($0)).trimmed } ?? "no connection")
        var kind = PostgresError.kind(forSQLState: sqlState)
        if kind == .other, conn == nil || PQstatus(conn) != CONNECTION_OK { kind = .connectionLost }
        if kind == .connectionLost { preparedNames = [:] }
        return PostgresError(
            kind: kind, sqlState: sqlState, message: message,
            constraint: field(LOCKPROOF_PG_DIAG_CONSTRAINT_NAME))
    }
}

/// One completed statement as the session sent it, for tracing.
public struct PostgresStatementTrace: Sendable, Equatable {
    public let sql: String
    /// The bound parameters in wire text (nil = NULL).
    public let parameters: [String?]
    public let columns: [String]
    /// The first row's values, when the result has rows.
    public let firstRow: [String?]
    public let rowCount: Int
    /// Sent with the simple query protocol (`execute`: BEGIN, COMMIT, SET) rather than prepared.
    public let simpleProtocol: Bool

    public init(
        sql: String, parameters: [String?], columns: [String], firstRow: [String?], rowCount: Int, simpleProtocol: Bool
    ) {
        self.sql = sql
        self.parameters = parameters
        self.columns = columns
        self.firstRow = firstRow
        self.rowCount = rowCount
        self.simpleProtocol = simpleProtocol
    }

    init(sql: String, parameters: [String?], result: PostgresResult, simpleProtocol: Bool) {
        self.sql = sql
        self.parameters = parameters
        self.simpleProtocol = simpleProtocol
        rowCount = result.rowCount
        columns = (0..<result.columnCount).map { result.columnName($0) }
        firstRow = rowCount > 0 ? (0..<result.columnCount).map { result.string(0, $0) } : []
    }
}

/// A result set in text format with typed accessors.
public final class PostgresResult {
    private let result: OpaquePointer

    init(_ result: OpaquePointer) { self.result = result }
    deinit { PQclear(result) }

    public var rowCount: Int { Int(PQntuples(result)) }
    public var columnCount: Int { Int(PQnfields(result)) }
    public func columnName(_ column: Int) -> String { String(cString: PQfname(result, Int32(column))) }
    /// Rows touched by INSERT/UPDATE/DELETE.
    public var affectedRows: Int { Int(String(cString: PQcmdTuples(result))) ?? 0 }

    public func isNull(_ row: Int, _ column: Int) -> Bool {
        PQgetisnull(result, Int32(row), Int32(column)) == 1
    }

    public func string(_ row: Int, _ column: Int) -> String? {
        guard row < rowCount, !isNull(row, column) else { return nil }
        return String(cString: PQgetvalue(result, Int32(row), Int32(column)))
    }

    public func int(_ row: Int, _ column: Int) -> Int? {
        string(row, column).flatMap { Int($0) }
    }

    public func double(_ row: Int, _ column: Int) -> Double? {
        string(row, column).flatMap { Double($0) }
    }

    public func bool(_ row: Int, _ column: Int) -> Bool? {
        string(row, column).map { $0 == "t" }
    }
}

/// The strings as NUL-terminated C strings for libpq, all in one buffer: a `strdup` of each went
/// through a temporary `utf8CString` array per string and cost more than libpq's own work for the
/// statement (callgrind, docs/BENCH.md).
private func withCStringArray<R>(_ strings: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(strings.reduce(0) { $0 + ($1?.utf8.count ?? 0) + 1 })
    var offsets: [Int] = []
    offsets.reserveCapacity(strings.count)
    for string in strings {
        guard let string else {
            offsets.append(-1)
            continue
        }
        offsets.append(bytes.count)
        bytes.append(contentsOf: string.utf8)
        bytes.append(0)
    }
    return bytes.withUnsafeBufferPointer { buffer in
        buffer.withMemoryRebound(to: CChar.self) { characters in
            body(offsets.map { $0 < 0 ? nil : UnsafePointer(characters.baseAddress! + $0) })
        }
    }
}

extension String {
    var trimmed: String {
        var text = Substring(self)
        while let last = text.last, last.isWhitespace { text = text.dropLast() }
        return String(text)
    }
}
