import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What a pid file claims, checked against the process table before any signal is sent: the pid
/// must be a running process of the expected program (`/proc/PID/comm` and the first word of
/// `/proc/PID/cmdline`) holding the socket that listens on the managed port (its `/proc/PID/fd`
/// socket inodes against the LISTEN entries of `/proc/net/tcp` and `tcp6`). A pid file naming an
/// unrelated process (a `sleep`, a recycled pid) is refused rather than signalled.
enum ServerProcess {
    /// Throws, naming the pid file, the pid and what it really is, unless `pid` is `program`
    /// listening on TCP `port`.
    static func verify(pid: pid_t, program: String, port: Int, pidFile: String) throws {
        let claim = "\(pidFile) names pid \(pid)"
        guard ManagedServers.isRunning(pid) else { throw FaultRefused(message: "\(claim), which is not running") }
        let comm = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        let commandLine = commandLine(pid)
        let firstWord = commandLine.split(separator: " ").first.map { ($0 as NSString).lastPathComponent } ?? ""
        guard comm == program || firstWord == program else {
            throw FaultRefused(
                message: "\(claim), which is not a \(program) (it runs '\(commandLine.prefix(80))'); refusing to signal it")
        }
        guard let sockets = socketInodes(pid) else {
            throw FaultRefused(message: "\(claim): its open files (/proc/\(pid)/fd) cannot be read to check which port it listens on")
        }
        guard !sockets.isDisjoint(with: listeningInodes(port: port)) else {
            throw FaultRefused(
                message: "\(claim), a \(program) that does not listen on port \(port) (not the managed server); refusing to signal it")
        }
    }

    /// `/proc/PID/cmdline` with its NUL separators as spaces (what `ps` shows).
    static func commandLine(_ pid: pid_t) -> String {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return "" }
        return String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self).trimmingCharacters(in: .whitespaces)
    }

    /// The inodes of the sockets `pid` has open; nil when its descriptors cannot be read.
    static func socketInodes(_ pid: pid_t) -> Set<String>? {
        let folder = "/proc/\(pid)/fd"
        guard let descriptors = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return nil }
        var inodes: Set<String> = []
        for descriptor in descriptors {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(folder)/\(descriptor)"),
                target.hasPrefix("socket:["), target.hasSuffix("]")
            else { continue }
            inodes.insert(String(target.dropFirst("socket:[".count).dropLast()))
        }
        return inodes
    }

    /// The inodes of the TCP sockets (IPv4 and IPv6) listening on `port`.
    static func listeningInodes(port: Int) -> Set<String> {
        let listen = "0A"
        var inodes: Set<String> = []
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count > 9, fields[3] == listen, let colon = fields[1].lastIndex(of: ":"),
                    Int(fields[1][fields[1].index(after: colon)...], radix: 16) == port
                else { continue }
                inodes.insert(String(fields[9]))
            }
        }
        return inodes
    }

    /// Does no TCP socket listen on `port` (so a connection to it is refused)?
    static func portRefuses(_ port: Int) -> Bool { listeningInodes(port: port).isEmpty }

    /// The processes holding a socket that listens on `port`, as `pid (comm)`, for a message.
    static func listeners(port: Int) -> [String] {
        let listening = listeningInodes(port: port)
        guard !listening.isEmpty else { return [] }
        var holders: [String] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(name), let sockets = socketInodes(pid), !sockets.isDisjoint(with: listening) else { continue }
            let comm = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            holders.append("\(pid) (\(comm ?? "?"))")
        }
        return holders
    }

    /// Runs `argv` (found on PATH) with stdout and stderr to /dev/null and waits for it to exit:
    /// for programs that start a server in the background and return (a daemonizing
    /// `redis-server`, a cluster's `instance-K.sh`). posix_spawn and waitpid rather than
    /// Foundation's Process, whose exit monitoring does not work from every thread.
    static func spawnAndReap(_ argv: [String]) throws {
        var cArguments = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        var pid: pid_t = 0
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        // The runner blocks and ignores SIGINT/SIGTERM for its own handling; a child inherits both
        // and would then never stop on SIGTERM. Give it a clean signal state.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for number in [SIGTERM, SIGINT, SIGHUP, SIGPIPE] { sigaddset(&defaults, number) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let status = posix_spawnp(&pid, argv[0], &actions, &attributes, &cArguments, environ)
        guard status == 0 else { throw FaultRefused(message: "cannot start \(argv[0]) (error \(status))") }
        var exitStatus: Int32 = 0
        while waitpid(pid, &exitStatus, 0) == -1 && errno == EINTR {}
    }
}
