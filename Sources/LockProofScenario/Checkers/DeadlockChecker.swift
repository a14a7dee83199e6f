import LockProofCommerce

/// No deadlock: counts the deadlocks PostgreSQL detected (every 40P01, retried or not) and shows
/// the first operation that ended in one.
final class DeadlockChecker: Checker {
    let name = "no-deadlock"
    /// Every operation can be a deadlock victim.
    let operations = Set(OperationName.allCases)
    private var victims = 0
    private var firstVictim: String?
    var retainedRecords: Int { firstVictim == nil ? 0 : 1 }

    func observe(_ entry: HistoryEntry) {
        guard entry.reason == "deadlock" else { return }
        victims += 1
        if firstVictim == nil { firstVictim = entry.shortDescription }
    }

    func check(_ context: CheckContext) throws -> CheckResult {
        var tally = ViolationTally()
        let detected = max(context.statistics.count("lockproof_db_deadlocks_total"), victims)
        let first = firstVictim.map { "\($0) was chosen as the deadlock victim" } ?? "a deadlock was detected and retried"
        tally.add("deadlock", count: detected, first)
        return tally.result(name, summary: "\(detected) deadlocks detected")
    }
}
