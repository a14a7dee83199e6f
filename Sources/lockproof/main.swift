import Logging

// Log lines go to stderr: stdout carries only what a caller may parse (e.g. serve's address).
LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .info
    return handler
}
LockProofCommand.main()
