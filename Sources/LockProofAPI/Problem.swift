/// An error answer, rendered as `application/problem+json` (RFC 9457).
public struct APIProblem: Error, Sendable, Equatable, CustomStringConvertible {
    /// Whether the operation happened: what a client may assume about the state after this answer.
    public enum Outcome: String, Sendable {
        /// Nothing was written (every 4xx, and a 503 refused before work).
        case notApplied = "not_applied"
        /// It may or may not have happened (a timeout or a lost session mid-transaction): look
        /// before retrying (GET the resource, or retry with the same Idempotency-Key).
        case unknown
    }

    public static let contentType = "application/problem+json"

    public var status: Int
    /// A short slug; the problem type URI is `/problems/<slug>` (docs/API.md lists them).
    public var slug: String
    public var title: String
    public var detail: String
    public var outcome: Outcome
    /// For 422: every field that was wrong.
    public var errors: [FieldProblem]
    /// Seconds, for 429 and 503.
    public var retryAfterSeconds: Int?
    /// For 405.
    public var allow: [String]

    public init(
        status: Int, slug: String, title: String, detail: String, outcome: Outcome = .notApplied, errors: [FieldProblem] = [],
        retryAfterSeconds: Int? = nil, allow: [String] = []
    ) {
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.outcome = outcome
        self.errors = errors
        self.retryAfterSeconds = retryAfterSeconds
        self.allow = allow
    }

    public var type: String { "/problems/\(slug)" }
    public var description: String { "\(status) \(title): \(detail)" }

    public func json(instance: String? = nil) -> String {
        var members: [(String, JSONValue)] = [
            ("type", .string(type)), ("title", .string(title)), ("status", .int(status)), ("detail", .string(detail)),
        ]
        if let instance { members.append(("instance", .string(String(instance.prefix(APILimits.maximumPathBytes))))) }
        members.append(("outcome", .string(outcome.rawValue)))
        if !errors.isEmpty {
            members.append(
                ("errors", .array(errors.map { .object([("field", .string($0.field)), ("message", .string($0.message))]) })))
        }
        return JSONWriter.write(.object(members))
    }

    // MARK: The problems of reading a request

    public static func noSuchPath(_ path: String) -> APIProblem {
        APIProblem(status: 404, slug: "no-such-path", title: "No such path", detail: "no route matches '\(path.prefix(120))'")
    }

    public static func methodNotAllowed(method: String, allowed: [String]) -> APIProblem {
        APIProblem(
            status: 405, slug: "method-not-allowed", title: "Method not allowed",
            detail: "\(method.prefix(20)) is not allowed here; use \(allowed.joined(separator: " or "))", allow: allowed)
    }

    public static func uriTooLong(bytes: Int?) -> APIProblem {
        APIProblem(
            status: 414, slug: "uri-too-long", title: "URI too long",
            detail: "\(bytes.map { "the path has \($0) bytes; " } ?? "")at most \(APILimits.maximumPathBytes) bytes of path are accepted")
    }

    public static func bodyTooLarge(bytes: Int?) -> APIProblem {
        APIProblem(
            status: 413, slug: "body-too-large", title: "Request body too large",
            detail: "\(bytes.map { "the body has \($0) bytes; " } ?? "")at most \(APILimits.maximumBodyBytes) bytes are accepted")
    }

    public static func unsupportedMediaType(_ contentType: String?) -> APIProblem {
        APIProblem(
            status: 415, slug: "unsupported-media-type", title: "Unsupported media type",
            detail: "send the body as application/json (got \(contentType.map { "'\($0.prefix(80))'" } ?? "no Content-Type"))")
    }

    public static func malformedJSON(_ detail: String) -> APIProblem {
        APIProblem(status: 400, slug: "malformed-json", title: "Malformed JSON", detail: String(detail.prefix(300)))
    }

    public static func invalid(_ errors: [FieldProblem]) -> APIProblem {
        let shown = Array(errors.prefix(20))
        return APIProblem(
            status: 422, slug: "invalid-request", title: "Invalid request",
            detail: shown.map { "\($0.field): \($0.message)" }.joined(separator: "; "), errors: shown)
    }
}

/// One field that was wrong: its name (a JSON path such as `items[2].quantity`, or a header or
/// path parameter name) and what was wrong with it.
public struct FieldProblem: Sendable, Equatable {
    public let field: String
    public let message: String
    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }
}
