import ArgumentParser
import Foundation
import LockProofHTTP
import Logging

// Log lines go to stderr: stdout carries only what a caller may parse (e.g. serve's address).
LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .info
    return handler
}

// The default soft limit on open files (often 1,024) would cap the metrics endpoint's connections
// far below what the machine allows: lift it to the hard limit, as Go's runtime does.
raiseOpenFileLimit()

// Bad arguments exit with status 2 like every other bad input (argument-parser's own status for
// them is 64, EX_USAGE); help, version and every other exit keep argument-parser's handling.
let arguments = Array(CommandLine.arguments.dropFirst())
if let usageError = LockProofCommand.usageErrorBeforeParsing(arguments) {
    FileHandle.standardError.write(Data((usageError + "\n").utf8))
    exit(startupFailureExitCode)
}
do {
    var command = try LockProofCommand.parseAsRoot(arguments)
    try command.run()
} catch {
    if LockProofCommand.exitCode(for: error) == .validationFailure {
        FileHandle.standardError.write(Data((LockProofCommand.fullMessage(for: error) + "\n").utf8))
        exit(startupFailureExitCode)
    }
    LockProofCommand.exit(withError: error)
}
