import Foundation
import LockProofCommerce

/// One anomaly a run showed, explained as Elle's and Jepsen's reports do: its name (lost update,
/// double issue, two winners, paid twice, oversell, deadlock), the operations that make it up, and
/// one sentence with the numbers. Built from a checker's violation (its evidence, its first
/// example) and the run's history on the entity the violation names.
public struct Anomaly: Sendable, Equatable {
    /// What a person calls it: "lost update", "double issue", "two winners"…
    public let name: String
    /// The entity it happened to, e.g. `["user": 7]`; empty for a run-wide anomaly (a deadlock).
    public let subject: [String: Int]
    /// One sentence with the numbers, readable without the timeline.
    public let sentence: String
    /// The checkers' violations it explains (`money-conservation: balance-below-acknowledged ×2`).
    public var violations: [String]
    /// The operations that make it up, numbered as on the timeline.
    public let marked: [MarkedOperation]
    /// False when no explanation applied: the name and sentence are the checker's own.
    public let explained: Bool

    /// `user 7`, `user 3, product 5`, or "the run".
    public var subjectDescription: String { Self.describe(subject) }

    static func describe(_ subject: [String: Int]) -> String {
        subject.isEmpty ? "the run" : subject.sorted { $0.key > $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }
}

/// An operation that is part of an anomaly, and its part in it.
public struct MarkedOperation: Sendable, Equatable {
    public let client: Int
    public let index: Int
    /// "read 3,000, wrote 4,000: overwritten", "kept", "victim"…
    public let role: String
    /// Its write was lost (or it is the one that should not have succeeded): drawn red.
    public let lost: Bool
}

public enum AnomalyExplainer {
    /// The violations whose first example names a balance, stock or quantity that acknowledged
    /// read-modify-writes should have reached: lost updates when the history shows the reads.
    static let lostUpdateViolations: Set<String> = [
        "balance-below-acknowledged", "ledger-mismatch", "acknowledged-charge-missing", "stock-below-acknowledged", "lost-increment",
    ]

    /// The entity a violation is about: its evidence's subject, else the first `user|order|product|coupon N`
    /// of its example.
    public static func subject(of violation: Violation) -> [String: Int] {
        if let evidence = violation.evidence { return evidence.subject }
        guard let range = violation.firstExample.range(of: "(user|order|product|coupon) [0-9]+", options: .regularExpression) else {
            return [:]
        }
        let parts = violation.firstExample[range].split(separator: " ")
        return [String(parts[0]): Int(parts[1])!]
    }

    /// Does `entry` act on every entity of `subject`?
    public static func touches(_ entry: HistoryEntry, _ subject: [String: Int]) -> Bool {
        !subject.isEmpty && subject.allSatisfy { key, id in
            entry.arguments[key] == id || (key == "product" && entry.items?.contains { $0.productId == id } == true)
                || (key == "user" && entry.result?["user"] == id)
        }
    }

    /// Explains `violation` of `checker` from `history`: the operations on its subject (for a
    /// deadlock: any operations; only its victims and what overlapped them are looked at).
    public static func explain(_ violation: Violation, checker: String, history: [HistoryEntry]) -> Anomaly {
        let subject = subject(of: violation)
        let label = "\(checker): \(violation.name) ×\(violation.count)"
        let related = history.filter { subject.isEmpty || touches($0, subject) }
        let explained: (name: String, sentence: String, marked: [MarkedOperation])?
        switch violation.name {
        case "deadlock": explained = deadlock(violation, history)
        case "over-issued", "rows-differ-from-issued-quantity":
            explained = sameValueWrites(related, operation: .issue, violation, noun: "issues") { "over-issue" }
        case "duplicate-user-coupon": explained = concurrentWinners(related, [.issue], violation, name: "double issue") { ok in
            "user \(subject["user"] ?? 0) was given coupon \(subject["coupon"] ?? 0) \(violation.evidence?.observed ?? ok.count) times: \(ok.count) issues to one user were acknowledged"
        }
        case "several-winners": explained = concurrentWinners(related, [.complete, .cancel], violation, name: "two winners") { ok in
            "\(ok.count) state changes of order \(subject["order"] ?? 0) were acknowledged (\(ok.map { "\($0.operation.rawValue) by client \($0.client)" }.joined(separator: ", "))); only one may win"
        }
        case "order-paid-twice": explained = concurrentWinners(related, [.pay], violation, name: "paid twice") { ok in
            let amount = ok.first?.result?["amount"]
            return "order \(subject["order"] ?? 0) was paid \(ok.count) times\(amount.map { ": \(grouped($0 * (ok.count - 1))) charged beyond its total of \(grouped($0))" } ?? "")"
        }
        case "negative-balance": explained = concurrentWinners(related, [.pay, .charge], violation, name: "overdraft") { ok in
            "\(ok.count) payments and charges of user \(subject["user"] ?? 0) were acknowledged\(violation.evidence.map { ", taking the balance to \(grouped($0.observed))" } ?? ""): money was spent that was not there"
        }
        case "stock-above-acknowledged":
            // Payments name their order, not its products: the figures say it without the history.
            explained = violation.evidence.map { evidence in
                (
                    "lost stock update",
                    "product \(subject["product"] ?? 0) holds \(grouped(evidence.observed)) where the acknowledged payments leave \(grouped(evidence.expected)): \(grouped(evidence.observed - evidence.expected)) units sold were never deducted (concurrent deductions overwrote each other).",
                    []
                )
            }
        case "negative-stock":
            explained = violation.evidence.map { evidence in
                (
                    "oversell",
                    "the acknowledged payments take product \(subject["product"] ?? 0)'s stock to \(grouped(evidence.observed)): \(grouped(-evidence.observed)) units were sold that were not there.",
                    []
                )
            }
        case let name where lostUpdateViolations.contains(name) && !subject.isEmpty:
            // Only on one entity: writes of the same value to different users race for nothing.
            explained = lostUpdate(related, violation)
        default: explained = nil
        }
        guard let explained else {
            return Anomaly(
                name: violation.name.replacingOccurrences(of: "-", with: " "), subject: subject, sentence: violation.firstExample + ".",
                violations: [label], marked: [], explained: false)
        }
        return Anomaly(
            name: explained.name, subject: subject, sentence: explained.sentence, violations: [label], marked: explained.marked, explained: true)
    }

    /// The value a read-modify-write read and wrote, per case: a charge returns the balance it
    /// wrote (it read that less the amount), an add the cart quantity, an issue the issued quantity.
    private static func written(_ entry: HistoryEntry) -> (noun: String, wrote: Int, step: Int)? {
        switch entry.operation {
        case .charge:
            guard entry.result?["applied"] != 0, let balance = entry.result?["balance"], let amount = entry.arguments["amount"] else { return nil }
            return ("balance", balance, amount)
        case .add:
            guard let quantity = entry.result?["quantity"], let added = entry.arguments["quantity"] else { return nil }
            return ("quantity", quantity, added)
        case .issue:
            guard let issued = entry.result?["issued_quantity"] else { return nil }
            return ("issued quantity", issued, 1)
        default: return nil
        }
    }

    /// Acknowledged writes of the same value that ran at the same time (each overlapping the
    /// next): they read the same value, and all but one of their writes were overwritten. The
    /// earliest first. (A value written again later, after a lost update took the balance
    /// back, is another race.)
    static func sameValueGroups(_ related: [HistoryEntry]) -> [[HistoryEntry]] {
        let writes = related.filter { $0.outcome == .ok && written($0) != nil }
        var races: [[HistoryEntry]] = []
        for (_, sameValue) in Dictionary(grouping: writes, by: { written($0)!.wrote }) {
            var race: [HistoryEntry] = []
            var raceEnd = -Double.infinity
            for entry in sameValue.sorted(by: { ($0.start, $0.client) < ($1.start, $1.client) }) {
                if entry.start >= raceEnd, !race.isEmpty {
                    races.append(race)
                    race = []
                }
                race.append(entry)
                raceEnd = max(raceEnd, entry.end)
            }
            races.append(race)
        }
        return races.filter { $0.count > 1 }
            .map { $0.sorted { ($0.end, $0.client) < ($1.end, $1.client) } }
            .sorted { $0[0].start < $1[0].start }
    }

    /// The race shown: the first of 3 to 8 writes (readable on a timeline, and more than a pair),
    /// else the first pair, else the first.
    static func example(_ races: [[HistoryEntry]]) -> [HistoryEntry]? {
        races.first { (3...8).contains($0.count) } ?? races.first { $0.count == 2 } ?? races.first
    }

    /// Marks a group: every write but the last to finish was overwritten by it.
    private static func markGroup(_ group: [HistoryEntry]) -> [MarkedOperation] {
        group.enumerated().map { position, entry in
            let value = written(entry)!
            let kept = position == group.count - 1
            return MarkedOperation(
                client: entry.client, index: entry.index,
                role: "read \(value.noun) \(grouped(value.wrote - value.step)), wrote \(grouped(value.wrote))\(kept ? ": the write that stayed" : ": overwritten")",
                lost: !kept)
        }
    }

    static func lostUpdate(_ related: [HistoryEntry], _ violation: Violation) -> (String, String, [MarkedOperation])? {
        let groups = sameValueGroups(related)
        guard let race = example(groups), let value = written(race[0]) else { return nil }
        let noun = race[0].operation == .charge ? "charges" : race[0].operation == .add ? "adds" : "\(race[0].operation.rawValue)s"
        var sentence = "\(race.count) \(noun) read \(value.noun) \(grouped(value.wrote - value.step)); \(race.count - 1) of their writes \(race.count == 2 ? "was" : "were") lost"
        if groups.count > 1 {
            sentence += " (\(groups.count) such races in the history on \(Anomaly.describe(subject(of: violation))))"
        }
        // The total comes from the checker's final state: not every lost write leaves two equal
        // writes in the history, so a count of lost writes taken from the races would contradict it.
        if let evidence = violation.evidence, evidence.expected != evidence.observed {
            let missing = abs(evidence.expected - evidence.observed)
            var worth = ""
            if value.step > 0, missing % value.step == 0 {
                let writes = missing / value.step
                worth = writes == 1 ? "1 \(noun.dropLast())'s worth; " : "\(grouped(writes)) \(noun)' worth; "
            }
            sentence += ": \(grouped(missing)) missing overall (\(worth)\(value.noun) \(grouped(evidence.observed)); the acknowledged \(noun) require \(grouped(evidence.expected)))"
        }
        return ("lost update", sentence + ".", markGroup(race))
    }

    private static func sameValueWrites(
        _ related: [HistoryEntry], operation: OperationName, _ violation: Violation, noun: String, name: () -> String
    ) -> (String, String, [MarkedOperation])? {
        let groups = sameValueGroups(related.filter { $0.operation == operation })
        guard let race = example(groups), let value = written(race[0]) else { return nil }
        var sentence = "\(race.count) \(noun) read \(value.noun) \(grouped(value.wrote - value.step)) and each wrote \(grouped(value.wrote))"
        if let evidence = violation.evidence {
            sentence += ": \(grouped(evidence.observed)) issued of a total of \(grouped(evidence.expected)), \(grouped(evidence.observed - evidence.expected)) too many"
        }
        return (name(), sentence + ".", markGroup(race))
    }

    /// Several acknowledged operations where one at most may succeed: all of them are marked.
    private static func concurrentWinners(
        _ related: [HistoryEntry], _ operations: Set<OperationName>, _ violation: Violation, name: String, sentence: ([HistoryEntry]) -> String
    ) -> (String, String, [MarkedOperation])? {
        let ok = related.filter { $0.outcome == .ok && operations.contains($0.operation) }.sorted { ($0.start, $0.client) < ($1.start, $1.client) }
        guard ok.count > 1 else { return nil }
        let shown = Array(ok.prefix(8))
        let overlapping = zip(shown, shown.dropFirst()).contains { $1.start < $0.end }
        let marked = shown.map { MarkedOperation(client: $0.client, index: $0.index, role: "\($0.operation.rawValue) acknowledged", lost: true) }
        return (name, sentence(ok) + (overlapping ? ", and they ran at the same time." : "."), marked)
    }

    private static func deadlock(_ violation: Violation, _ history: [HistoryEntry]) -> (String, String, [MarkedOperation])? {
        let victims = history.filter { $0.reason == "deadlock" }
        guard let first = victims.first else { return nil }
        let marked = victims.filter { $0.start < first.end && $0.end > first.start }.prefix(8).map {
            MarkedOperation(client: $0.client, index: $0.index, role: "\($0.operation.rawValue): aborted as the deadlock victim", lost: true)
        }
        return (
            "deadlock",
            "PostgreSQL found \(violation.count) lock cycle\(violation.count == 1 ? "" : "s") and aborted a victim each time; the first: \(first.shortDescription).",
            Array(marked)
        )
    }

    /// The anomalies of one scenario, one per distinct anomaly: violations of several checkers
    /// (or names) that explain the same anomaly on the same entity are merged into one.
    public static func anomalies(_ result: ScenarioResult, history: (Violation) throws -> [HistoryEntry]) -> [(Anomaly, Error?)] {
        var list: [(Anomaly, Error?)] = []
        // Those with figures first: the anomaly merged into keeps the first one's sentence.
        let violations = result.checks.flatMap { check in check.violations.map { (check.name, $0) } }
            .sorted { ($0.1.evidence != nil ? 0 : 1) < ($1.1.evidence != nil ? 0 : 1) }
        do {
            for (checker, violation) in violations {
                var entries: [HistoryEntry] = []
                var failure: Error?
                do { entries = try history(violation) } catch { failure = error }
                let anomaly = explain(violation, checker: checker, history: entries)
                // What no explanation applied to is told under an explained anomaly on the same entity.
                if let same = list.firstIndex(where: {
                    $0.0.subject == anomaly.subject && ($0.0.name == anomaly.name || ($0.0.explained && !anomaly.explained))
                }) {
                    list[same].0.violations += anomaly.violations
                } else {
                    list.append((anomaly, failure))
                }
            }
        }
        // An unexplained one met before the explained one on its entity.
        var merged: [(Anomaly, Error?)] = []
        for item in list {
            if !item.0.explained, let into = list.firstIndex(where: { $0.0.explained && $0.0.subject == item.0.subject }) {
                list[into].0.violations += item.0.violations
                continue
            }
            merged.append(item)
        }
        return merged.map { item in list.first { $0.0.name == item.0.name && $0.0.subject == item.0.subject } ?? item }
    }
}

/// 3000 → "3,000": figures a person reads at a glance.
func grouped(_ value: Int) -> String {
    let digits = String(abs(value))
    var out = ""
    for (position, digit) in digits.enumerated() {
        if position > 0 && (digits.count - position) % 3 == 0 { out += "," }
        out.append(digit)
    }
    return (value < 0 ? "−" : "") + out
}
