/// The HTTP API of `lockproof serve`, as pure functions: which route a method and path name, and
/// what request a body and headers make, validated before anything touches a database. No I/O
/// here, so that it is fuzzed and unit-tested without servers (see `api/openapi.yaml`).

/// Every route, by the method and template a Spring controller would map.
public enum APIRoute: String, Sendable, CaseIterable {
    case getUser = "GET /users/{userId}"
    case chargeUser = "POST /users/{userId}/charges"
    case spendUser = "POST /users/{userId}/spends"
    case addCartItem = "POST /users/{userId}/cart/items"
    case setCartItem = "PUT /users/{userId}/cart/items/{productId}"
    case getCoupon = "GET /coupons/{couponId}"
    case issueCoupon = "POST /coupons/{couponId}/issues"
    case createOrder = "POST /orders"
    case getOrder = "GET /orders/{orderId}"
    case payOrder = "POST /orders/{orderId}/payment"
    case completeOrder = "POST /orders/{orderId}/complete"
    case cancelOrder = "POST /orders/{orderId}/cancel"

    public var method: String { String(rawValue.prefix { $0 != " " }) }
    public var template: String { String(rawValue.drop { $0 != " " }.dropFirst()) }

    /// Whether the route takes a JSON body (the others refuse one that is not empty).
    public var takesBody: Bool {
        switch self {
        case .chargeUser, .spendUser, .addCartItem, .setCartItem, .issueCoupon, .createOrder: return true
        case .getUser, .getCoupon, .getOrder, .payOrder, .completeOrder, .cancelOrder: return false
        }
    }

    /// The `route` label of the HTTP metrics (and the OpenAPI operationId, snake-cased): a fixed
    /// set of safe words, never an id.
    public var label: String {
        switch self {
        case .getUser: return "get_user"
        case .chargeUser: return "charge_user"
        case .spendUser: return "spend_user"
        case .addCartItem: return "add_cart_item"
        case .setCartItem: return "set_cart_item"
        case .getCoupon: return "get_coupon"
        case .issueCoupon: return "issue_coupon"
        case .createOrder: return "create_order"
        case .getOrder: return "get_order"
        case .payOrder: return "pay_order"
        case .completeOrder: return "complete_order"
        case .cancelOrder: return "cancel_order"
        }
    }

    /// Whether the per-user rate limit applies: the routes whose request names a user (a path id
    /// or `user_id`); the order routes name an order only.
    public var rateLimited: Bool {
        switch self {
        case .getUser, .chargeUser, .spendUser, .addCartItem, .setCartItem, .issueCoupon, .createOrder: return true
        case .getCoupon, .getOrder, .payOrder, .completeOrder, .cancelOrder: return false
        }
    }

    /// The `route` label value for requests no route matched (404, 405, 413, 414): one series,
    /// not one per path.
    public static let unmatchedLabel = "unmatched"
    public static var labelValues: [String] { allCases.map(\.label) + [unmatchedLabel] }
}

/// Bounds of what a request may ask for: a document's limits, enforced before any database work.
public enum APILimits {
    /// Request bodies above this are refused with 413 (the JSON bodies here are tiny).
    public static let maximumBodyBytes = 16 * 1024
    /// Paths above this are refused with 414.
    public static let maximumPathBytes = 1_024
    /// A charge: 1 to 10^12 (minor units) at once.
    public static let maximumChargeAmount: Int64 = 1_000_000_000_000
    /// A spend: 1 to 10^12 (minor units) at once, like a charge (the daily limit refuses the rest).
    public static let maximumSpendAmount: Int64 = 1_000_000_000_000
    /// A balance a charge may reach: charges that would take it above are refused (422), so that
    /// no balance comes near BIGINT's limit (9.2 × 10^18) even with every worker racing.
    public static let maximumBalance: Int64 = 1_000_000_000_000_000
    /// Items of an order, and the quantity of one line (of an order or a cart).
    public static let maximumOrderItems = 50
    public static let maximumQuantity: Int64 = 10_000
    /// An idempotency key: 1–128 characters of [A-Za-z0-9._:-].
    public static let maximumIdempotencyKeyLength = 128
    /// Ids are positive BIGINTs.
    public static let maximumId: Int64 = Int64.max
}

/// A validated request: everything a handler needs, typed.
public enum APIRequest: Sendable, Equatable {
    case getUser(userId: Int64)
    case chargeUser(userId: Int64, amount: Int64, idempotencyKey: String?)
    case spendUser(userId: Int64, amount: Int64)
    case addCartItem(userId: Int64, productId: Int64, quantity: Int64)
    case setCartItem(userId: Int64, productId: Int64, quantity: Int64)
    case getCoupon(couponId: Int64)
    case issueCoupon(couponId: Int64, userId: Int64)
    case createOrder(userId: Int64, items: [OrderLine])
    case getOrder(orderId: Int64)
    case payOrder(orderId: Int64)
    case completeOrder(orderId: Int64)
    case cancelOrder(orderId: Int64)

    public struct OrderLine: Sendable, Equatable {
        public let productId: Int64
        public let quantity: Int64
        public init(productId: Int64, quantity: Int64) {
            self.productId = productId
            self.quantity = quantity
        }
    }

    public var route: APIRoute {
        switch self {
        case .getUser: return .getUser
        case .chargeUser: return .chargeUser
        case .spendUser: return .spendUser
        case .addCartItem: return .addCartItem
        case .setCartItem: return .setCartItem
        case .getCoupon: return .getCoupon
        case .issueCoupon: return .issueCoupon
        case .createOrder: return .createOrder
        case .getOrder: return .getOrder
        case .payOrder: return .payOrder
        case .completeOrder: return .completeOrder
        case .cancelOrder: return .cancelOrder
        }
    }

    /// The user a per-user rate limit counts this request against, when the request names one.
    public var rateLimitedUser: Int64? {
        switch self {
        case .getUser(let user), .chargeUser(let user, _, _), .spendUser(let user, _), .addCartItem(let user, _, _), .setCartItem(let user, _, _),
            .issueCoupon(_, let user), .createOrder(let user, _):
            return user
        case .getCoupon, .getOrder, .payOrder, .completeOrder, .cancelOrder:
            return nil
        }
    }
}

/// What arrived, as the HTTP layer hands it over (header names lower-cased).
public struct APIRawRequest: Sendable, Equatable {
    public var method: String
    public var path: String
    public var contentType: String?
    public var idempotencyKey: String?
    public var body: [UInt8]

    public init(method: String, path: String, contentType: String? = nil, idempotencyKey: String? = nil, body: [UInt8] = []) {
        self.method = method
        self.path = path
        self.contentType = contentType
        self.idempotencyKey = idempotencyKey
        self.body = body
    }
}

/// Matching a path to a route, and reading and validating a request.
public enum APIRouter {
    /// The route and the path parameters' raw text, or nil when no template matches the path.
    /// The method is not checked here (a known path with another method is a 405, not a 404).
    static func match(path: String) -> [(route: APIRoute, parameters: [String])] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        guard path.hasPrefix("/") else { return [] }
        var matches: [(APIRoute, [String])] = []
        for route in APIRoute.allCases {
            let template = route.template.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
            guard template.count == segments.count else { continue }
            var parameters: [String] = []
            var matched = true
            for (pattern, segment) in zip(template, segments) {
                if pattern.hasPrefix("{") {
                    guard !segment.isEmpty else {
                        matched = false
                        break
                    }
                    parameters.append(String(segment))
                } else if pattern != segment {
                    matched = false
                    break
                }
            }
            if matched { matches.append((route, parameters)) }
        }
        return matches
    }

    /// Reads a request. Throws an `APIProblem` (404 no such path, 405 with the allowed methods,
    /// 413/414 bounds, 415 content type, 400 malformed JSON, 422 invalid values); never touches a
    /// database.
    public static func read(_ raw: APIRawRequest) throws(APIProblem) -> APIRequest {
        guard raw.path.utf8.count <= APILimits.maximumPathBytes else {
            throw APIProblem.uriTooLong(bytes: raw.path.utf8.count)
        }
        guard raw.body.count <= APILimits.maximumBodyBytes else { throw APIProblem.bodyTooLarge(bytes: raw.body.count) }
        let candidates = match(path: raw.path)
        guard !candidates.isEmpty else { throw APIProblem.noSuchPath(raw.path) }
        // HEAD is GET without the body (RFC 9110 §9.3.2).
        let method = raw.method == "HEAD" ? "GET" : raw.method
        guard let (route, parameters) = candidates.first(where: { $0.route.method == method }) else {
            throw APIProblem.methodNotAllowed(method: raw.method, allowed: allowedMethods(candidates.map(\.route)))
        }
        let ids = try parameters.enumerated().map { (position, text) throws(APIProblem) -> Int64 in
            try pathId(text, name: parameterNames(route)[position])
        }
        let body: [(String, JSONValue)]
        if route.takesBody {
            body = try jsonObject(raw)
        } else {
            guard raw.body.isEmpty else {
                throw APIProblem.invalid([FieldProblem(field: "body", message: "\(route.rawValue) takes no body")])
            }
            body = []
        }
        var reader = FieldReader(members: body)
        let request: APIRequest
        switch route {
        case .getUser: request = .getUser(userId: ids[0])
        case .chargeUser:
            let amount = reader.integer("amount", in: 1...APILimits.maximumChargeAmount)
            let key = idempotencyKey(raw.idempotencyKey, reader: &reader)
            try reader.finish()
            request = .chargeUser(userId: ids[0], amount: amount!, idempotencyKey: key)
        case .spendUser:
            let amount = reader.integer("amount", in: 1...APILimits.maximumSpendAmount)
            try reader.finish()
            request = .spendUser(userId: ids[0], amount: amount!)
        case .addCartItem:
            let product = reader.integer("product_id", in: 1...APILimits.maximumId)
            let quantity = reader.integer("quantity", in: 1...APILimits.maximumQuantity)
            try reader.finish()
            request = .addCartItem(userId: ids[0], productId: product!, quantity: quantity!)
        case .setCartItem:
            let quantity = reader.integer("quantity", in: 0...APILimits.maximumQuantity)
            try reader.finish()
            request = .setCartItem(userId: ids[0], productId: ids[1], quantity: quantity!)
        case .getCoupon: request = .getCoupon(couponId: ids[0])
        case .issueCoupon:
            let user = reader.integer("user_id", in: 1...APILimits.maximumId)
            try reader.finish()
            request = .issueCoupon(couponId: ids[0], userId: user!)
        case .createOrder:
            let user = reader.integer("user_id", in: 1...APILimits.maximumId)
            let items = reader.orderLines("items")
            try reader.finish()
            request = .createOrder(userId: user!, items: items!)
        case .getOrder: request = .getOrder(orderId: ids[0])
        case .payOrder: request = .payOrder(orderId: ids[0])
        case .completeOrder: request = .completeOrder(orderId: ids[0])
        case .cancelOrder: request = .cancelOrder(orderId: ids[0])
        }
        return request
    }

    /// The metrics label of a request: its route's, or `unmatched` when no route has this method and path.
    public static func routeLabel(method: String, path: String) -> String {
        let method = method == "HEAD" ? "GET" : method
        return match(path: path).first(where: { $0.route.method == method })?.route.label ?? APIRoute.unmatchedLabel
    }

    static func parameterNames(_ route: APIRoute) -> [String] {
        route.template.split(separator: "/").filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) }
    }

    static func allowedMethods(_ routes: [APIRoute]) -> [String] {
        var methods = routes.map(\.method)
        if methods.contains("GET") { methods.append("HEAD") }
        return methods
    }

    /// A path id: decimal digits, 1 to 2^63 − 1, no sign, no leading zero.
    static func pathId(_ text: String, name: String) throws(APIProblem) -> Int64 {
        let shown = String(text.prefix(40))
        guard !text.isEmpty, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else {
            throw APIProblem.invalid([FieldProblem(field: name, message: "'\(shown)' is not a positive integer id")])
        }
        guard text.first != "0" else {
            throw APIProblem.invalid([FieldProblem(field: name, message: "'\(shown)' is not a positive integer id (1 or more, no leading zero)")])
        }
        guard let value = Int64(text) else {
            throw APIProblem.invalid([FieldProblem(field: name, message: "'\(shown)' is above the largest id, \(Int64.max)")])
        }
        return value
    }

    static func jsonObject(_ raw: APIRawRequest) throws(APIProblem) -> [(String, JSONValue)] {
        let mediaType = raw.contentType.map { String($0.prefix { $0 != ";" }).trimmingSpaces().lowercased() }
        guard mediaType == "application/json" else {
            throw APIProblem.unsupportedMediaType(raw.contentType)
        }
        guard !raw.body.isEmpty else { throw APIProblem.malformedJSON("the body is empty; a JSON object is expected") }
        let value: JSONValue
        do {
            value = try JSONReader.parse(raw.body)
        } catch let error as JSONSyntaxError {
            throw APIProblem.malformedJSON(error.description)
        } catch {
            throw APIProblem.malformedJSON("\(error)")
        }
        guard case .object(let members) = value else {
            throw APIProblem.invalid([FieldProblem(field: "body", message: "expected a JSON object, got \(value.typeName)")])
        }
        return members
    }

    static func idempotencyKey(_ header: String?, reader: inout FieldReader) -> String? {
        guard let key = header else { return nil }
        let allowed = key.utf8.allSatisfy { byte in
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                || [UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "-")].contains(byte)
        }
        guard !key.isEmpty, key.utf8.count <= APILimits.maximumIdempotencyKeyLength, allowed else {
            reader.problems.append(
                FieldProblem(
                    field: "Idempotency-Key",
                    message: "must be 1–\(APILimits.maximumIdempotencyKeyLength) characters of A–Z a–z 0–9 . _ : -"))
            return nil
        }
        return key
    }
}
