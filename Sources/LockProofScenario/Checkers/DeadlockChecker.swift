import LockProofCommerce

/// No deadlock: counts the deadlocks PostgreSQL detected (every 40P01, retried or not) and shows
/// the first operation that ended in one.
struct DeadlockChecker: Checker {
    let name = "no-deadlock"

    func check(_ context: CheckContext) throws -> CheckResult {
        var tally = ViolationTally()
        let victims = context.history.filter { $0.reason == "deadlock" }
        let detected = max(context.statistics.count("lockproof_db_deadlocks_total"), victims.count)
        let first = victims.first.map {
            "client \($0.client) \($0.operation) \($0.arguments.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))\($0.items.map { " items " + $0.map { String($0.productId) }.joined(separator: ",") } ?? "") was chosen as the deadlock victim"
        } ?? "a deadlock was detected and retried"
        for _ in 0..<detected { tally.add("deadlock", first) }
        return tally.result(name, summary: "\(detected) deadlocks detected")
    }
}
