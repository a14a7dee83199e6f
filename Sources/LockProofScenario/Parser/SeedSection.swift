import Foundation
import LockProofCommerce
import Yams

/// `seed`: the initial data.
extension ScenarioReader {
    mutating func seedSpec(_ node: Node) -> SeedSpec {
        var seed = SeedSpec()
        let fields = entries(
            node,
            known: [
                "users", "balance", "products", "price", "stock", "coupon_quantity", "orders", "order_items", "order_quantity",
                "cart_quantity",
            ] + Self.caseSeedKeys.map(\.name),
            section: "seed")
        let big = 0...1_000_000_000
        if let v = fields["users"].flatMap({ integer($0.value, "seed.users", range: 1...100_000) }) { seed.users = v }
        if let v = fields["balance"].flatMap({ integer($0.value, "seed.balance", range: big) }) { seed.balance = v }
        if let v = fields["products"].flatMap({ integer($0.value, "seed.products", range: 1...100_000) }) { seed.products = v }
        if let v = fields["price"].flatMap({ integer($0.value, "seed.price", range: big) }) { seed.price = v }
        if let v = fields["stock"].flatMap({ integer($0.value, "seed.stock", range: big) }) { seed.stock = v }
        if let v = fields["coupon_quantity"].flatMap({ integer($0.value, "seed.coupon_quantity", range: 0...10_000_000) }) {
            seed.couponQuantity = v
        }
        if let v = fields["orders"].flatMap({ integer($0.value, "seed.orders", range: 0...1_000_000) }) { seed.orders = v }
        if let v = fields["order_items"].flatMap({ integer($0.value, "seed.order_items", range: 1...100) }) { seed.orderItems = v }
        if let v = fields["order_quantity"].flatMap({ integer($0.value, "seed.order_quantity", range: 1...1_000_000) }) {
            seed.orderQuantity = v
        }
        if let v = fields["cart_quantity"].flatMap({ integer($0.value, "seed.cart_quantity", range: 0...1_000_000) }) {
            seed.cartQuantity = v
        }
        for key in Self.caseSeedKeys {
            if let v = fields[key.name].flatMap({ integer($0.value, "seed.\(key.name)", range: key.range) }) { seed.caseValues[key.name] = v }
        }
        return seed
    }

    /// The seed keys of the cases' own (`CaseStorage.seedKeys`), each once.
    static var caseSeedKeys: [SeedKey] {
        var keys: [SeedKey] = []
        for caseName in CaseName.allCases {
            for key in caseName.descriptor.storage.seedKeys where !keys.contains(where: { $0.name == key.name }) { keys.append(key) }
        }
        return keys
    }
}
