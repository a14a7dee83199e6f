import Foundation
import LockProofCommerce
import LockProofConfiguration
import LockProofLocking
import LockProofPostgres
import LockProofScenario

/// Runs the benchmark matrix: every cell with the scenario runner (same workload, same checkers as
/// `verify`), its pgbench ceiling in the same run, repetitions interleaved (every cell once, then
/// every cell again in reverse) so that a noisy stretch of the shared machine hits many cells a
/// little rather than one cell a lot.
public final class BenchRunner {
    public let configuration: ServerConfiguration
    public let preset: BenchPreset
    public let cases: [BenchCase]
    public var log: (String) -> Void = { print($0) }
    /// Where pgbench scripts are written while they run.
    public var workDirectory: String
    /// How long to wait for another run holding the database (`--wait-for-database`); 0: refuse.
    public var waitForDatabaseSeconds: Double = 0
    /// The caller's hold on the database (taken before it wrote anything); nil: `run` takes one.
    public var claim: DatabaseClaim?

    public init(configuration: ServerConfiguration, preset: BenchPreset, cases: [BenchCase] = BenchCase.all) {
        self.configuration = configuration
        self.preset = preset
        self.cases = cases
        workDirectory = NSTemporaryDirectory()
    }

    public func run() throws -> BenchResults {
        let started = monotonicSeconds()
        let startedAt = ISO8601DateFormatter().string(from: Date())
        guard let pgbench = findTool("pgbench") else {
            throw BenchError("pgbench not found (it ships with PostgreSQL: pg_config --bindir); run scripts/install-deps.sh")
        }
        // Held for the whole benchmark: no other run disturbs a cell (see DatabaseClaim).
        let claim = try self.claim ?? ScenarioRunner.claimDatabase(
            configuration, command: "bench", waitSeconds: waitForDatabaseSeconds, waiting: { [log] in log("bench: waiting for the database: \($0)") })
        defer { if self.claim == nil { claim.release() } }
        let shared = try SharedServices(configuration: configuration)
        defer { shared.stop() }
        let runner = ScenarioRunner(configuration: configuration, shared: shared, progress: ProgressReporter(enabled: false))
        runner.claim = claim
        let ceilingDatabase = try PostgresConnection(configuration.databaseURL)

        // 1. Trace one operation of every strategy and derive its pgbench script per contention.
        var scripts: [String: PgbenchScript] = [:]
        var errors: [String] = []
        var cellErrors: [BenchCellKey: [String]] = [:]
        let cells = benchCells(preset, cases: cases)
        let casesByName = Dictionary(uniqueKeysWithValues: cases.map { ($0.caseName, $0) })
        // The pools a cell walks one row per operation: grown (and the ceiling scripts that pick
        // from them derived again) when a cell outruns them, so a faster machine never turns a
        // cell into an error.
        var sized = preset
        var traces: [String: Result<TracedOperation, any Error>] = [:]
        func deriveScripts(_ benchCase: BenchCase, _ strategy: String) {
            guard let trace = traces["\(benchCase.caseName.rawValue)/\(strategy)"] else { return }
            for contention in benchCase.contentions {
                let name = scriptName(benchCase.caseName, strategy, contention)
                do {
                    let cellScenario = try benchCase.scenario(
                        strategy: strategy, clients: 1, contention: contention, preset: sized)
                    scripts[name] = try trace.get().script(
                        caseName: benchCase.caseName, strategy: strategy, picksFrom: cellScenario)
                } catch {
                    for cell in cells where scriptName(cell.caseName, cell.strategy, cell.contention) == name {
                        cellErrors[cell, default: []].append("no ceiling script: \(error)")
                    }
                }
            }
        }
        for benchCase in cases {
            for strategy in benchCase.strategies where preset.measures(benchCase.caseName, strategy) {
                traces["\(benchCase.caseName.rawValue)/\(strategy)"] = Result {
                    try traceOperation(benchCase: benchCase, strategy: strategy, preset: preset, runner: runner)
                }
                deriveScripts(benchCase, strategy)
            }
        }
        log("bench: traced \(scripts.count) strategy transactions; \(cells.count) cells × \(preset.repetitions) repetitions of \(preset.cellSeconds) s")

        // 2. The matrix, repetitions interleaved.
        var runs: [BenchCellKey: [CellRun]] = [:]
        var ceilings: [BenchCellKey: [PgbenchResult]] = [:]
        // A pooled cell's ceiling depends on the pool, not on its clients: one pgbench run per
        // strategy, pool and repetition serves every client count (one line, not two noisy ones).
        var sharedCeilings: [String: PgbenchResult] = [:]
        for repetition in 0..<preset.repetitions {
            let order = repetition % 2 == 0 ? cells : cells.reversed()
            for (position, cell) in order.enumerated() {
                let benchCase = casesByName[cell.caseName]!
                let cellStarted = monotonicSeconds()
                do {
                    var scenario = try benchCase.scenario(cell, preset: sized)
                    var run = CellRun(try runner.run(scenario))
                    // Outran its pool: grow the case's pool to twice what the cell reached and
                    // run it again (the outrun run measured rows already used, so it is dropped).
                    for _ in 0..<3 {
                        guard let outrun = exhaustedPool(scenario, run) else { break }
                        sized.grow(cell.caseName, toHold: outrun.slots * 2)
                        log("bench: \(cell.id) reached slot \(outrun.slots) of a pool of \(outrun.pool) \(outrun.what): the pool grows to \(sized.poolSize(cell.caseName) ?? 0) and the cell runs again")
                        for strategy in benchCase.strategies where preset.measures(cell.caseName, strategy) {
                            deriveScripts(benchCase, strategy)
                        }
                        scenario = try benchCase.scenario(cell, preset: sized)
                        run = CellRun(try runner.run(scenario))
                    }
                    runs[cell, default: []].append(run)
                    if run.operations == 0 {
                        // An empty run measures nothing: an error, never a throughput of zero.
                        throw BenchError(String(format: "no operation finished (%.1f s)", run.seconds))
                    }
                    if let outrun = exhaustedPool(scenario, run) {
                        throw BenchError("the run reached slot \(outrun.slots) of a pool of \(outrun.pool) \(outrun.what) (one per operation) after growing it three times")
                    }
                    let ceilingStarted = monotonicSeconds()
                    if repetition < preset.ceilingRepetitions,
                        let script = scripts[scriptName(cell.caseName, cell.strategy, cell.contention)]
                    {
                        let sharedKey = cell.pool.map {
                            "\(scriptName(cell.caseName, cell.strategy, cell.contention))/pool\($0)/\(repetition)"
                        }
                        let ceiling: PgbenchResult
                        if let sharedKey, let measured = sharedCeilings[sharedKey] {
                            ceiling = measured
                        } else {
                            _ = try runner.resetAndSeed(scenario, db: ceilingDatabase)
                            ceiling = try runPgbench(
                                pgbench, script: script, clients: cell.ceilingClients, length: .seconds(preset.cellSeconds),
                                databaseURL: configuration.databaseURL, directory: workDirectory)
                            if let sharedKey { sharedCeilings[sharedKey] = ceiling }
                        }
                        ceilings[cell, default: []].append(ceiling)
                        log(String(format: "bench: [%d/%d %3d/%d] %@: %.0f ops/s, ceiling %.0f tps%@ (%.1f s + %.1f s)",
                                   repetition + 1, preset.repetitions, position + 1, cells.count, cell.id, run.throughput,
                                   ceiling.tps, run.invariantHeld ? "" : " — invariant broken",
                                   ceilingStarted - cellStarted, monotonicSeconds() - ceilingStarted))
                    } else {
                        log(String(format: "bench: [%d/%d %3d/%d] %@: %.0f ops/s%@ (%.1f s)", repetition + 1,
                                   preset.repetitions, position + 1, cells.count, cell.id, run.throughput,
                                   run.invariantHeld ? "" : " — invariant broken", ceilingStarted - cellStarted))
                    }
                } catch {
                    cellErrors[cell, default: []].append("repetition \(repetition + 1): \(error)")
                    log("bench: \(cell.id): error: \(error)")
                }
            }
        }

        var results = BenchResults(
            preset: preset.title, startedAt: startedAt, seconds: 0,
            cells: cells.map {
                CellResult(key: $0, runs: runs[$0] ?? [], ceilingRuns: ceilings[$0] ?? [], errors: cellErrors[$0] ?? [])
            },
            scripts: scripts.mapValues(\.text), redisLockCosts: [], claims: [], errors: errors)
        results.scriptDefinitions = scripts.mapValues(\.definitions)

        // 3. The Redis lock's own cost, against redis-benchmark.
        do {
            results.redisLockCosts = try measureRedisLockCost(
                configuration: configuration, clientCounts: preset.clientCounts, seconds: min(preset.seconds, 1))
        } catch {
            errors.append("Redis lock cost: \(error)")
        }

        // 4. The claims: the matrix plus the experiments it lacks.
        let experiments = ClaimExperiments(runner: runner, preset: preset, cases: cases, log: log)
        let measured = experiments.run()
        errors += measured.errors
        results.claims = judgeClaims(results, measured)
        results.errors = errors
        results.seconds = monotonicSeconds() - started
        results.endedAt = ISO8601DateFormatter().string(from: Date())
        results.machine = MachineInfo.probe(configuration)
        return results
    }

    /// A cell whose clients walk a pool of rows one operation each (`per-operation`) must not run
    /// past its end: the next operation would meet a row already used (a paid order) and measure
    /// something else. The busiest client's last slot tells.
    private func exhaustedPool(_ scenario: Scenario, _ run: CellRun) -> (slots: Int, pool: Int, what: String)? {
        guard scenario.workload.pick == .perOperation, let most = run.mostIterations else { return nil }
        let pool: Int
        let what: String
        switch scenario.caseName {
        case .processPayment, .orderState: (pool, what) = (scenario.seed.orders, "orders")
        case .issueCoupon: (pool, what) = (scenario.seed.users, "users")
        default: return nil
        }
        let slots = most * scenario.workload.virtualUsers[0]
        return slots > pool ? (slots, pool, what) : nil
    }

    private func scriptName(_ caseName: CaseName, _ strategy: String, _ contention: Contention) -> String {
        "\(caseName.rawValue)/\(strategy)/\(contention.rawValue)"
    }
}
