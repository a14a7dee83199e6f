/// What `Schema.ownership` found: LockProof's names in the database and what refers to them.
public struct SchemaOwnership: Sendable, Equatable {
    /// The schema unqualified names resolve to; nil when the search_path names none that exists.
    public var schema: String?
    public var database: String
    /// LockProof's tables found (the marker aside).
    public var tablesPresent: [String] = []
    public var markerPresent = false
    /// The marker's rows' versions (one row in a database LockProof created).
    public var markerVersions: [Int] = []
    /// "when by which build", from the marker's first row.
    public var markerCreated: String?
    /// The missing privilege, when the marker could not be read for lack of one.
    public var markerUnreadable: String?
    /// Why the marker table could not be read, when it is not LockProof's shape.
    public var markerMalformed: String?
    /// Tables that are not LockProof's but reference or inherit from LockProof's tables.
    public var foreignReferences: [String] = []

    /// A marked database with every table: nothing to create.
    public var isComplete: Bool { markerVersions.count == 1 && tablesPresent.count == Schema.tables.count }

    /// Why LockProof must not write to this database, or nil when it may (a marked database of a
    /// version this build knows, or one with none of LockProof's names to create them in).
    public var problem: String? {
        let how = "Point LOCKPROOF_DATABASE_URL at an empty database (e.g. `createdb lockproof_run` and …/lockproof_run): the first LockProof command that writes creates its tables and the \(Schema.markerTable) marker there."
        guard let schema else {
            return "database \(database): its search_path names no schema that exists, so LockProof has nowhere to create its tables. \(how)"
        }
        if !foreignReferences.isEmpty {
            let unmarked = markerPresent || tablesPresent.isEmpty
                ? "" : " It also has tables named like LockProof's (\(tablesPresent.joined(separator: ", "))) but no \(Schema.markerTable) marker."
            return "database \(database): tables that are not LockProof's depend on LockProof's tables: \(foreignReferences.joined(separator: "; ")). Emptying LockProof's tables would touch them, so LockProof writes nothing here.\(unmarked) \(how)"
        }
        if markerPresent {
            if let markerMalformed {
                return "database \(database): a table \(schema).\(Schema.markerTable) exists but is not LockProof's marker (\(markerMalformed)). LockProof writes nothing here. \(how)"
            }
            if let markerUnreadable {
                return "database \(database): the database user cannot read LockProof's marker (it lacks \(markerUnreadable)), so LockProof cannot tell whether this database is its own and writes nothing here."
            }
            if markerVersions.count != 1 {
                return "database \(database): LockProof's marker \(schema).\(Schema.markerTable) has \(markerVersions.count) rows, not 1: LockProof did not leave it so and writes nothing here. \(how)"
            }
            let known = Schema.knownVersions.sorted().map(String.init).joined(separator: ", ")
            if let found = markerVersions.first, !Schema.knownVersions.contains(found) {
                return "database \(database): LockProof's marker says schema version \(found) (created \(markerCreated ?? "?")); this build of LockProof \(LockProofRelease.version) knows version \(known) only and writes nothing here. Use the LockProof build that created it, or an empty database. \(how)"
            }
            return nil
        }
        guard tablesPresent.isEmpty else {
            let olderBuild = tablesPresent.count == Schema.tables.count
                ? " If an older LockProof build created them (it wrote no marker), and nothing else uses this database, drop and create it again (`dropdb \(database) && createdb \(database)`; for the throwaway servers `scripts/services.sh start` does so itself), or use another one."
                : ""
            return "database \(database): has tables named like LockProof's (\(tablesPresent.joined(separator: ", "))) in schema \(schema) but no \(Schema.markerTable) marker: LockProof did not create them and writes nothing here.\(olderBuild) \(how)"
        }
        return nil
    }

    func refuseIfNotOwned() throws {
        if let problem { throw DatabaseNotOwned(message: problem) }
    }
}

/// A database LockProof must not write to (see `SchemaOwnership.problem`).
public struct DatabaseNotOwned: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}

/// The release of LockProof this build is, recorded in the schema marker (and exported as
/// `lockproof_build_info` by LockProofMetrics).
public enum LockProofRelease {
    public static let version = "0.1.0"
}
