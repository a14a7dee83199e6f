import Foundation
import LockProofCommerce
import Yams

/// The top level of a scenario file: name, case, strategy, expectation, and the checks across sections.
extension ScenarioReader {
    mutating func scenario(_ root: Node) -> Scenario? {
        let top = entries(
            root, known: ["name", "description", "case", "strategy", "seed", "workload", "faults", "expect", "thresholds", "target"],
            section: "scenario")
        var name: String?
        if let entry = top["name"] {
            name = string(entry.value, "name")
            if let text = name, text.isEmpty || text.contains(where: { !($0.isLetter || $0.isNumber || "-_.".contains($0)) }) {
                problem(entry.value, "name: found '\(text)'; expected letters, digits, '-', '_' or '.' (it names report files)")
                name = nil
            }
        } else {
            problem(root, "scenario: missing key 'name'")
        }
        let description = top["description"].flatMap { string($0.value, "description") } ?? ""
        var caseName: CaseName?
        let mixEntry = top["workload"].flatMap { mappingEntry($0.value, "mix") }
        if let entry = top["case"] {
            caseName = choice(entry.value, "case", CaseName.allCases)
        } else if mixEntry == nil {
            problem(root, "scenario: missing key 'case'; expected one of \(CaseName.allCases.map(\.rawValue).joined(separator: ", ")) (or a workload.mix naming the operations)")
        }
        var strategy = "seed"
        if let entry = top["strategy"], let text = string(entry.value, "strategy") {
            strategy = text
            if let caseName, !caseName.strategyNames.contains(text) {
                problem(entry.value, "strategy: found '\(text)'; case \(caseName.rawValue) has \(caseName.strategyNames.joined(separator: ", "))")
            } else if top["case"] == nil {
                problem(entry.value, "strategy: applies to the operations of 'case', and there is none; give each operation of workload.mix its own, e.g. charge: {weight: 1, strategy: \(text)}")
            }
        }
        let seed = top["seed"].map { seedSpec($0.value) } ?? SeedSpec()
        var workload = WorkloadSpec()
        if let entry = top["workload"] {
            workload = workloadSpec(entry.value, caseName: caseName)
        } else {
            problem(root, "scenario: missing key 'workload' (virtual_users and iterations or duration)")
        }
        var operations: [OperationSpec] = []
        if let mixEntry {
            operations = mix(mixEntry.value, caseName: top["case"] == nil ? nil : caseName, strategy: strategy)
            if let caseName, !operations.isEmpty, !operations.contains(where: { $0.caseName == caseName }) {
                problem(
                    top["case"]!.value,
                    "case: found '\(caseName.rawValue)', but workload.mix has none of its operations (\(caseName.operations.map(\.rawValue).joined(separator: ", "))); drop 'case' or add one")
            }
        } else if let caseName {
            operations = [OperationSpec(operation: caseName.operations[0], strategy: strategy, weight: 1)]
        }
        let mainCase = top["case"] == nil ? operations.first?.caseName : caseName
        var expect = Scenario.Expectation.pass
        if let entry = top["expect"], let value = choice(entry.value, "expect", Scenario.Expectation.allCases) {
            expect = value
        }
        guard let name, let mainCase, !operations.isEmpty else { return nil }
        var scenario = Scenario(
            file: file, name: name, description: description, caseName: mainCase,
            strategy: operations.first { $0.caseName == mainCase }?.strategy ?? strategy, operations: operations, seed: seed,
            workload: workload, expect: expect, thresholds: [])
        if let entry = top["thresholds"] {
            scenario.thresholds = thresholdList(entry.value, scenario: scenario)
        }
        if let entry = top["faults"] {
            scenario.faults = faultList(entry.value, scenario: scenario)
        }
        if let entry = top["target"] {
            scenario.target = targetReference(entry.value)
        }
        if workload.payAfterCreate, !scenario.performs(.create), let entry = top["workload"] {
            problem(entry.value, "workload.pay_after_create: only create-order can pay what it creates")
        }
        let orderOperations = OperationName.allCases.filter { $0.reads.contains(.orders) && operations.map(\.operation).contains($0) }.map(\.rawValue)
        if !orderOperations.isEmpty, seed.orders == 0 {
            problem(top["seed"]?.value ?? root, "seed.orders: \(orderOperations.joined(separator: ", ")) work on orders made before the run; expected at least 1")
        }
        // seed.order_items and workload.items may exceed seed.products: the lines wrap around the
        // products, so one product comes on several lines of an order (issue 21, red team round 2:
        // create-order-repeated-product, process-payment-repeated-product).
        if let mixEntry, let iterations = workload.iterations, operations.count > 1 {
            checkEveryOperationRuns(MixPlan(operations), mixEntry.value, virtualUsers: workload.virtualUsers, iterations: iterations)
        }
        if seed.cartQuantity > 0, seed.users * seed.products > 1_000_000 {
            problem(top["seed"]?.value ?? root, "seed.cart_quantity: opens a line for each of users × products = \(seed.users * seed.products); expected at most 1000000")
        }
        if let entry = top["expect"] {
            // A control of the judging needs the thing it controls, or it would pass on nothing.
            if expect == .unwitnessedThreshold, scenario.thresholds.isEmpty {
                problem(entry.value, "expect: unwitnessed-threshold needs thresholds (each on a path the run never takes); found none")
            }
            if expect == .faultError, scenario.faults.isEmpty {
                problem(entry.value, "expect: fault-error needs faults (one that cannot strike); found none")
            }
        }
        rejectKeysThatDoNotApply(scenario, seed: top["seed"]?.value, workload: top["workload"]?.value)
        return scenario
    }

    /// `target:`: a target file's path, relative to this scenario file (issue 18); it must exist
    /// (its own contents are validated by `TargetParser` when the scenario runs).
    mutating func targetReference(_ node: Node) -> TargetReference? {
        let expected = "expected the path of a target file (e.g. ../targets/shop.yaml), relative to this scenario file"
        guard case .scalar = node, let written = node.string, node.null == nil else {
            problem(node, "target: found \(describe(node)); \(expected)")
            return nil
        }
        guard !written.isEmpty, !written.hasSuffix("/") else {
            problem(node, "target: found '\(written)'; \(expected)")
            return nil
        }
        let mark = node.mark
        let reference = TargetReference(written: written, scenarioFile: file, line: mark?.line ?? 1, column: mark?.column ?? 1)
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: reference.path, isDirectory: &isDirectory) || isDirectory.boolValue {
            problem(node, "target: found '\(written)', and \(reference.path) is not a file; \(expected)")
            return nil
        }
        if !(written.hasSuffix(".yaml") || written.hasSuffix(".yml")) {
            problem(node, "target: found '\(written)'; expected a target file ending in .yaml or .yml")
            return nil
        }
        return reference
    }

    /// A key no operation of the scenario reads would be silently ignored (an `amount` on a
    /// payment, which always costs its order's total): refuse it and say who reads it.
    mutating func rejectKeysThatDoNotApply(_ scenario: Scenario, seed: Node?, workload: Node?) {
        let names = Set(scenario.operations.map(\.operation) + scenario.followUps)
        let running = "this scenario runs \(names.map(\.rawValue).sorted().joined(separator: ", "))"
        // Who reads each key comes from the descriptors (`CaseDescriptor.reads`).
        for key in ScenarioKey.allCases {
            let users = OperationName.allCases.filter { $0.reads.contains(key) }
            guard let node = key.section == "seed" ? seed : workload, let entry = mappingEntry(node, key.rawValue),
                names.isDisjoint(with: users)
            else { continue }
            let why = Self.whyNotRead(key).map { "; \($0)" } ?? ""
            problem(entry.key, "\(key.section).\(key.rawValue): does not apply: \(running), and it is read only by \(users.map(\.rawValue).joined(separator: ", "))\(why)")
        }
        for key in Self.caseSeedKeys {
            let readers = CaseName.allCases.filter { $0.descriptor.storage.seedKeys.contains(key) }
            guard let seed, let entry = mappingEntry(seed, key.name), Set(scenario.cases).isDisjoint(with: readers) else { continue }
            let operations = readers.flatMap(\.operations).map(\.rawValue)
            problem(entry.key, "seed.\(key.name): does not apply: \(running), and it is read only by \(operations.joined(separator: ", "))")
        }
        if let workload, let entry = mappingEntry(workload, "retry"), !scenario.retries {
            problem(entry.key, "workload.retry: does not apply: no strategy of this scenario (\(scenario.strategyLabel)) retries; \(Self.retryingStrategies) do")
        }
        if let workload, let entry = mappingEntry(workload, "lock"), !scenario.locksTaken.contains(.redis) {
            problem(entry.key, "workload.lock: does not apply: no strategy of this scenario (\(scenario.strategyLabel)) takes the Redis lock")
        }
        if let workload, let entry = mappingEntry(workload, "recovery"), !scenario.performs(.pay) {
            problem(entry.key, "workload.recovery: does not apply: \(running), and only payments (pay, or create with pay_after_create) leave intents and compensations for recovery")
        }
        if let workload, let entry = mappingEntry(workload, "breaker"), !scenario.locksTaken.contains(.redis) {
            problem(entry.key, "workload.breaker: does not apply: no strategy of this scenario (\(scenario.strategyLabel)) takes the Redis lock the breaker guards")
        }
    }

    /// Why a key another operation reads does not apply (the operation has its own source).
    static func whyNotRead(_ key: ScenarioKey) -> String? {
        switch key {
        case .amount: return "a payment costs its order's order_items × order_quantity × price"
        case .items: return "pre-made orders take seed.order_items"
        case .quantity: return "pre-made orders take seed.order_quantity"
        case .gateway: return "only a payment calls the gateway"
        default: return nil
        }
    }

    /// `charge-balance seed, optimistic-retry; order-state optimistic-retry`: the strategies that
    /// retry, from the descriptors' traits.
    static var retryingStrategies: String {
        CaseName.allCases.compactMap { caseName in
            let names = caseName.strategyNames.filter { caseName.traits($0)?.retries == true }
            return names.isEmpty ? nil : "\(caseName.rawValue) \(names.joined(separator: ", "))"
        }.joined(separator: "; ")
    }

    /// The value node of `key` in a mapping, if it is one and has the key.
    func mappingEntry(_ node: Node, _ key: String) -> (key: Node, value: Node)? {
        guard case .mapping(let mapping) = node else { return nil }
        return mapping.first { $0.key.string == key }.map { ($0.key, $0.value) }
    }

    /// `workload.mix`: operation → weight, or → {weight, strategy}. An operation's strategy
    /// defaults to the scenario's `strategy` for the operations of `case`, else to the seed's.
}
