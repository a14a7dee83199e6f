import ArgumentParser
import Foundation
import LockProofCommerce
import LockProofConfiguration

#if canImport(Glibc)
    import Glibc
#endif

/// Exit status for a run that could not start: a bad argument the parser could not catch, an
/// unreachable server, an address that cannot be bound.
let startupFailureExitCode: Int32 = 2

/// Prints `message` on stderr and returns the error that makes the command exit with status 2.
/// The message must not carry a password: print URLs through `redactedURL`.
func startupFailure(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("lockproof: error: \(message)\n".utf8))
    return ExitCode(startupFailureExitCode)
}

/// The bounds of the options that take seconds, shown in --help and named by every refusal.
enum SecondsBounds {
    /// serve's polling intervals: under 0.1 s a pass (a query, a recovery transaction) becomes a
    /// busy loop (1e-300 drove 34,000 transactions a second); over a day it never runs in practice,
    /// the day being the cap of every duration LockProof takes.
    static let pollInterval: ClosedRange<Double> = 0.1...86_400
    /// run/verify --metrics-first-scrape-wait and --metrics-linger: a scrape interval longer than
    /// ten minutes is no setting for watching test runs.
    static let scrapeWait: ClosedRange<Double> = 0...600
    /// recover --min-age: an intent older than a day is no live payment (gateway calls take seconds).
    static let minimumAge: ClosedRange<Double> = 0...86_400
    /// bench-metrics --seconds: each of its halves; over an hour the measurement is a soak, not a bench.
    static let benchHalfRound: ClosedRange<Double> = 0.1...3_600

    /// `0.1 to 86400` for help texts and messages.
    static func describe(_ range: ClosedRange<Double>) -> String {
        "\(formatSeconds(range.lowerBound)) to \(formatSeconds(range.upperBound))"
    }
}

/// A number as a user would write it: `30`, `0.1`, `10000000000`, `1e-300`, `nan`.
func formatSeconds(_ value: Double) -> String {
    if value.isFinite, value == value.rounded(), abs(value) < 1e15 { return String(Int(value)) }
    return value.isFinite && abs(value) >= 1e-4 && abs(value) < 1e15 ? String(value) : String(format: "%g", value)
}

/// Refuses a value outside `range` (NaN and infinities included), naming the option, the value
/// and the bounds: `--recover-interval: found 10000000000; expected 0.1 to 86400 seconds`.
func checkBounds(_ value: Double, option: String, range: ClosedRange<Double>, unit: String = "seconds") throws {
    guard value.isFinite, range.contains(value) else {
        throw ValidationError("\(option): found \(formatSeconds(value)); expected \(SecondsBounds.describe(range)) \(unit)")
    }
}

/// The same for whole numbers: `--clients: found -1; expected 1 to 300`.
func checkBounds(_ value: Int, option: String, range: ClosedRange<Int>) throws {
    guard range.contains(value) else {
        throw ValidationError("\(option): found \(value); expected \(range.lowerBound) to \(range.upperBound)")
    }
}

/// Where the servers are (the environment) and how long connecting to them may take: shared by
/// every command that talks to PostgreSQL or Redis.
struct ServerOptions: ParsableArguments {
    // `.unconditional`: `--connect-timeout -1` is a value to refuse by its bounds, not a missing one.
    @Option(
        name: .customLong("connect-timeout"),
        parsing: .unconditional,
        help: ArgumentHelp(
            "Seconds a connection attempt to PostgreSQL or Redis may take before the command gives up: a whole number from 1 to 3600 (default: LOCKPROOF_CONNECT_TIMEOUT, else 5).",
            valueName: "seconds"))
    var connectTimeout: String?

    func validate() throws {
        if let connectTimeout, ServerConfiguration.connectTimeout(parsing: connectTimeout) == nil {
            throw ValidationError("--connect-timeout: found '\(connectTimeout.prefix(20))'; expected a whole number of seconds from 1 to 3600")
        }
    }

    /// The configuration from the environment, with --connect-timeout applied; a bad value exits 2.
    func configuration() throws -> ServerConfiguration {
        do {
            var configuration = try ServerConfiguration.fromEnvironment()
            if let connectTimeout, let seconds = ServerConfiguration.connectTimeout(parsing: connectTimeout) {
                configuration.connectTimeoutSeconds = seconds
            }
            return configuration
        } catch {
            throw startupFailure("\(error)")
        }
    }
}

/// Waits for SIGINT or SIGTERM through DispatchSource, so that the signal is handled on an
/// ordinary thread where shutting down (joining threads, closing sockets) is safe.
///
/// On Linux, libdispatch reads signals through a signalfd, which only sees a signal that is blocked
/// in every thread; a thread that does not block it would take it and, the disposition being
/// ignore, drop it. So create this before any other thread is started: threads inherit the mask.
final class TerminationSignals: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let queue = DispatchQueue(label: "lockproof.signals")
    private let lock = NSLock()
    private var sources: [DispatchSourceSignal] = []
    private var received: Int32?

    init(_ signals: [Int32] = [SIGINT, SIGTERM]) {
        var mask = sigset_t()
        sigemptyset(&mask)
        for number in signals { sigaddset(&mask, number) }
        pthread_sigmask(SIG_BLOCK, &mask, nil)
        for number in signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { [self] in
                lock.lock()
                let first = received == nil
                if first { received = number }
                lock.unlock()
                if first { semaphore.signal() }
            }
            source.resume()
            sources.append(source)
        }
    }

    /// Blocks until one of the signals arrives; returns its number.
    func wait() -> Int32 {
        semaphore.wait()
        lock.lock()
        defer { lock.unlock() }
        return received ?? 0
    }

    static func name(_ number: Int32) -> String {
        switch number {
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        default: return "signal \(number)"
        }
    }
}

/// `--wait-for-database`: how long a command that writes waits for another LockProof run holding
/// the database (or its Redis database) to finish, instead of being refused at once.
struct DatabaseWaitOptions: ParsableArguments {
    static let maximumSeconds = 86_400

    @Option(
        name: .customLong("wait-for-database"), parsing: .unconditional,
        help: ArgumentHelp(
            "When another LockProof run holds the database (or a serve instance writes to it), wait up to this many whole seconds (0–\(maximumSeconds)) for it to finish instead of exiting 2 at once (default 0).",
            valueName: "seconds"))
    var waitForDatabase: String?

    func validate() throws {
        if let waitForDatabase, Self.seconds(parsing: waitForDatabase) == nil {
            throw ValidationError("--wait-for-database: found '\(waitForDatabase)'; expected a whole number of seconds 0–\(Self.maximumSeconds)")
        }
    }

    static func seconds(parsing text: String) -> Int? {
        guard let value = Int(text), (0...maximumSeconds).contains(value) else { return nil }
        return value
    }

    var seconds: Double { Double(waitForDatabase.flatMap(Self.seconds(parsing:)) ?? 0) }

    /// Told once, on stderr, when the command starts waiting.
    static func announce(_ holder: String) {
        FileHandle.standardError.write(Data("lockproof: waiting for the database: \(holder)\n".utf8))
    }
}
