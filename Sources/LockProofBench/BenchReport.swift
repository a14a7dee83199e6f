import Foundation
import LockProofCommerce

/// bench.json, bench.csv and bench.md (a summary fit for a pull-request comment).
public enum BenchReport {
    public static func json(_ results: BenchResults) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try encoder.encode(BenchJSON(results))
    }

    public static func csv(_ results: BenchResults) -> String {
        var lines = [
            "case,strategy,contention,clients,pool,negative_control,redis_lock,invariant_held,throughput_median,throughput_min,throughput_max,ceiling_clients,ceiling_tps_median,ratio,retries_per_op,attempts_per_op,attempt_ratio,client_cpu_per_op_s,pgbench_cpu_per_tx_s,context_switches_per_op,pgbench_context_switches_per_tx,latency_avg_s,pgbench_latency_avg_s,latency_p50_s,latency_p95_s,latency_p99_s,latency_max_s,redis_wait_p50_s,redis_wait_p99_s,row_wait_p50_s,row_wait_p99_s,pool_wait_postgres_p50_s,pool_wait_postgres_p99_s,pool_wait_redis_p50_s,pool_wait_redis_p99_s,failures,repetitions,errors"
        ]
        func number(_ value: Double?) -> String { value.map { String(format: "%.6g", $0) } ?? "" }
        for cell in results.cells {
            let failures = cell.failures.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ";")
            let fields: [String] = [
                cell.key.caseName.rawValue, cell.key.strategy, cell.key.contention.rawValue, String(cell.key.clients),
                cell.key.pool.map(String.init) ?? "",
                String(cell.negativeControl), String(cell.usesRedisLock), String(cell.invariantHeld),
                number(cell.throughput?.median), number(cell.throughput?.min), number(cell.throughput?.max),
                String(cell.key.ceilingClients), number(cell.ceiling?.median), number(cell.ratio), number(cell.retriesPerOperation),
                number(cell.attemptsPerOperation), number(cell.attemptRatio), number(cell.clientCPUPerOperation),
                number(cell.ceilingCPUPerTransaction), number(cell.contextSwitchesPerOperation),
                number(cell.ceilingContextSwitchesPerTransaction), number(cell.latencyAverage), number(cell.ceilingLatencyAverage),
                number(cell.median { $0.latencyP50 }), number(cell.median { $0.latencyP95 }),
                number(cell.median { $0.latencyP99 }), number(cell.median { $0.latencyMax }),
                number(cell.lockWait("redis", \.p50)), number(cell.lockWait("redis", \.p99)),
                number(cell.lockWait("row", \.p50)), number(cell.lockWait("row", \.p99)),
                number(cell.poolWait("postgres", \.p50)), number(cell.poolWait("postgres", \.p99)),
                number(cell.poolWait("redis", \.p50)), number(cell.poolWait("redis", \.p99)), failures,
                String(cell.runs.count), cell.errors.joined(separator: " | "),
            ]
            lines.append(fields.map(csvField).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func csvField(_ text: String) -> String {
        text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" })
            ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
    }

    /// The ratio table: one row per case and strategy, one column per contention and client count.
    public static func ratioTable(_ results: BenchResults) -> String {
        let columns = Array(
            Set(results.cells.map { ColumnKey(contention: $0.key.contention, clients: $0.key.clients, pool: $0.key.pool) })
        ).sorted()
        var lines = [
            "| case | strategy | " + columns.map(\.title).joined(separator: " | ") + " |",
            "|---|---|" + columns.map { _ in "---:" }.joined(separator: "|") + "|",
        ]
        var rows: [(CaseName, String)] = []
        for cell in results.cells where !rows.contains(where: { $0 == (cell.key.caseName, cell.key.strategy) }) {
            rows.append((cell.key.caseName, cell.key.strategy))
        }
        for (caseName, strategy) in rows {
            var marks = ""
            if BenchCase.isNegativeControl(caseName, strategy) { marks += " ✗control" }
            if BenchCase.usesRedisLock(caseName, strategy) { marks += " (redis)" }
            let values = columns.map { column -> String in
                guard let cell = results.cell(caseName, strategy, column.contention, column.clients, pool: column.pool) else {
                    return ""
                }
                if !cell.errors.isEmpty { return "ERROR" }
                guard let ratio = cell.ratio else { return "n/a" }
                let mark = cell.invariantHeld ? "" : " ✗"
                return String(format: "%.2f", ratio) + mark
            }
            lines.append("| \(caseName.rawValue) | \(strategy)\(marks) | " + values.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n")
    }

    struct ColumnKey: Hashable, Comparable {
        let contention: Contention
        let clients: Int
        let pool: Int?
        var title: String { "\(contention.rawValue) c\(clients)" + (pool.map { " pool\($0)" } ?? "") }
        static func < (lhs: ColumnKey, rhs: ColumnKey) -> Bool {
            (lhs.pool ?? 0, lhs.contention.rawValue, lhs.clients) < (rhs.pool ?? 0, rhs.contention.rawValue, rhs.clients)
        }
    }

    /// The decision tables, one per case, each with its "pick X when …" paragraph.
    public static func decisions(_ results: BenchResults) -> String {
        var text = "### What to pick\n\n"
        text += "Per case, each strategy's absolute operations/s (median of the repetitions, [min–max]), p99 latency, failed operations (retry exhaustion, timeouts, conflicts left to the user; a business refusal such as insufficient stock is not a failure) and whether the checkers found its invariant held. Ranked at each contention and client count only when it kept its invariant without failing an operation; the others are marked and say why.\n\n"
        text += DecisionTable.all(results).map(\.markdown).joined(separator: "\n")
        let wide = BenchWarnings.wideSpreads(results)
        if !wide.isEmpty {
            text += "\n**Spread too wide to rank** (the repetitions disagree more than the strategies may):\n\n"
            text += wide.map { "- \($0)\n" }.joined()
        }
        return text
    }

    /// The header: the preset as run, with its overrides, and every error or unmeasured claim.
    static func header(_ results: BenchResults) -> String {
        var text = "## LockProof benchmark (\(results.preset))\n\n"
        if results.hadErrors {
            text += "**The run had errors** — the numbers below are incomplete:\n\n"
            for error in results.errors { text += "- \(error)\n" }
            for cell in results.cells where !cell.errors.isEmpty {
                text += "- \(cell.key.id): \(cell.errors.joined(separator: "; "))\n"
            }
            text += "\n"
        }
        if !results.unmeasuredClaims.isEmpty {
            text += "**Claims not measured** (exit 1): \(results.unmeasuredClaims.map { "\($0.number) (\($0.evidence))" }.joined(separator: "; ")).\n\n"
        }
        return text
    }

    public static func markdown(_ results: BenchResults) -> String {
        header(results) + decisions(results) + "\n" + details(results)
    }

    /// Everything after the decision tables: ratios to the ceiling, retries, pools, rankings, the
    /// Redis lock's cost, the claims.
    public static func details(_ results: BenchResults) -> String {
        var text = ""
        let repetitions = results.cells.map(\.runs.count).max() ?? 0
        text += String(format: "%d cells, %d repetitions each (interleaved), %.0f s in all. ", results.cells.count, repetitions, results.seconds)
        text += "Started \(results.startedAt).\n\n"
        text += "### Throughput as a ratio to the pgbench ceiling\n\n"
        text += "Ceiling: pgbench running exactly the statements of the strategy's transaction (traced from the core) with the same clients, `-M prepared`, on the same seed. ✗ = a checker caught a broken invariant in the cell; ✗control = a deliberately broken strategy; (redis) = takes a Redis lock, whose round trips the ceiling leaves out (see below).\n\n"
        text += ratioTable(results) + "\n\n"
        let goalCells = results.unpooledCells.filter { !$0.usesRedisLock && !$0.negativeControl && $0.ratio != nil }
        let below = goalCells.filter { ($0.ratio ?? 0) < 0.9 }
        text += "Goal ≥ 0.90 for strategies without a Redis lock (clients with connections of their own): \(goalCells.count - below.count) of \(goalCells.count) cells meet it."
        if !below.isEmpty {
            text += " Below it, with what the cell measured (mean latencies: LockProof's operations, pgbench's transactions; CPU: the client side only, LockProof's threads against pgbench's process):\n\n"
            for cell in below.sorted(by: { ($0.ratio ?? 0) < ($1.ratio ?? 0) }) {
                text += "- \(cell.key.id): " + String(format: "%.2f", cell.ratio ?? 0) + " — \(explainGap(cell))\n"
            }
        }
        let retrying = results.unpooledCells.filter { ($0.retriesPerOperation ?? 0) > 0.005 && $0.ratio != nil }
        if !retrying.isEmpty {
            text += "\n\n### Retries: the client's cost apart from the strategy's\n\n"
            text += "pgbench runs one attempt per transaction; a retrying strategy runs one transaction per attempt. Attempted transactions/s over the ceiling is what the client achieved with the database's work; finished operations/s over the ceiling (the ratio above) adds the retries' cost.\n\n"
            text += "| cell | ratio (ops) | attempts/op | attempted tx/s | ceiling tps | attempt ratio |\n|---|---:|---:|---:|---:|---:|\n"
            for cell in retrying.sorted(by: { $0.key < $1.key }) {
                text += String(
                    format: "| %@ | %.2f | %.2f | %.0f | %.0f | %.2f |\n", cell.key.id, cell.ratio ?? 0, cell.attemptsPerOperation ?? 1,
                    cell.median { $0.attemptedThroughput } ?? 0, cell.ceiling?.median ?? 0, cell.attemptRatio ?? 0)
            }
        }
        let pooled = results.cells.filter { $0.key.pool != nil && !$0.runs.isEmpty }
        if !pooled.isEmpty {
            text += "\n\n### Shared connection pools\n\n"
            text += "The clients borrow from one pool of PostgreSQL sessions and one of Redis connections (`workload.connections`). At most that many transactions are in flight at the database, so the ceiling is pgbench with as many clients as the pool has sessions. Pool waits: `lockproof_pool_wait_seconds` per borrow (a session per transaction; a Redis connection for a lock's whole hold); *holding a lock*: the average wait of borrows made while the client held a Redis lock, time added to that lock's hold.\n\n"
            text += "| cell | ops/s | ceiling tps (pgbench clients) | ratio | postgres wait p50 / p99 | redis wait p50 / p99 | wait while holding a lock (avg) | failures |\n|---|---:|---:|---:|---:|---:|---:|---|\n"
            for cell in pooled.sorted(by: { $0.key < $1.key }) {
                let failures = cell.failures.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                let holding = ["postgres", "redis"].compactMap { pool in
                    cell.median { run in run.poolWaitsHoldingLock.first { $0.lock == pool }?.average }.map { "\(pool) \(ms($0))" }
                }.joined(separator: ", ")
                text += "| \(cell.key.id) | " + String(format: "%.0f", cell.throughput?.median ?? 0)
                    + " | " + String(format: "%.0f (%d)", cell.ceiling?.median ?? 0, cell.key.ceilingClients)
                    + " | " + (cell.ratio.map { String(format: "%.2f", $0) } ?? "n/a") + (cell.invariantHeld ? "" : " ✗")
                    + " | \(ms(cell.poolWait("postgres", \.p50))) / \(ms(cell.poolWait("postgres", \.p99)))"
                    + " | \(ms(cell.poolWait("redis", \.p50))) / \(ms(cell.poolWait("redis", \.p99)))"
                    + " | \(holding.isEmpty ? "none" : holding) | \(failures.isEmpty ? "none" : failures) |\n"
            }
            let short = pooled.filter { ($0.ratio ?? 1) < 0.9 }.sorted { ($0.ratio ?? 0) < ($1.ratio ?? 0) }
            if !short.isEmpty {
                text += "\nWhere the pooled cells' time goes (their clients queue for sessions: every borrow that waits wakes a sleeping thread):\n\n"
                for cell in short {
                    text += "- \(cell.key.id): " + String(format: "%.2f", cell.ratio ?? 0) + " — \(explainGap(cell))\n"
                }
            }
        }
        text += "\n\n### Ranking per case at the most clients (ops/s; strategies that failed operations or broke their invariant come last, marked)\n\n"
        let most = results.unpooledCells.map(\.key.clients).max() ?? 1
        text += "| case | contention | ranking (ops/s, median [min–max]) |\n|---|---|---|\n"
        for benchCase in BenchCase.all {
            for contention in benchCase.contentions {
                let ranked = results.ranking(benchCase.caseName, contention, most).filter { !$0.runs.isEmpty }
                guard !ranked.isEmpty else { continue }
                let list = ranked.map { cell -> String in
                    let spread = cell.throughput.map { String(format: "%.0f [%.0f–%.0f]", $0.median, $0.min, $0.max) } ?? "n/a"
                    let mark = cell.notRankedBecause.map { " ✗ not ranked: \($0)" } ?? (cell.spreadTooWideToRank ? " ⚠ spread too wide to rank" : "")
                    return "\(cell.key.strategy)\(cell.negativeControl ? " (control)" : "") \(spread)\(mark)"
                }.joined(separator: " > ")
                text += "| \(benchCase.caseName.rawValue) | \(contention.rawValue) c\(most) | \(list) |\n"
            }
        }
        if !results.redisLockCosts.isEmpty {
            text += "\n### The Redis lock's own cost\n\n"
            text += "| clients | LockProof acquire+release pairs/s | redis-benchmark acquire EVAL req/s | release EVAL req/s | pairs/s those allow | ratio |\n|---:|---:|---:|---:|---:|---:|\n"
            for cost in results.redisLockCosts {
                text += String(
                    format: "| %d | %.0f | %.0f | %.0f | %.0f | %.2f |\n", cost.clients, cost.lockProofPairsPerSecond,
                    cost.redisBenchmarkAcquire, cost.redisBenchmarkRelease, cost.redisBenchmarkPairsPerSecond, cost.ratio)
            }
        }
        text += "\n### Verdicts on the seed's claims\n\n| # | claim | verdict | in plain words | evidence | measured by |\n|---|---|---|---|---|---|\n"
        for claim in results.claims {
            let cells = [claim.summary, claim.evidence, claim.measuredBy.joined(separator: "; ")].map {
                $0.replacingOccurrences(of: "|", with: "/")
            }
            text += "| \(claim.number) | \(claim.claim) | **\(claim.verdict.rawValue)** | \(cells.joined(separator: " | ")) |\n"
        }
        return text
    }

    /// Where the time goes when a strategy falls short of its ceiling, from what the cell measured.
    static func explainGap(_ cell: CellResult) -> String {
        var reasons: [String] = []
        if let retries = cell.retriesPerOperation, retries > 0.05 {
            reasons.append(
                String(
                    format: "%.2f attempts per operation (each retry a whole transaction plus backoff; pgbench runs one attempt): attempted transactions %.2f of the ceiling",
                    1 + retries, cell.attemptRatio ?? 0))
        }
        let failures = cell.failures.values.reduce(0, +)
        if failures > 0 {
            let top = cell.failures.sorted { $0.value > $1.value }.prefix(2).map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            reasons.append("failed operations (\(top))")
        }
        if let wait = cell.lockWait("row", \.p50), wait > 0.001 {
            reasons.append(String(format: "row lock waits p50 %.1f ms", wait * 1000))
        }
        if cell.key.pool != nil {
            let waits = ["postgres", "redis"].compactMap { pool in
                cell.poolWait(pool, \.average).flatMap { $0 > 0.0005 ? String(format: "%@ %.1f ms", pool, $0 * 1000) : nil }
            }
            if !waits.isEmpty {
                reasons.append("pool waits on average: \(waits.joined(separator: ", ")) (inside the operation's latency; pgbench's \(cell.key.ceilingClients) clients never queue)")
            }
        }
        if let average = cell.latencyAverage, let pgbench = cell.ceilingLatencyAverage {
            reasons.append(
                String(format: "mean latency %.3f ms against pgbench's %.3f ms (%+.3f ms)", average * 1000, pgbench * 1000, (average - pgbench) * 1000))
        }
        if let cpu = cell.clientCPUPerOperation, let pgbench = cell.ceilingCPUPerTransaction {
            reasons.append(
                String(
                    format: "client CPU %.0f µs per operation against pgbench's %.0f µs per transaction (%+.0f µs%@)", cpu * 1e6,
                    pgbench * 1e6, (cpu - pgbench) * 1e6,
                    cell.key.clients > 1 ? ", on the cores the server shares" : ", in series with every round trip"))
        }
        if let switches = cell.contextSwitchesPerOperation, let pgbench = cell.ceilingContextSwitchesPerTransaction {
            reasons.append(
                String(
                    format: "%.1f context switches per operation against pgbench's %.2f per transaction (a thread per client sleeps at every round trip; pgbench's threads multiplex their connections)",
                    switches, pgbench))
        }
        if cell.key.caseName == .processPayment {
            // Not a statement of the strategy: the external system's own bookkeeping.
            let took = cell.median { $0.gatewayRecordAverage }.map { String(format: " (%.2f ms per payment on average)", $0 * 1000) } ?? ""
            reasons.append("each payment also calls the simulated gateway, which records the charge with an INSERT on one of its own four sessions\(took); the ceiling leaves the gateway out")
        }
        if reasons.isEmpty { reasons.append("no measured cause") }
        return reasons.joined(separator: "; ")
    }

    private static func ms(_ seconds: Double?) -> String { seconds.map { String(format: "%.1f ms", $0 * 1000) } ?? "n/a" }
}
