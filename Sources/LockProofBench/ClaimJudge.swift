import Foundation
import LockProofCommerce
import LockProofScenario

/// The contentions none of whose cells exhausted retries ("spread", "hot", or "no").
private func clearContentions(_ cells: [CellResult], _ exhausted: [CellResult]) -> String {
    let clear = Contention.allCases.filter { contention in
        cells.contains { $0.key.contention == contention } && !exhausted.contains { $0.key.contention == contention }
    }
    return clear.isEmpty ? "no" : clear.map(\.rawValue).joined(separator: " and ")
}

private func ms(_ seconds: Double?) -> String { seconds.map { String(format: "%.1f ms", $0 * 1000) } ?? "n/a" }
private func percent(_ part: Int, _ whole: Int) -> String {
    whole > 0 ? String(format: "%.1f%%", Double(part) / Double(whole) * 100) : "n/a"
}

/// The ten claims of the seed (shared/BRIEF.md), each judged from the matrix and the experiments.
func judgeClaims(_ results: BenchResults, _ measured: ClaimMeasurements) -> [ClaimVerdict] {
    let judge = ClaimJudge(results: results, measured: measured)
    return [
        judge.optimisticIsFastest(), judge.tenRetriesAreEnough(), judge.redisLockAvoidsCollisions(),
        judge.paymentLockTimes(), judge.pessimisticLockingRequired(), judge.appCheckFiltersDuplicates(),
        judge.couponQuantityExact(), judge.productLocksCloseTheGap(), judge.sortedLocksPreventDeadlocks(),
        judge.stateConflictsAreRare(),
    ]
}

/// One method per claim, numbered as in the seed; each returns its verdict.
struct ClaimJudge {
    let results: BenchResults
    let measured: ClaimMeasurements
    let clientCounts: [Int]
    /// The most clients any unpooled cell ran with.
    let most: Int

    init(results: BenchResults, measured: ClaimMeasurements) {
        self.results = results
        self.measured = measured
        clientCounts = Array(Set(results.unpooledCells.map(\.key.clients))).sorted()
        most = clientCounts.last ?? 1
    }

    func notMeasured(_ number: Int, _ claim: String, _ why: String) -> ClaimVerdict {
        ClaimVerdict(number: number, claim: claim, verdict: .notMeasured, summary: "Not measured: \(why).", evidence: why, measuredBy: [])
    }

    func fmt(_ value: Double?) -> String { value.map { String(format: "%.0f", $0) } ?? "n/a" }

    /// 1. Optimistic + retry is the fastest choice for charges.
    func optimisticIsFastest() -> ClaimVerdict {
        let claim = "Charges rarely collide, so optimistic locking plus retry is the fastest choice."
        var winners: [String] = []
        var optimisticWins = 0
        var points = 0
        var optimisticAt: [String] = []
        var otherAt: [String] = []
        var leftOut: [String] = []
        for contention in Contention.allCases {
            for clients in clientCounts {
                let ranked = results.ranking(.chargeBalance, contention, clients).filter { !$0.runs.isEmpty }
                guard let first = ranked.first(where: { $0.notRankedBecause == nil }) else { continue }
                points += 1
                let point = DecisionTable.describe(contention, clients)
                winners.append("\(point): \(first.key.strategy) \(fmt(first.throughput?.median)) ops/s")
                if ["optimistic-retry", "seed"].contains(first.key.strategy) {
                    optimisticWins += 1
                    optimisticAt.append(point)
                } else {
                    otherAt.append("\(point) (\(first.key.strategy) first)")
                }
                for faster in ranked where faster.notRankedBecause != nil && !faster.negativeControl
                    && (faster.throughput?.median ?? 0) > (first.throughput?.median ?? 0)
                {
                    leftOut.append("\(faster.key.strategy) at \(point) (\(fmt(faster.throughput?.median)) ops/s) is faster but \(faster.notRankedBecause ?? "")")
                }
            }
        }
        if points == 0 {
            return notMeasured(1, claim, "no charge-balance cell was measured")
        } else {
            let verdict: ClaimVerdict.Verdict =
                optimisticWins == points ? .holds : optimisticWins == 0 ? .doesNotHold : .conditional
            return ClaimVerdict(
                number: 1, claim: claim, verdict: verdict,
                summary: verdict == .holds
                    ? "Optimistic locking was the fastest correct choice everywhere it was measured."
                    : verdict == .doesNotHold
                        ? "Another strategy was faster everywhere: \(otherAt.joined(separator: ", "))."
                        : "Optimistic locking is fastest only with \(optimisticAt.joined(separator: ", ")); elsewhere another strategy is: \(otherAt.joined(separator: ", "))."
                    + (leftOut.isEmpty ? "" : " (Faster but not ranked: \(leftOut.joined(separator: "; ")).)"),
                evidence: "fastest strategy that kept its invariant without failing an operation: \(winners.joined(separator: "; ")); optimistic (seed or optimistic-retry) first in \(optimisticWins) of \(points)",
                measuredBy: results.cells(.chargeBalance).filter { !$0.runs.isEmpty }.map(\.key.id))
        }
    }

    /// 2. Ten retries are enough.
    func tenRetriesAreEnough() -> ClaimVerdict {
        let claim = "Ten retries with exponential backoff are enough; exhaustion should never happen."
        let retrying = results.unpooledCells.filter {
            ($0.key.caseName == .chargeBalance && ["seed", "optimistic-retry"].contains($0.key.strategy))
                || ($0.key.caseName == .cartQuantity && $0.key.strategy == "optimistic-retry")
        }
        let operations = retrying.map(\.operations).reduce(0, +)
        let exhaustedCells = retrying.filter { cell in cell.runs.contains { $0.retryExhausted > 0 } }
        let exhausted = retrying.flatMap(\.runs).map(\.retryExhausted).reduce(0, +)
        let worst = retrying.max { ($0.retriesPerOperation ?? 0) < ($1.retriesPerOperation ?? 0) }
        if operations == 0 {
            return notMeasured(2, claim, "no retrying cell was measured")
        } else {
            return ClaimVerdict(
                number: 2, claim: claim,
                verdict: exhausted == 0 ? .holds : .conditional,
                summary: exhausted == 0
                    ? "No operation ran out of its ten attempts."
                    : "Ten retries are enough only where contention is low: \(exhausted) operations ran out of attempts, all in \(exhaustedCells.map { DecisionTable.describe($0.key.contention, $0.key.clients) + " (\($0.key.caseName.rawValue) \($0.key.strategy))" }.joined(separator: ", ")).",
                evidence: "\(exhausted) of \(operations) operations of the retrying cells exhausted 10 attempts"
                    + (exhaustedCells.isEmpty ? "" : " (in \(exhaustedCells.map(\.key.id).joined(separator: ", ")))")
                    + (exhaustedCells.isEmpty ? "" : "; clear in every \(clearContentions(retrying, exhaustedCells)) cell")
                    + String(format: "; most retries per operation: %.2f in %@", worst?.retriesPerOperation ?? 0, worst?.key.id ?? "-"),
                measuredBy: retrying.map(\.key.id))
        }
    }

    /// 3. Without the Redis lock, clients (instances) collide and retries and waits climb.
    func redisLockAvoidsCollisions() -> ClaimVerdict {
        let claim = "Without the Redis lock, instances collide and retries (and user waits) climb."
        let withLock = results.cell(.chargeBalance, "seed", .hot, most)
        let without = results.cell(.chargeBalance, "optimistic-retry", .hot, most)
        if let withLock, let without, !withLock.runs.isEmpty, !without.runs.isEmpty {
            let retriesWith = withLock.retriesPerOperation ?? 0
            let retriesWithout = without.retriesPerOperation ?? 0
            let p99With = withLock.median { $0.latencyP99 }
            let p99Without = without.median { $0.latencyP99 }
            let climbs = retriesWithout > retriesWith
            let waitsClimb = (p99Without ?? 0) > (p99With ?? 0)
            let verdict: ClaimVerdict.Verdict = climbs && waitsClimb ? .holds : climbs ? .conditional : .doesNotHold
            let speedWithout = without.throughput?.median ?? 0
            let speedWith = withLock.throughput?.median ?? 0
            var summary: String
            switch verdict {
            case .holds: summary = "Without the Redis lock, retries and p99 waits climb."
            case .conditional: summary = "Without the Redis lock, retries climb but p99 waits do not."
            default: summary = "Without the Redis lock, retries do not climb."
            }
            if speedWith > 0, speedWithout > speedWith * 1.1 {
                summary += String(format: " Yet the strategy without the lock finished %.1f× as many operations per second (%@ vs %@)", speedWithout / speedWith, fmt(speedWithout), fmt(speedWith))
                summary += without.failedOperations > 0
                    ? " while failing \(without.failedOperations) operations (\(reasonList(without.failedOperationsByReason)))."
                    : ", without failing an operation: the lock costs more than the retries it saves."
            } else if speedWithout > 0, speedWith > speedWithout * 1.1 {
                summary += String(format: " The lock also made it %.1f× faster (%@ vs %@ ops/s).", speedWith / speedWithout, fmt(speedWith), fmt(speedWithout))
            }
            return ClaimVerdict(
                number: 3, claim: claim, verdict: verdict, summary: summary,
                evidence: String(
                    format: "%d clients with connections of their own on one hot user (each client stands for an instance: nothing but Redis and PostgreSQL is shared): retries/op %.2f without the lock vs %.2f with it; p99 %@ vs %@; throughput %@ vs %@ ops/s",
                    most, retriesWithout, retriesWith, ms(p99Without), ms(p99With), fmt(without.throughput?.median),
                    fmt(withLock.throughput?.median)),
                measuredBy: [without.key.id, withLock.key.id])
        } else {
            return notMeasured(3, claim, "the hot charge-balance cells at \(most) clients are missing")
        }
    }

    /// 4. Payment lock waits average under 50 ms; locks held about 50 ms.
    func paymentLockTimes() -> ClaimVerdict {
        let claim = "Payment lock waits average under 50 ms; payment locks are held about 50 ms."
        let cells = results.cells(.processPayment).filter { $0.key.strategy == "seed" && !$0.runs.isEmpty }
        var over: [String] = []
        var lines: [String] = []
        var holds: [Double] = []
        for cell in cells.sorted(by: { $0.key < $1.key }) {
            let redis = cell.median { run in run.lockWaits.first { $0.lock == "redis" }?.average }
            let row = cell.median { run in run.lockWaits.first { $0.lock == "row" }?.average }
            let worst = max(redis ?? 0, row ?? 0)
            if worst >= 0.05 { over.append(cell.key.id) }
            let heldRedis = cell.median { run in run.lockHolds.first { $0.lock == "redis" }?.average }
            let heldRow = cell.median { run in run.lockHolds.first { $0.lock == "row" }?.average }
            holds += [heldRedis, heldRow].compactMap { $0 }
            lines.append("\(cell.key.contention.rawValue)/c\(cell.key.clients): waits redis \(ms(redis)), row \(ms(row)); held redis \(ms(heldRedis)), row \(ms(heldRow))")
        }
        if cells.isEmpty {
            return notMeasured(4, claim, "no process-payment seed cell was measured")
        } else {
            // Two statements, each judged: average waits under 50 ms, and holds "about 50 ms"
            // (25–100 ms). Either failing in every cell fails the claim as stated.
            let about = 0.025...0.1
            let holdsAbout = !holds.isEmpty && holds.allSatisfy { about.contains($0) }
            let holdsNever = !holds.isEmpty && !holds.contains { about.contains($0) }
            let verdict: ClaimVerdict.Verdict =
                over.count == cells.count || holdsNever ? .doesNotHold : over.isEmpty && holdsAbout ? .holds : .conditional
            var summary = over.isEmpty ? "Lock waits averaged under 50 ms everywhere" : over.count == cells.count ? "Lock waits averaged 50 ms or more everywhere" : "Lock waits averaged under 50 ms except at \(over.joined(separator: ", "))"
            summary += holds.isEmpty ? "; no hold was recorded." : holdsAbout ? "; holds were about 50 ms." : String(format: "; holds were %.1f–%.1f ms, not about 50 ms.", (holds.min() ?? 0) * 1000, (holds.max() ?? 0) * 1000)
            var evidence = "averages by cell: \(lines.joined(separator: " | "))"
            evidence += over.isEmpty ? "; waits under 50 ms in every cell" : "; waits of 50 ms or more in \(over.joined(separator: ", "))"
            if holds.isEmpty {
                evidence += "; no hold was recorded"
            } else if !holdsAbout {
                evidence += String(
                    format: "; holds averaged %.1f–%.1f ms: about 50 ms (25–100 ms) in %d of %d (lock, cell) averages",
                    (holds.min() ?? 0) * 1000, (holds.max() ?? 0) * 1000, holds.filter { about.contains($0) }.count, holds.count)
            }
            evidence += " (holds from lockproof_lock_held_seconds: the Redis lock and the row locks span the deducting transaction only; the gateway is called after they are released, so its latency never lengthens a hold)"
            return ClaimVerdict(number: 4, claim: claim, verdict: verdict, summary: summary, evidence: evidence, measuredBy: cells.map(\.key.id))
        }
    }

    /// 5. Pessimistic locking is required for deductions; optimistic would lose money.
    func pessimisticLockingRequired() -> ClaimVerdict {
        let claim = "Pessimistic locking is required for deductions; optimistic would lose money."
        let optimistic = results.unpooledCells.filter {
            $0.key.caseName == .chargeBalance && $0.key.strategy == "optimistic-retry" && !$0.runs.isEmpty
        }
        let naive = results.unpooledCells.filter {
            [.chargeBalance, .processPayment].contains($0.key.caseName) && $0.key.strategy == "naive" && !$0.runs.isEmpty
        }
        let optimisticKept = optimistic.filter(\.invariantHeld).count
        let naiveBroke = naive.filter { !$0.invariantHeld }.count
        if optimistic.isEmpty {
            return notMeasured(5, claim, "no optimistic charge-balance cell was measured")
        } else {
            return ClaimVerdict(
                number: 5, claim: claim,
                verdict: optimisticKept == optimistic.count ? .doesNotHold : .conditional,
                summary: optimisticKept == optimistic.count
                    ? "Good news for optimistic locking: its version check lost no money in any cell, so pessimistic locking is not required for correctness; only no check at all loses money."
                    : "Optimistic locking lost money in \(optimistic.count - optimisticKept) of \(optimistic.count) cells (\(optimistic.filter { !$0.invariantHeld }.map { DecisionTable.describe($0.key.contention, $0.key.clients) }.joined(separator: ", "))): there, a lock is required.",
                evidence: "the optimistic version check conserved money in \(optimisticKept) of \(optimistic.count) charge-balance cells (no lost update); what loses money is no check at all: the naive read-modify-write \(naive.isEmpty ? "(a control the preset leaves out of the matrix)," : "broke conservation in \(naiveBroke) of \(naive.count) benchmark cells and,") with 16 clients on one balance, showed \(measured.naiveChargeViolations.isEmpty ? "no violation" : measured.naiveChargeViolations.joined(separator: ", ")) in \(measured.naiveChargeOperations) charges. No payment strategy is optimistic, so deductions were measured through charges, which update the same balance row",
                measuredBy: optimistic.map(\.key.id) + naive.map(\.key.id) + ["experiment lost-update"])
        }
    }

    /// 6. The app-level check filters about 99% of duplicates.
    func appCheckFiltersDuplicates() -> ClaimVerdict {
        let claim = "The app-level \"already issued?\" check filters about 99% of duplicate coupon requests."
        let stopped = measured.duplicatesByAppCheck + measured.duplicatesByConstraint
        if stopped == 0 {
            return notMeasured(6, claim, "the duplicate-request experiment did not run or stopped no duplicate")
        } else {
            let share = Double(measured.duplicatesByAppCheck) / Double(stopped)
            return ClaimVerdict(
                number: 6, claim: claim, verdict: share >= 0.99 ? .holds : .doesNotHold,
                summary: String(format: "The app check stopped %.1f%% of the duplicates%@; the unique constraint caught the rest.", share * 100, share >= 0.99 ? " (about 99%)" : ", short of 99%"),
                evidence: "of \(stopped) duplicate requests stopped, the app check stopped \(measured.duplicatesByAppCheck) (\(percent(measured.duplicatesByAppCheck, stopped))) and the unique constraint \(measured.duplicatesByConstraint), with the seed's Redis lock serializing the check (16 clients, 8 users, 320 requests)",
                measuredBy: ["experiment coupon-duplicates"])
        }
    }

    /// 7. Three layers make the coupon quantity exact in 100% of runs.
    func couponQuantityExact() -> ClaimVerdict {
        let claim = "Three layers make the coupon quantity exact in 100% of runs."
        let cells = results.cells(.issueCoupon).filter { $0.key.strategy == "seed" }
        let cellRuns = cells.flatMap(\.runs)
        let exactCellRuns = cellRuns.filter(\.invariantHeld).count
        let runs = measured.couponRuns + cellRuns.count
        let exact = measured.couponRunsExact + exactCellRuns
        if runs == 0 {
            return notMeasured(7, claim, "no coupon run was measured")
        } else {
            return ClaimVerdict(
                number: 7, claim: claim, verdict: exact == runs ? .holds : .doesNotHold,
                summary: exact == runs ? "Every run issued exactly the coupons there were." : "\(runs - exact) of \(runs) runs issued a wrong number of coupons.",
                evidence: "exact in \(exact) of \(runs) runs (\(measured.couponRunsExact)/\(measured.couponRuns) races of 200 users for 100 coupons, issued \(measured.couponIssued.map(String.init).joined(separator: ", ")); \(exactCellRuns)/\(cellRuns.count) benchmark runs)",
                measuredBy: ["experiment coupon-200-for-100"] + cells.map(\.key.id))
        }
    }

    /// 8. Locking products at order creation removes the check/use gap.
    func productLocksCloseTheGap() -> ClaimVerdict {
        let claim = "Locking products at order creation removes the time-of-check/time-of-use gap."
        if measured.oversellCreated == 0 {
            return notMeasured(8, claim, "the oversell experiment did not run")
        } else {
            let oversold = measured.oversellCreatedQuantity > measured.oversellStock
            return ClaimVerdict(
                number: 8, claim: claim, verdict: oversold ? .doesNotHold : .conditional,
                summary: oversold
                    ? "Orders were created for more units than in stock: the lock at creation does not close the gap; only payment, which deducts stock, refuses the excess."
                    : "No order went beyond the stock in this run, which holds only while every buyer pays before stock runs out (creation checks stock but does not deduct it).",
                evidence: "16 buyers, stock \(measured.oversellStock): \(measured.oversellCreated) orders created for \(measured.oversellCreatedQuantity) units; payment accepted \(measured.oversellPaid) and refused \(measured.oversellRefusedForStock) for insufficient stock; money and stock conserved: \(measured.oversellInvariantHeld ? "yes" : "no")"
                    + (oversold ? ". The row locks end at commit and stock is deducted only at payment: payment is what catches it" : ""),
                measuredBy: ["experiment oversell"])
        }
    }

    /// 9. Sorting product ids prevents deadlocks.
    func sortedLocksPreventDeadlocks() -> ClaimVerdict {
        let claim = "Sorting product ids prevents deadlocks."
        if measured.deadlockOperationsSorted == 0 {
            return notMeasured(9, claim, "the deadlock experiment did not run")
        } else {
            let verdict: ClaimVerdict.Verdict =
                measured.deadlocksSorted > 0 ? .doesNotHold : measured.deadlocksUnsorted > 0 ? .holds : .conditional
            return ClaimVerdict(
                number: 9, claim: claim, verdict: verdict,
                summary: verdict == .holds
                    ? "Sorted locks never deadlocked; unsorted ones did."
                    : verdict == .doesNotHold ? "Sorted locks deadlocked too." : "Holds only as far as this run can tell: neither sorted nor unsorted locks deadlocked, so the run did not provoke one.",
                evidence: "16 clients creating 4-item orders in shuffled order: \(measured.deadlocksSorted) deadlocks in \(measured.deadlockOperationsSorted) operations with sorted locks, \(measured.deadlocksUnsorted) in \(measured.deadlockOperationsUnsorted) unsorted"
                    + (measured.deadlocksUnsorted == 0 && measured.deadlocksSorted == 0 ? " (the unsorted control did not deadlock either, so this run cannot tell)" : ""),
                measuredBy: ["experiment deadlocks-seed", "experiment deadlocks-unsorted"])
        }
    }

    /// 10. Cart and order state conflicts are rare; no retry needed.
    func stateConflictsAreRare() -> ClaimVerdict {
        let claim = "Cart and order state conflicts are so rare that no retry is needed."
        func rate(_ cell: CellResult?) -> (Int, Int)? {
            guard let cell, !cell.runs.isEmpty else { return nil }
            return (cell.failures["conflict"] ?? 0, cell.operations)
        }
        let spread = rate(results.cell(.cartQuantity, "seed", .spread, most))
        let hot = rate(results.cell(.cartQuantity, "seed", .hot, most))
        if let spread, let hot {
            let spreadRate = Double(spread.0) / Double(max(1, spread.1))
            let hotRate = Double(hot.0) / Double(max(1, hot.1))
            let raceRate = Double(measured.stateRaceConflicts) / Double(max(1, measured.stateRaceOperations))
            let verdict: ClaimVerdict.Verdict =
                spreadRate < 0.01 && hotRate < 0.01 && raceRate < 0.01 ? .holds : spreadRate < 0.01 ? .conditional : .doesNotHold
            return ClaimVerdict(
                number: 10, claim: claim, verdict: verdict,
                summary: verdict == .holds
                    ? "Conflicts stayed under 1% everywhere: no retry needed."
                    : verdict == .conditional
                        ? String(format: "No retry is needed only while writes spread over many rows (%.1f%% conflicts); on one hot cart line %.1f%% and in the order-state race %.1f%% of operations conflicted.", spreadRate * 100, hotRate * 100, raceRate * 100)
                        : String(format: "Conflicts are not rare even spread over many rows (%.1f%%): a retry is needed.", spreadRate * 100),
                evidence: "cart, \(most) clients, no retry: \(percent(spread.0, spread.1)) of \(spread.1) adds conflicted spread over 10,000 users × 100 products (realistic), \(percent(hot.0, hot.1)) of \(hot.1) on one hot cart line; order state, 16 clients racing on 40 orders: \(percent(measured.stateRaceConflicts, measured.stateRaceOperations)) conflicts"
                    + (verdict == .conditional ? "; no retry is enough only while contention stays low" : ""),
                measuredBy: ["cart-quantity/seed/spread/c\(most)", "cart-quantity/seed/hot/c\(most)", "experiment order-state-race"])
        } else {
            return notMeasured(10, claim, "the cart-quantity seed cells at \(most) clients are missing")
        }
    }
}
