import Foundation
import LockProofCommerce
import LockProofPostgres

/// What a run through a target starts from (issue 18): the target's `reset` statements, then its
/// `seed` statements once per entity of the scenario's seed with the entity's values bound as
/// parameters, then `seed.after` — all in one transaction, in the database `database.url_env`
/// names, and nothing else. The target database is the user's: LockProof runs only the SQL the
/// target file gives, and only after `checkDatabase` found every state query and seed statement
/// valid there (a misspelled table is reported before anything is emptied).
extension Target {
    /// The scenario's entities with LockProof's ids (users, products, orders from 1, the coupon 1),
    /// as the in-process seed lays them out: order n belongs to user n mod users and holds products
    /// n … n + items − 1, `order_quantity` of each at `price`.
    public func initialState(for scenario: Scenario) -> InitialState {
        let spec = scenario.seed
        var initial = InitialState()
        initial.users = spec.users > 0 ? Array(1...spec.users) : []
        initial.products = spec.products > 0 ? Array(1...spec.products) : []
        if seed[.coupons] != nil {
            initial.couponId = 1
            initial.couponTotal = spec.couponQuantity
        }
        initial.balances = Dictionary(uniqueKeysWithValues: initial.users.map { ($0, spec.balance) })
        initial.stock = Dictionary(uniqueKeysWithValues: initial.products.map { ($0, spec.stock) })
        if spec.cartQuantity > 0, seed[.cartLines] != nil { initial.cartQuantity = spec.cartQuantity }
        if spec.orders > 0, seed[.orders] != nil, !initial.users.isEmpty { initial.orders = Array(1...spec.orders) }
        return initial
    }

    /// The products of seeded order `order` (1-based), as `initialState` describes.
    static func seededItems(order: Int, products: [Int], itemsPerOrder: Int) -> [Int] {
        guard !products.isEmpty else { return [] }
        return (0..<itemsPerOrder).map { products[(order - 1 + $0) % products.count] }
    }

    /// Refuses (nothing run) when the target's SQL does not fit its database; then empties the
    /// target's tables with its `reset` and seeds the scenario's entities with its `seed`.
    public func resetAndSeed(_ scenario: Scenario, db: PostgresConnection) throws -> InitialState {
        let problems = checkDatabase(db)
        if !problems.isEmpty {
            throw TargetResolutionError(
                file: file, message: "the target's SQL does not fit its database; nothing was run:\n" + problems.joined(separator: "\n"))
        }
        let spec = scenario.seed
        let initial = initialState(for: scenario)
        try db.transaction { db in
            for statement in reset { try run(statement, "reset", [:], db) }
            for user in initial.users { try runSeed(.users, ["id": user, "balance": spec.balance], db) }
            for product in initial.products {
                try runSeed(.products, ["id": product, "price": spec.price, "stock": spec.stock], db)
            }
            if let coupon = initial.couponId { try runSeed(.coupons, ["id": coupon, "quantity": spec.couponQuantity], db) }
            for order in initial.orders {
                let user = initial.users[(order - 1) % initial.users.count]
                let total = spec.orderItems * spec.orderQuantity * spec.price
                try runSeed(.orders, ["id": order, "user": user, "total": total], db)
                for product in Self.seededItems(order: order, products: initial.products, itemsPerOrder: spec.orderItems) {
                    try runSeed(
                        .orderItems, ["order": order, "product": product, "quantity": spec.orderQuantity, "price": spec.price], db)
                }
            }
            if scenario.cases.contains(.dailySpend) {
                // The sixth case's seed key, from the file or its default, as the in-process seed reads it.
                let key = CaseName.dailySpend.descriptor.storage.seedKeys.first { $0.name == "daily_limit" }
                let limit = spec.caseValues["daily_limit"] ?? key?.defaultValue ?? 10_000
                for user in initial.users { try runSeed(.spendingLimits, ["user": user, "daily_limit": limit], db) }
            }
            if initial.cartQuantity > 0 {
                for user in initial.users {
                    for product in initial.products {
                        try runSeed(.cartLines, ["user": user, "product": product, "quantity": initial.cartQuantity], db)
                    }
                }
            }
            for statement in seedAfter { try run(statement, "seed.after", [:], db) }
        }
        return initial
    }

    private func runSeed(_ kind: SeedKind, _ values: [String: Int], _ db: PostgresConnection) throws {
        for statement in seed[kind] ?? [] { try run(statement, "seed.\(kind.rawValue)", values, db) }
    }

    /// One statement with its `:name` parameters bound (never spliced); a refusal names the file,
    /// line and section.
    private func run(_ statement: TargetStatement, _ section: String, _ values: [String: Int], _ db: PostgresConnection) throws {
        var parameters: [any PostgresBindable] = []
        for name in statement.parameters {
            guard let value = values[name] else {
                throw TargetResolutionError(file: file, message: "\(statement.line): \(section): no value for :\(name)")
            }
            parameters.append(value)
        }
        do {
            if parameters.isEmpty { try db.execute(statement.sql) } else { try db.query(statement.sql, parameters) }
        } catch {
            let text = (error as? PostgresError)?.message ?? "\(error)"
            throw TargetResolutionError(
                file: file,
                message: "\(statement.line): \(section): the database refused the statement: \(text.split(separator: "\n").first ?? "")")
        }
    }
}
