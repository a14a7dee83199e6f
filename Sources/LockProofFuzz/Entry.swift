import Foundation

#if LOCKPROOF_LIBFUZZER
    // Built by `make fuzz` with `-sanitize=fuzzer`: libFuzzer's own main drives these entry points.
    // LOCKPROOF_FUZZ_TARGET (scenario | threshold) picks the parser.
    nonisolated(unsafe) private var selectedTarget = FuzzTarget.scenario

    @_cdecl("LLVMFuzzerInitialize")
    public func fuzzerInitialize(
        _ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?
    ) -> CInt {
        let name = ProcessInfo.processInfo.environment["LOCKPROOF_FUZZ_TARGET"] ?? "scenario"
        guard let target = FuzzTarget(rawValue: name) else {
            FileHandle.standardError.write(Data("LOCKPROOF_FUZZ_TARGET must be scenario, threshold or request\n".utf8))
            exit(2)
        }
        selectedTarget = target
        return 0
    }

    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
        selectedTarget.run(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
        return 0
    }

    @_silgen_name("LLVMFuzzerRunDriver")
    func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt

    // SwiftPM links an executable with its entry point renamed to `<module>_main` (main is an alias
    // of it), which clashes with libFuzzer's own main: `make fuzz` links with
    // --allow-multiple-definition, and whichever main the linker keeps, this one hands over to
    // libFuzzer's driver with the same entry point.
    @_cdecl("lockproof_fuzz_main")
    public func lockproofFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
        var count = argc
        var arguments = argv
        return LLVMFuzzerRunDriver(&count, &arguments, { data, size in fuzzerTestOneInput(data, size) })
    }
#else
    /// Without libFuzzer (a plain `swift build`): a seeded random mutator over the same targets, so
    /// that the invariants are exercised in `make test` and wherever libFuzzer is unavailable.
    @main
    struct MutatorMain {
        static func main() {
            var options = MutatorOptions()
            var arguments = CommandLine.arguments.dropFirst()
            while let argument = arguments.popFirst() {
                switch argument {
                case "--iterations": options.iterations = arguments.popFirst().flatMap { Int($0) } ?? options.iterations
                case "--seed": options.seed = arguments.popFirst().flatMap { UInt64($0) } ?? options.seed
                case "--target": options.targets = arguments.popFirst().flatMap(FuzzTarget.init(rawValue:)).map { [$0] } ?? []
                case "--help", "-h":
                    print("""
                        usage: lockproof-fuzz [--iterations N] [--seed S] [--target scenario|threshold|request] CORPUS_DIR...
                        Mutates every corpus file N times in all (seeded, reproducible) and runs each mutation
                        through the parser; exits 0 when no invariant broke, aborts on the first finding.
                        """)
                    return
                default: options.corpus.append(argument)
                }
            }
            guard !options.targets.isEmpty else {
                FileHandle.standardError.write(Data("--target must be scenario, threshold or request\n".utf8))
                exit(2)
            }
            exit(runMutator(options))
        }
    }
#endif
