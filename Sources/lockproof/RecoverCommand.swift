import ArgumentParser
import Foundation
import LockProofCommerce
import LockProofConfiguration
import LockProofPostgres

/// `lockproof recover`: finish every interrupted payment exactly once.
struct RecoverCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "Finish every interrupted payment exactly once, and retry failed compensations.",
        discussion: """
            Every payment records its intent in the transaction that deducts balance and stock. An \
            intent still open (the client died, or the gateway never answered) is settled by asking \
            the simulated gateway what became of the order (its answers are kept by order id in the \
            gateway_charges table, as a real gateway keeps them by idempotency key): approved → the \
            order is marked PAID; declined or never charged → the gateway voids it and balance and \
            stock are given back. Pending compensations are retried. Running it again changes \
            nothing. Servers: LOCKPROOF_DATABASE_URL and LOCKPROOF_REDIS_URL. `lockproof run` does \
            this at the end of every scenario; `lockproof serve` every --recover-interval seconds.
            Refuses a database that is not LockProof's, and one that a run or a serve instance holds \
            (see --wait-for-database). Exit status: 0 when nothing is left open or pending, 1 when \
            something is, 2 when it cannot start.

            Example:
              lockproof recover --min-age 60 --json
            """)

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Leave intents younger than this alone (a live payment may still be running), \(SecondsBounds.describe(SecondsBounds.minimumAge)).",
            valueName: "seconds"))
    var minAge: Double = 0

    @Flag(help: "Print the report as JSON.")
    var json = false

    @OptionGroup var database: DatabaseWaitOptions

    func validate() throws {
        try checkBounds(minAge, option: "--min-age", range: SecondsBounds.minimumAge)
    }

    func run() throws {
        let configuration: ServerConfiguration
        let claim: DatabaseClaim
        let client: CommerceClient
        do {
            configuration = try ServerConfiguration.fromEnvironment()
            // Refused (or waited for) when the database is not LockProof's, or a run or serve
            // instance holds it; held until recovery ends. Recovery takes no Redis lock keys.
            claim = try DatabaseClaim.claimForWriting(
                .run, configuration: configuration, command: "recover", waitSeconds: database.seconds, holdRedis: false,
                waiting: DatabaseWaitOptions.announce)
            client = try CommerceClient(
                configuration: configuration, shared: nil,
                gateway: SimulatedPaymentGateway(
                    failureRate: 0, seed: 1, records: DatabaseGatewayRecords(databaseURL: configuration.databaseURL)))
        } catch {
            throw startupFailure("\(error)")
        }
        defer { claim.release() }
        let report: RecoveryReport
        do {
            report = try PaymentRecovery.run(client: client, minimumAgeSeconds: minAge)
        } catch {
            throw startupFailure("recovery failed: \(error)")
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(
                """
                interrupted payments: \(report.interrupted) (marked PAID \(report.markedPaid), compensated \(report.compensated), still open \(report.stillOpen))
                compensations pending: \(report.compensationsPendingBefore) before, \(report.compensationsPendingAfter) after
                """)
            if let first = report.firstError { print("first error: \(first)") }
        }
        if report.stillOpen > 0 || report.compensationsPendingAfter > 0 { throw ExitCode(1) }
    }
}
