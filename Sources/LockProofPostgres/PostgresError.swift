/// A failure reported by PostgreSQL or libpq, classified by SQLSTATE.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable {
        /// 40P01
        case deadlock
        /// 40001
        case serializationFailure
        /// 23505
        case uniqueViolation
        /// 23514
        case checkViolation
        /// 23503
        case foreignKeyViolation
        /// 55P03
        case lockNotAvailable
        /// 57014 (statement_timeout or a cancel request)
        case queryCanceled
        /// 57P01..57P03, class 08, or the socket closed: the session is gone.
        case connectionLost
        /// Could not open a session at all.
        case connectionFailed
        /// Anything else.
        case other
    }

    public let kind: Kind
    public let sqlState: String?
    public let message: String
    /// The constraint named by the server (unique, check and foreign key violations).
    public let constraint: String?

    public init(kind: Kind, sqlState: String?, message: String, constraint: String? = nil) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
        self.constraint = constraint
    }

    public static func kind(forSQLState state: String?) -> Kind {
        guard let state else { return .other }
        switch state {
        case "40P01": return .deadlock
        case "40001": return .serializationFailure
        case "23505": return .uniqueViolation
        case "23514": return .checkViolation
        case "23503": return .foreignKeyViolation
        case "55P03": return .lockNotAvailable
        case "57014": return .queryCanceled
        case "57P01", "57P02", "57P03": return .connectionLost
        default: return state.hasPrefix("08") ? .connectionLost : .other
        }
    }

    /// True for the errors after which the whole transaction may be retried.
    public var isTransient: Bool {
        kind == .deadlock || kind == .serializationFailure || kind == .lockNotAvailable
    }

    public var description: String {
        var text = "PostgreSQL \(kind.rawValue)"
        if let sqlState { text += " [\(sqlState)]" }
        if let constraint { text += " on \(constraint)" }
        return text + ": \(message)"
    }
}
