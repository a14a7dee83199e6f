import Foundation

struct MutatorOptions {
    var iterations = 10_000
    var seed: UInt64 = 1
    var targets = FuzzTarget.scenarioCorpusTargets
    var corpus: [String] = []
}

/// SplitMix64: small, seedable, the same sequence on every machine.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Tokens that reach the parsers' corners: YAML structure, anchors and aliases, number forms,
/// threshold syntax.
let mutationTokens: [String] = [
    ":", ": ", "\n", "\n  ", "- ", "{", "}", "[", "]", ",", "\"", "'", "#", "---\n", "...\n", "&a ", "*a", "!!str ", "!!int ",
    "? ", "|\n", ">\n", "\t", "0x1p3", "1__0", "-0", "1e309", ".inf", ".nan", "~", "null", "true", "99999999999999999999", "99999:59:59:59:59:59:59:59:59:59:59:59:59", "1:30",
    "p(95) < 0.2", "p(95) < 200ms", "max < 5s", "count == 0", "rate > 200", "p(0) <", "<=", ">=", "!=", "==", "{lock=\"redis\"}", "{", "=\"", "latency",
    "throughput", "lockproof_retry_exhausted_total", "virtual_users: ", "iterations: ", "timeout: ", "seed: ", "users: ",
    "workload: ", "thresholds: ", "mix: ", "expect: violation", "\"amount\": ", "\"items\": [", "\\u0000", "\\ud800",
    "/users/", "/orders/", "{userId}", "Content-Type: application/json\n", "Idempotency-Key: ", "1.0e-0", "-0.0", "\u{FEFF}", "\u{0}", "é", "🙂",
]

func mutate(_ input: [UInt8], with random: inout SeededRandom, corpus: [[UInt8]]) -> [UInt8] {
    var bytes = input
    for _ in 0..<Int.random(in: 1...4, using: &random) {
        let position = bytes.isEmpty ? 0 : Int.random(in: 0...bytes.count, using: &random)
        switch Int.random(in: 0..<7, using: &random) {
        case 0 where !bytes.isEmpty:  // flip a bit
            let index = Int.random(in: 0..<bytes.count, using: &random)
            bytes[index] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &random)
        case 1 where !bytes.isEmpty:  // delete a run
            let start = Int.random(in: 0..<bytes.count, using: &random)
            let end = min(bytes.count, start + Int.random(in: 1...32, using: &random))
            bytes.removeSubrange(start..<end)
        case 2:  // insert a token
            bytes.insert(contentsOf: Array(mutationTokens.randomElement(using: &random)!.utf8), at: position)
        case 3 where !bytes.isEmpty:  // duplicate a run
            let start = Int.random(in: 0..<bytes.count, using: &random)
            let end = min(bytes.count, start + Int.random(in: 1...64, using: &random))
            bytes.insert(contentsOf: bytes[start..<end], at: position)
        case 4:  // splice another corpus file
            if let other = corpus.randomElement(using: &random), !other.isEmpty {
                let start = Int.random(in: 0..<other.count, using: &random)
                let end = min(other.count, start + Int.random(in: 1...128, using: &random))
                bytes.insert(contentsOf: other[start..<end], at: position)
            }
        case 5:  // a random byte
            bytes.insert(UInt8.random(in: 0...255, using: &random), at: position)
        default:  // swap a digit for another number form
            if let index = bytes.indices.filter({ bytes[$0] >= 0x30 && bytes[$0] <= 0x39 }).randomElement(using: &random) {
                let replacement = ["0x10", "1_0", "\"7\"", "-1", "1e3", "0.5", "9223372036854775808"].randomElement(using: &random)!
                bytes.replaceSubrange(index...index, with: Array(replacement.utf8))
            }
        }
    }
    return bytes
}

/// Runs `iterations` mutations of the corpus through every target; returns the exit status.
func runMutator(_ options: MutatorOptions) -> Int32 {
    var corpus: [[UInt8]] = []
    for path in options.corpus {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
        let files =
            isDirectory.boolValue
            ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { (path as NSString).appendingPathComponent($0) }
            : [path]
        for file in files where file.hasSuffix(".yaml") || file.hasSuffix(".yml") || file.hasSuffix(".txt") || !isDirectory.boolValue {
            if let data = FileManager.default.contents(atPath: file) { corpus.append(Array(data)) }
        }
    }
    guard !corpus.isEmpty else {
        FileHandle.standardError.write(Data("lockproof-fuzz: no corpus files (give Scenarios/)\n".utf8))
        return 2
    }
    var random = SeededRandom(state: options.seed)
    let started = Date()
    for iteration in 0..<options.iterations {
        let base = corpus[iteration % corpus.count]
        let input = mutate(base, with: &random, corpus: corpus)
        for target in options.targets { target.run(input) }
    }
    let seconds = Date().timeIntervalSince(started)
    print(String(format: "lockproof-fuzz: %d mutations × %d targets from %d corpus files (seed %llu) in %.1f s: no invariant broken",
        options.iterations, options.targets.count, corpus.count, options.seed, seconds))
    return 0
}
