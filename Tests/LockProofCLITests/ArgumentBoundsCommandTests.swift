import Foundation
import LockProofTestSupport
import XCTest

/// Issue 15's small things, as a user meets them through the `lockproof` binary: every numeric
/// option refuses an out-of-range value (negative ones included) by naming the option, the value
/// and the bounds, and no arguments or `help` of an unknown subcommand is a usage error.
final class ArgumentBoundsCommandTests: XCTestCase {
    /// Servers that refuse at once: a value the command wrongly accepted ends in "cannot reach"
    /// (not the message under test) instead of serving until a signal.
    private let unreachable = [
        "LOCKPROOF_REDIS_URL": "redis://127.0.0.1:1/0", "LOCKPROOF_DATABASE_URL": "postgresql://lockproof@127.0.0.1:1/lockproof",
    ]

    private func lockproof(_ arguments: [String]) throws -> ProcessOutput {
        try runProgram(try BuiltBinary.lockproof(), arguments, environment: unreachable, timeoutSeconds: 60)
    }

    private func assertRefused(_ arguments: [String], saying fragment: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try lockproof(arguments)
        XCTAssertEqual(result.status, 2, "\(arguments): \(result.output)", file: file, line: line)
        XCTAssertTrue(result.output.contains(fragment), "\(arguments): expected '\(fragment)' in: \(result.output)", file: file, line: line)
        XCTAssertFalse(result.output.contains("Missing value"), "\(arguments): \(result.output)", file: file, line: line)
    }

    /// `--recover-interval 1e10` served, then died with SIGILL; `1e-300` ran a busy loop.
    func testServeIntervalsOutsideTheirBoundsAreRefusedWithTheBounds() throws {
        for option in ["--recover-interval", "--pending-interval"] {
            for (value, shown) in [("1e10", "10000000000"), ("86400.5", "86400.5"), ("1e-300", "1e-300"), ("0.09", "0.09"), ("0", "0"),
                                   ("-1", "-1"), ("nan", "nan"), ("inf", "inf")] {
                try assertRefused(
                    ["serve", "--metrics-address", "127.0.0.1:0", option, value],
                    saying: "\(option): found \(shown); expected 0.1 to 86400 seconds")
            }
        }
        let help = try lockproof(["serve", "--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertEqual(help.output.components(separatedBy: "0.1 to 86400").count - 1, 2, "both bounds in --help: \(help.output)")
    }

    /// Every numeric option of every command: a negative value is read as the option's value and
    /// refused by its bounds (argument-parser took `-1` for an option and said "Missing value").
    func testNegativeNumbersAreRefusedByTheirBoundsNotAsMissingValues() throws {
        let timeout = "--connect-timeout: found '-1'; expected a whole number of seconds from 1 to 3600"
        let cases: [([String], String)] = [
            (["run", "x.yaml", "--connect-timeout", "-1"], timeout),
            (["verify", "--connect-timeout", "-1"], timeout),
            (["serve", "--connect-timeout", "-1"], timeout),
            (["bench-metrics", "--connect-timeout", "-1"], timeout),
            (["recover", "--min-age", "-1"], "--min-age: found -1; expected 0 to 86400 seconds"),
            (["bench", "--seconds", "-1"], "--seconds: found -1; expected 1 to 3600"),
            (["bench", "--repetitions", "-2"], "--repetitions: found -2; expected 1 to 100"),
            (["bench", "--clients", "-1,4"], "--clients: found '-1'; expected whole numbers from 1 to 300"),
            (["bench-metrics", "--clients", "-1"], "--clients: found -1; expected 1 to 300"),
            (["bench-metrics", "--rounds", "-1"], "--rounds: found -1; expected 1 to 1000"),
            (["bench-metrics", "--scrapes", "-1"], "--scrapes: found -1; expected 1 to 1000000"),
            (["bench-metrics", "--seconds", "-0.5"], "--seconds: found -0.5; expected 0.1 to 3600 seconds"),
        ]
        for (arguments, message) in cases { try assertRefused(arguments, saying: message) }
    }

    /// `--client-engine` (issue 18) takes `events` or `threads`, shown in --help; anything else is exit 2 naming both.
    func testAnUnknownClientEngineIsRefusedNamingTheEngines() throws {
        for command in ["run", "verify"] {
            try assertRefused(
                [command, "x.yaml", "--client-engine", "fibers"], saying: "--client-engine: found fibers; expected one of events, threads")
            let help = try lockproof([command, "--help"])
            XCTAssertEqual(help.status, 0)
            XCTAssertTrue(help.output.contains("--client-engine <events|threads>"), help.output)
        }
    }

    /// `--strategies` names strategies of the selected cases; anything else is refused before a run.
    func testBenchStrategiesOutsideTheSelectedCasesAreRefused() throws {
        try assertRefused(
            ["bench", "--cases", "charge-balance", "--strategies", "seed,unsorted"],
            saying: "--strategies: found 'unsorted'; expected some of atomic, key-outside-transaction, naive, optimistic-retry, pessimistic, redis-lock, redis-lock-fenced, seed")
        let help = try lockproof(["bench", "--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.output.contains("--strategies <strategies>"), help.output)
    }

    /// No arguments and `help bogus` printed the help and exited 0: a script that lost its
    /// subcommand "passed".
    func testNoArgumentsAndHelpOfAnUnknownSubcommandAreUsageErrors() throws {
        let bare = try lockproof([])
        XCTAssertEqual(bare.status, 2, bare.output)
        XCTAssertTrue(bare.output.contains("USAGE: lockproof <subcommand>"), bare.output)
        XCTAssertTrue(bare.output.contains("no subcommand given; expected one of run, verify"), bare.output)
        try assertRefused(["help", "bogus"], saying: "unknown subcommand 'bogus' of 'lockproof'; expected one of run, verify")
        try assertRefused(["help", "run", "bogus"], saying: "unknown subcommand 'bogus' of 'lockproof run'")
        for asked in [["help"], ["help", "run"], ["help", "serve"], ["--help"]] {
            let result = try lockproof(asked)
            XCTAssertEqual(result.status, 0, "\(asked): \(result.output)")
            XCTAssertTrue(result.output.contains("USAGE: lockproof"), "\(asked): \(result.output)")
        }
    }
}
