import LockProofConfiguration
import Foundation
import LockProofAPI
import LockProofCommerce
import LockProofHTTP
import LockProofLocking
import LockProofMetrics
import LockProofPostgres
import LockProofRedis

/// The HTTP API of `lockproof serve`: each request read and validated by `APIRouter` (no database
/// work for a bad one), then run by the case's public entry point under the instance's strategy,
/// on a `CommerceClient` made for the request over the instance's shared pools, and answered as
/// JSON or as a problem document. Runs on the API server's worker threads.
public final class APIService: @unchecked Sendable {
    public struct Options: Sendable {
        public var strategies = APIStrategies()
        /// Worker threads in front (Tomcat's server.tomcat.threads.max default: 200).
        public var workers = 200
        /// PostgreSQL sessions behind (HikariCP's maximumPoolSize default: 10).
        public var connections = 10
        /// Redis connections for the distributed locks and the rate limit (Redisson's default pool: 64).
        public var redisConnections = 64
        /// How long a worker waits for a pooled connection (HikariCP's connectionTimeout: 30 s).
        public var poolWaitSeconds = 30.0
        /// Requests waiting for a worker before new ones get 503 (Tomcat's acceptCount default: 100).
        public var queueCapacity = 100
        /// Per-user request rate; nil = no limit (the default).
        public var rateLimit: RateLimit?
        public var settings = CommerceSettings()
        public init() {}
    }

    public let options: Options
    public let metrics: LockProofMetrics
    private let configuration: ServerConfiguration
    private let shared: SharedServices
    public let pools: ClientPools
    private let gateway: any PaymentGateway

    public init(
        options: Options, configuration: ServerConfiguration, shared: SharedServices, metrics: LockProofMetrics,
        gateway: any PaymentGateway
    ) {
        self.options = options
        self.configuration = configuration
        self.shared = shared
        self.metrics = metrics
        self.gateway = gateway
        pools = ClientPools(
            configuration: configuration, settings: options.settings, postgres: options.connections,
            redis: options.redisConnections, waitSeconds: options.poolWaitSeconds)
    }

    public func close() { pools.close() }

    /// The server options this service wants (worker count, queue, bounds).
    public var serverOptions: APIServer.Options {
        var server = APIServer.Options()
        server.workers = options.workers
        server.queueCapacity = options.queueCapacity
        server.maximumBodyBytes = APILimits.maximumBodyBytes
        server.maximumPathBytes = APILimits.maximumPathBytes
        server.headerNames = ["content-type", "idempotency-key"]
        let metrics = metrics
        server.ownAnswerObserver = { response in
            metrics.recordHTTPRequest(route: APIRoute.unmatchedLabel, status: response.status, seconds: 0)
        }
        return server
    }

    /// An API server on `address` answering through this service.
    public func makeServer(address: HTTPBindAddress) -> APIServer {
        APIServer(
            address: address, options: serverOptions, handler: { [self] request in handle(request) },
            tooLarge: Self.response(.bodyTooLarge(bytes: nil), instance: nil),
            uriTooLong: Self.response(.uriTooLong(bytes: nil), instance: nil),
            overloaded: Self.response(Self.overloadedProblem, instance: nil))
    }

    static let overloadedProblem = APIProblem(
        status: 503, slug: "overloaded", title: "Service overloaded",
        detail: "every worker is busy and the queue is full; nothing was done", retryAfterSeconds: 1)

    // MARK: Handling

    public func handle(_ request: HTTPBodyRequest) -> HTTPResponse {
        let started = monotonicSeconds()
        let raw = APIRawRequest(
            method: request.method, path: request.path, contentType: request.headers["content-type"],
            idempotencyKey: request.headers["idempotency-key"], body: request.body)
        let routeLabel: String
        let response: HTTPResponse
        do {
            let parsed = try APIRouter.read(raw)
            routeLabel = parsed.route.label
            response = run(parsed, path: request.path)
        } catch {
            // Refused before any work: no route label is known for a path no route matches, and
            // an invalid request of a known route is counted under `unmatched` too (it never ran).
            routeLabel = APIRouter.routeLabel(method: request.method, path: request.path)
            response = Self.response(error, instance: request.path)
        }
        metrics.recordHTTPRequest(route: routeLabel, status: response.status, seconds: monotonicSeconds() - started)
        return response
    }

    private func run(_ request: APIRequest, path: String) -> HTTPResponse {
        if let limit = options.rateLimit, let user = request.rateLimitedUser, let refusal = rateLimited(user: user, limit: limit) {
            metrics.recordRateLimited(route: request.route.label)
            return Self.response(refusal, instance: path)
        }
        do {
            let client = try CommerceClient(
                configuration: configuration, shared: shared, events: metrics.eventSink, settings: options.settings,
                gateway: gateway, pools: pools)
            defer { client.releaseConnections() }
            let (status, body, headers) = try execute(request, client: client)
            return HTTPResponse(
                status: status, contentType: "application/json", body: Array(JSONWriter.write(body).utf8), extraHeaders: headers)
        } catch {
            return Self.response(Self.problem(for: error), instance: path)
        }
    }

    private func timed<T>(_ caseName: CaseName, _ body: () throws -> T) throws -> T {
        let started = monotonicSeconds()
        let strategy = options.strategies.strategyName(of: caseName)
        do {
            let result = try body()
            metrics.recordOperation(case: caseName, strategy: strategy, outcome: .success, seconds: monotonicSeconds() - started)
            return result
        } catch {
            metrics.recordOperation(
                case: caseName, strategy: strategy, outcome: OperationOutcome.classify(error), seconds: monotonicSeconds() - started)
            throw error
        }
    }

    private func execute(_ request: APIRequest, client: CommerceClient) throws -> (Int, JSONValue, [HTTPHeader]) {
        let strategies = options.strategies
        switch request {
        case .getUser(let userId):
            let row = try client.withDatabase { try $0.query("SELECT id, balance, version FROM users WHERE id = $1", [userId]) }
            guard row.rowCount == 1 else { throw DomainError.notFound(entity: "user", id: Int(userId)) }
            return (200, .object([("id", .int(row.int(0, 0)!)), ("balance", .int(row.int(0, 1)!)), ("version", .int(row.int(0, 2)!))]), [])

        case .chargeUser(let userId, let amount, let key):
            // The balance ceiling: a charge that would take the balance above it is refused, so
            // that no arithmetic on a balance can overflow (checked before the case runs; racing
            // charges may overshoot it by at most workers × the largest charge, far below BIGINT).
            let balance = try client.withDatabase { try $0.query("SELECT balance FROM users WHERE id = $1", [userId]) }.int(0, 0)
            guard let balance else { throw DomainError.notFound(entity: "user", id: Int(userId)) }
            guard Int64(balance) <= APILimits.maximumBalance - amount else {
                throw APIProblem(
                    status: 409, slug: "balance-limit", title: "Balance limit reached",
                    detail: "user \(userId) has balance \(balance); a charge of \(amount) would exceed the limit of \(APILimits.maximumBalance)")
            }
            let result = try timed(.chargeBalance) {
                try ChargeBalance(client: client, strategy: strategies.chargeBalance).charge(
                    userId: Int(userId), amount: Int(amount), idempotencyKey: key)
            }
            return (
                200,
                .object([
                    ("user_id", .int(result.userId)), ("balance", .int(result.balance)), ("applied", .bool(result.applied)),
                    ("attempts", .int(result.attempts)),
                ]), []
            )

        case .spendUser(let userId, let amount):
            let spent = try timed(.dailySpend) {
                try DailySpend(client: client, strategy: strategies.dailySpend).spend(userId: Int(userId), amount: Int(amount))
            }
            return (
                201,
                .object([
                    ("spend_id", .int(spent.spendId)), ("user_id", .int(spent.userId)), ("amount", .int(spent.amount)),
                    ("spent_today", .int(spent.spentToday)), ("daily_limit", .int(spent.dailyLimit)), ("attempts", .int(spent.attempts)),
                ]), []
            )

        case .addCartItem(let userId, let productId, let quantity):
            let update = try timed(.cartQuantity) {
                try CartQuantity(client: client, strategy: strategies.cartQuantity).add(
                    userId: Int(userId), productId: Int(productId), quantity: Int(quantity))
            }
            return (200, Self.cartLine(update), [])

        case .setCartItem(let userId, let productId, let quantity):
            let update = try timed(.cartQuantity) {
                try CartQuantity(client: client, strategy: strategies.cartQuantity).set(
                    userId: Int(userId), productId: Int(productId), quantity: Int(quantity))
            }
            return (200, Self.cartLine(update), [])

        case .getCoupon(let couponId):
            let row = try client.withDatabase {
                try $0.query("SELECT id, total_quantity, issued_quantity FROM coupons WHERE id = $1", [couponId])
            }
            guard row.rowCount == 1 else { throw DomainError.notFound(entity: "coupon", id: Int(couponId)) }
            let (total, issued) = (row.int(0, 1)!, row.int(0, 2)!)
            return (
                200,
                .object([
                    ("id", .int(row.int(0, 0)!)), ("total_quantity", .int(total)), ("issued_quantity", .int(issued)),
                    ("remaining", .int(max(0, total - issued))),
                ]), []
            )

        case .issueCoupon(let couponId, let userId):
            let issue = try timed(.issueCoupon) {
                try IssueCoupon(client: client, strategy: strategies.issueCoupon).issue(couponId: Int(couponId), userId: Int(userId))
            }
            return (
                201,
                .object([("coupon_id", .int(issue.couponId)), ("user_id", .int(issue.userId)), ("issued_quantity", .int(issue.issuedQuantity))]),
                []
            )

        case .createOrder(let userId, let items):
            let order = try timed(.createOrder) {
                try CreateOrder(client: client, strategy: strategies.createOrder).create(
                    userId: Int(userId), items: items.map { OrderItemRequest(productId: Int($0.productId), quantity: Int($0.quantity)) })
            }
            return (
                201,
                .object([
                    ("id", .int(order.orderId)), ("user_id", .int(order.userId)), ("status", .string(OrderStatus.pending.rawValue)),
                    ("total_amount", .int(order.totalAmount)),
                ]), [HTTPHeader(name: "Location", value: "/orders/\(order.orderId)")]
            )

        case .getOrder(let orderId):
            let (order, items) = try client.withDatabase { db in
                (
                    try db.query("SELECT id, user_id, status, total_amount, version FROM orders WHERE id = $1", [orderId]),
                    try db.query(
                        "SELECT product_id, quantity, unit_price FROM order_items WHERE order_id = $1 ORDER BY id", [orderId])
                )
            }
            guard order.rowCount == 1 else { throw DomainError.notFound(entity: "order", id: Int(orderId)) }
            let lines: [JSONValue] = (0..<items.rowCount).map { row in
                .object([
                    ("product_id", .int(items.int(row, 0)!)), ("quantity", .int(items.int(row, 1)!)),
                    ("unit_price", .int(items.int(row, 2)!)),
                ])
            }
            return (
                200,
                .object([
                    ("id", .int(order.int(0, 0)!)), ("user_id", .int(order.int(0, 1)!)), ("status", .string(order.string(0, 2)!)),
                    ("total_amount", .int(order.int(0, 3)!)), ("version", .int(order.int(0, 4)!)), ("items", .array(lines)),
                ]), []
            )

        case .payOrder(let orderId):
            let payment = try timed(.processPayment) {
                try ProcessPayment(client: client, strategy: strategies.processPayment).pay(orderId: Int(orderId))
            }
            return (
                200,
                .object([
                    ("order_id", .int(payment.orderId)), ("user_id", .int(payment.userId)), ("amount", .int(payment.amount)),
                    ("balance_after", .int(payment.balanceAfter)), ("status", .string(OrderStatus.paid.rawValue)),
                ]), []
            )

        case .completeOrder(let orderId), .cancelOrder(let orderId):
            let state = OrderState(client: client, strategy: strategies.orderState)
            let transition = try timed(.orderState) {
                if case .completeOrder = request { return try state.complete(orderId: Int(orderId)) }
                return try state.cancel(orderId: Int(orderId))
            }
            return (
                200,
                .object([
                    ("order_id", .int(transition.orderId)), ("from", .string(transition.from.rawValue)),
                    ("status", .string(transition.to.rawValue)),
                ]), []
            )
        }
    }

    private static func cartLine(_ update: CartUpdate) -> JSONValue {
        .object([("user_id", .int(update.userId)), ("product_id", .int(update.productId)), ("quantity", .int(update.quantity))])
    }

    // MARK: Rate limit

    /// A fixed window per user in Redis: INCR, and PEXPIRE on the window's first request. Redis
    /// unreachable: the request is let through (the limit protects the service, it is not a lock).
    private static let rateScript = RedisScript(
        """
        local n = redis.call('INCR', KEYS[1])
        if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
        local ttl = redis.call('PTTL', KEYS[1])
        if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
        return {n, ttl}
        """)

    public static func rateLimitKey(userId: Int64) -> String { "ratelimit:user:\(userId)" }

    private func rateLimited(user: Int64, limit: RateLimit) -> APIProblem? {
        guard let (connection, _) = try? pools.redis.borrow() else { return nil }
        var broken = false
        defer { broken || !connection.isConnected ? pools.redis.discard(connection) : pools.redis.giveBack(connection) }
        let reply: RedisReply
        do {
            reply = try connection.eval(
                Self.rateScript, keys: [Self.rateLimitKey(userId: user)], arguments: [String(limit.windowSeconds * 1000)])
        } catch {
            broken = true
            return nil
        }
        guard case .array(let values) = reply, values.count == 2, case .integer(let count) = values[0],
            case .integer(let ttl) = values[1]
        else { return nil }
        guard count > limit.requests else { return nil }
        let retryAfter = max(1, Int((ttl + 999) / 1000))
        return APIProblem(
            status: 429, slug: "rate-limited", title: "Too many requests",
            detail: "user \(user) made more than \(limit.requests) requests in \(limit.windowSeconds) s; retry after \(retryAfter) s",
            retryAfterSeconds: retryAfter)
    }
}
