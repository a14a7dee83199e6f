import Foundation
import LockProofCommerce

/// bench.json, bench.csv and bench.md (a summary fit for a pull-request comment).
public enum BenchReport {
    public static func json(_ results: BenchResults) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try encoder.encode(JSONDocument(results))
    }

    /// The JSON document: every cell with its repetitions, ceiling and ratio, and the verdicts.
    struct JSONDocument: Encodable {
        struct Cell: Encodable {
            let id: String
            let key: BenchCellKey
            let negativeControl: Bool
            let usesRedisLock: Bool
            let invariantHeld: Bool
            let violations: [String]
            let throughput: Spread?
            let ceiling: Spread?
            let ratio: Double?
            let retriesPerOperation: Double?
            let latencyP50: Double?
            let latencyP95: Double?
            let latencyP99: Double?
            let latencyMax: Double?
            let failures: [String: Int]
            let runs: [CellRun]
            let ceilingRuns: [PgbenchResult]
            let errors: [String]
            let poolWait: String
        }
        let preset: String
        let startedAt: String
        let seconds: Double
        let failed: Bool
        let errors: [String]
        let cells: [Cell]
        let redisLockCosts: [RedisLockCost]
        let claims: [ClaimVerdict]
        let pgbenchScripts: [String: String]

        init(_ results: BenchResults) {
            preset = results.preset
            startedAt = results.startedAt
            seconds = results.seconds
            failed = results.failed
            errors = results.errors
            cells = results.cells.map { cell in
                Cell(
                    id: cell.key.id, key: cell.key, negativeControl: cell.negativeControl, usesRedisLock: cell.usesRedisLock,
                    invariantHeld: cell.invariantHeld, violations: cell.violations, throughput: cell.throughput,
                    ceiling: cell.ceiling, ratio: cell.ratio, retriesPerOperation: cell.retriesPerOperation,
                    latencyP50: cell.median { $0.latencyP50 }, latencyP95: cell.median { $0.latencyP95 },
                    latencyP99: cell.median { $0.latencyP99 }, latencyMax: cell.median { $0.latencyMax },
                    failures: cell.failures, runs: cell.runs, ceilingRuns: cell.ceilingRuns, errors: cell.errors,
                    poolWait: "not measured: LockProof has no connection pool yet (each client owns its session)")
            }
            redisLockCosts = results.redisLockCosts
            claims = results.claims
            pgbenchScripts = results.scripts
        }
    }

    public static func csv(_ results: BenchResults) -> String {
        var lines = [
            "case,strategy,contention,clients,negative_control,redis_lock,invariant_held,throughput_median,throughput_min,throughput_max,ceiling_tps_median,ratio,retries_per_op,latency_p50_s,latency_p95_s,latency_p99_s,latency_max_s,redis_wait_p50_s,redis_wait_p99_s,row_wait_p50_s,row_wait_p99_s,failures,repetitions,errors"
        ]
        func number(_ value: Double?) -> String { value.map { String(format: "%.6g", $0) } ?? "" }
        for cell in results.cells {
            let failures = cell.failures.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ";")
            let fields: [String] = [
                cell.key.caseName.rawValue, cell.key.strategy, cell.key.contention.rawValue, String(cell.key.clients),
                String(cell.negativeControl), String(cell.usesRedisLock), String(cell.invariantHeld),
                number(cell.throughput?.median), number(cell.throughput?.min), number(cell.throughput?.max),
                number(cell.ceiling?.median), number(cell.ratio), number(cell.retriesPerOperation),
                number(cell.median { $0.latencyP50 }), number(cell.median { $0.latencyP95 }),
                number(cell.median { $0.latencyP99 }), number(cell.median { $0.latencyMax }),
                number(cell.lockWait("redis", \.p50)), number(cell.lockWait("redis", \.p99)),
                number(cell.lockWait("row", \.p50)), number(cell.lockWait("row", \.p99)), failures,
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
        let columns = Array(Set(results.cells.map { ColumnKey(contention: $0.key.contention, clients: $0.key.clients) }))
            .sorted()
        var lines = [
            "| case | strategy | " + columns.map { "\($0.contention.rawValue) c\($0.clients)" }.joined(separator: " | ") + " |",
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
                guard let cell = results.cell(caseName, strategy, column.contention, column.clients) else { return "" }
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
        static func < (lhs: ColumnKey, rhs: ColumnKey) -> Bool {
            (lhs.contention.rawValue, lhs.clients) < (rhs.contention.rawValue, rhs.clients)
        }
    }

    public static func markdown(_ results: BenchResults) -> String {
        var text = "## LockProof benchmark (\(results.preset) preset)\n\n"
        if results.failed {
            text += "**The run had errors** — the numbers below are incomplete:\n\n"
            for error in results.errors { text += "- \(error)\n" }
            for cell in results.cells where !cell.errors.isEmpty {
                text += "- \(cell.key.id): \(cell.errors.joined(separator: "; "))\n"
            }
            text += "\n"
        }
        let repetitions = results.cells.map(\.runs.count).max() ?? 0
        text += String(format: "%d cells, %d repetitions each (interleaved), %.0f s in all. ", results.cells.count, repetitions, results.seconds)
        text += "Started \(results.startedAt).\n\n"
        text += "### Throughput as a ratio to the pgbench ceiling\n\n"
        text += "Ceiling: pgbench running exactly the statements of the strategy's transaction (traced from the core) with the same clients, `-M prepared`, on the same seed. ✗ = a checker caught a broken invariant in the cell; ✗control = a deliberately broken strategy; (redis) = takes a Redis lock, whose round trips the ceiling leaves out (see below).\n\n"
        text += ratioTable(results) + "\n\n"
        let goalCells = results.cells.filter { !$0.usesRedisLock && !$0.negativeControl && $0.ratio != nil }
        let below = goalCells.filter { ($0.ratio ?? 0) < 0.9 }
        text += "Goal ≥ 0.90 for strategies without a Redis lock: \(goalCells.count - below.count) of \(goalCells.count) cells meet it."
        if !below.isEmpty {
            text += " Below it:\n\n"
            for cell in below.sorted(by: { ($0.ratio ?? 0) < ($1.ratio ?? 0) }) {
                text += "- \(cell.key.id): " + String(format: "%.2f", cell.ratio ?? 0) + " — \(explainGap(cell))\n"
            }
        }
        text += "\n\n### Fastest correct strategy per case (hot / spread, most clients)\n\n"
        let most = results.cells.map(\.key.clients).max() ?? 1
        text += "| case | contention | ranking (ops/s, median [min–max]) |\n|---|---|---|\n"
        for benchCase in BenchCase.all {
            for contention in benchCase.contentions {
                let ranked = results.ranking(benchCase.caseName, contention, most).filter { !$0.runs.isEmpty }
                guard !ranked.isEmpty else { continue }
                let list = ranked.map { cell -> String in
                    let spread = cell.throughput.map { String(format: "%.0f [%.0f–%.0f]", $0.median, $0.min, $0.max) } ?? "n/a"
                    let mark = cell.invariantHeld ? "" : " ✗ broken"
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
        text += "\n### Verdicts on the seed's claims\n\n| # | claim | verdict | evidence | measured by |\n|---|---|---|---|---|\n"
        for claim in results.claims {
            text += "| \(claim.number) | \(claim.claim) | **\(claim.verdict.rawValue)** | \(claim.evidence.replacingOccurrences(of: "|", with: "/")) | \(claim.measuredBy.joined(separator: ", ")) |\n"
        }
        return text
    }

    /// Where the time goes when a strategy falls short of its ceiling, from what the cell measured.
    static func explainGap(_ cell: CellResult) -> String {
        var reasons: [String] = []
        if let retries = cell.retriesPerOperation, retries > 0.05 {
            reasons.append(String(format: "%.2f retries per operation (each a whole transaction plus backoff; pgbench runs one attempt)", retries))
        }
        let failures = cell.failures.values.reduce(0, +)
        if failures > 0 {
            let top = cell.failures.sorted { $0.value > $1.value }.prefix(2).map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            reasons.append("failed operations (\(top))")
        }
        if let wait = cell.lockWait("row", \.p50), wait > 0.001 {
            reasons.append(String(format: "row lock waits p50 %.1f ms", wait * 1000))
        }
        let pgbenchLatency = Spread(cell.ceilingRuns.compactMap(\.latencyAverageMilliseconds))?.median
        if let pgbenchLatency, let p50 = cell.median({ $0.latencyP50 }) {
            reasons.append(
                String(
                    format: "operation latency p50 %.2f ms against pgbench's average %.2f ms for the same statements (%+.2f ms: the client's own work, its thread's scheduling among %d)",
                    p50 * 1000, pgbenchLatency, p50 * 1000 - pgbenchLatency, cell.key.clients))
        }
        if reasons.isEmpty { reasons.append("no measured cause") }
        return reasons.joined(separator: "; ")
    }
}
