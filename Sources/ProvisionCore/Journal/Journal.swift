import Foundation
import GRDB

/// The durable record of runs and step attempts (SQLite in WAL mode, in the state directory).
///
/// It is a hint, never the truth: a step recorded as done is still observed before it is skipped.
/// Every write is its own transaction, so a `kill -9` loses at most the attempt in flight, and that
/// attempt's effect is found again by `observe`.
public final class Journal: Sendable {
    public enum Outcome: String, Sendable, Codable {
        case running, applied, satisfied, pending, failed, refused, interrupted, abandoned, blocked
    }

    public struct Attempt: Sendable, Codable, FetchableRecord {
        public var id: Int64
        public var runID: String
        public var stepID: String
        public var node: String?
        public var kind: String
        public var attempt: Int
        public var inputsDigest: String
        public var startedAt: Date
        public var finishedAt: Date?
        public var outcome: Outcome
        public var error: String?
        public var outputs: String?

        public var decodedOutputs: StepOutputs {
            guard let outputs, let data = outputs.data(using: .utf8) else { return [:] }
            return (try? JSONDecoder().decode(StepOutputs.self, from: data)) ?? [:]
        }
    }

    public struct Run: Sendable, Codable, FetchableRecord {
        public var id: String
        public var inventory: String
        public var playbook: String
        public var target: String?
        public var command: String
        public var pid: Int
        public var host: String
        public var startedAt: Date
        public var finishedAt: Date?
        public var outcome: String?
        /// Each step's dependencies within the run, as JSON (runs before v4 have none).
        public var graph: String?

        public var decodedGraph: [String: [String]] {
            guard let graph, let data = graph.data(using: .utf8) else { return [:] }
            return (try? JSONDecoder().decode([String: [String]].self, from: data)) ?? [:]
        }
    }

    public let path: String
    private let pool: DatabasePool

    /// Opens (creating or migrating) the journal. Refuses journals written by a newer provision.
    public init(path: String) throws(JournalError) {
        self.path = path
        var config = Configuration()
        config.busyMode = .timeout(10)
        do {
            pool = try DatabasePool(path: path, configuration: config)
        } catch {
            throw JournalError.unreadable(path: path, reason: "\(error)")
        }
        let migrator = Self.migrator
        do {
            let superseded = try pool.read { db in
                try db.tableExists("grdb_migrations") && migrator.hasBeenSuperseded(db)
            }
            if superseded {
                let applied = (try? pool.read { try migrator.appliedIdentifiers($0) }) ?? []
                let unknown = applied.subtracting(migrator.migrations).sorted()
                throw JournalError.newerSchema(path: path, unknown: unknown)
            }
            try migrator.migrate(pool)
        } catch let error as JournalError {
            throw error
        } catch {
            throw JournalError.unreadable(path: path, reason: "\(error)")
        }
    }

    /// Schema history. Never edit a registered migration: add a new one.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-runs-attempts") { db in
            try db.create(table: "run") { t in
                t.primaryKey("id", .text)
                t.column("inventory", .text).notNull()
                t.column("playbook", .text).notNull()
                t.column("command", .text).notNull()
                t.column("pid", .integer).notNull()
                t.column("host", .text).notNull()
                t.column("startedAt", .datetime).notNull()
                t.column("finishedAt", .datetime)
                t.column("outcome", .text)
            }
            try db.create(table: "attempt") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("runID", .text).notNull().references("run")
                t.column("stepID", .text).notNull().indexed()
                t.column("node", .text)
                t.column("kind", .text).notNull()
                t.column("attempt", .integer).notNull()
                t.column("inputsDigest", .text).notNull()
                t.column("startedAt", .datetime).notNull()
                t.column("finishedAt", .datetime)
                t.column("outcome", .text).notNull()
                t.column("error", .text)
                t.column("outputs", .text)
            }
        }
        // v2: runs remember their target (the node of a safe-reset, the pool of a gpu run).
        migrator.registerMigration("v2-run-target") { db in
            try db.alter(table: "run") { t in t.add(column: "target", .text) }
        }
        // v3: work on a node that must never be done twice (a reboot, an upgrade), recorded before
        // it is sent: node, what, the boot ID before, the mode or image, and how far it got.
        migrator.registerMigration("v3-disruptions") { db in
            try db.create(table: "disruption") { t in
                t.primaryKey("node", .text)
                t.column("runID", .text).notNull()
                t.column("action", .text).notNull()
                t.column("bootBefore", .text).notNull()
                t.column("detail", .text).notNull()
                t.column("phase", .text).notNull()
                t.column("startedAt", .datetime).notNull()
                t.column("updatedAt", .datetime).notNull()
            }
        }
        // v4: a run keeps its step graph (each step's dependencies, as JSON), so `provision report`
        // draws the critical path of the run as it was, whatever the inventory has become since.
        migrator.registerMigration("v4-run-graph") { db in
            try db.alter(table: "run") { t in t.add(column: "graph", .text) }
        }
        return migrator
    }

    // MARK: - Writing

    public func startRun(id: String, inventory: String, playbook: String, target: String?, command: String, graph: [String: [String]]? = nil) throws {
        let graphJSON = try graph.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        try pool.write { db in
            // Attempts a killed process left "running" are marked so nobody mistakes them for live work.
            try db.execute(sql: "UPDATE attempt SET outcome = 'abandoned', finishedAt = ? WHERE outcome = 'running'", arguments: [Date()])
            try db.execute(sql: """
                INSERT INTO run (id, inventory, playbook, target, command, pid, host, startedAt, graph)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [id, inventory, playbook, target, command, Int(getpid()), ProcessInfo.processInfo.hostName, Date(), graphJSON])
        }
    }

    public func finishRun(id: String, outcome: String) throws {
        try pool.write { db in
            try db.execute(sql: "UPDATE attempt SET outcome = 'interrupted', finishedAt = ? WHERE runID = ? AND outcome = 'running'",
                           arguments: [Date(), id])
            try db.execute(sql: "UPDATE run SET finishedAt = ?, outcome = ? WHERE id = ?", arguments: [Date(), outcome, id])
        }
    }

    /// Records the start of an attempt and returns its row id.
    public func beginAttempt(run: String, step: StepInstance, attempt: Int) throws -> Int64 {
        try pool.write { db in
            try db.execute(sql: """
                INSERT INTO attempt (runID, stepID, node, kind, attempt, inputsDigest, startedAt, outcome)
                VALUES (?, ?, ?, ?, ?, ?, ?, 'running')
                """, arguments: [run, step.id, step.node, step.kind, attempt, step.inputsDigest, Date()])
            return db.lastInsertedRowID
        }
    }

    public func endAttempt(_ id: Int64, outcome: Outcome, error: String? = nil, outputs: StepOutputs? = nil) throws {
        let json = try outputs.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        try pool.write { db in
            try db.execute(sql: "UPDATE attempt SET outcome = ?, finishedAt = ?, error = ?, outputs = ? WHERE id = ?",
                           arguments: [outcome.rawValue, Date(), error, json, id])
        }
    }

    /// A node's disruption under way (a gated reboot or upgrade), recorded before anything is sent.
    public struct Disruption: Sendable, Codable, FetchableRecord, Equatable {
        public var node: String
        public var runID: String
        /// `reboot` or `upgrade`.
        public var action: String
        public var bootBefore: String
        /// Why, and with what: the apply mode chosen, the image requested.
        public var detail: String
        /// `gated` (checks passed, nothing sent), `sent` (the node acknowledged), `back` (it came back).
        public var phase: String
        public var startedAt: Date
        public var updatedAt: Date
    }

    /// Records (or moves on) a node's disruption; one per node at a time.
    public func recordDisruption(node: String, run: String, action: String, bootBefore: String, detail: String, phase: String) throws {
        try pool.write { db in
            try db.execute(sql: """
                INSERT INTO disruption (node, runID, action, bootBefore, detail, phase, startedAt, updatedAt) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(node) DO UPDATE SET runID = excluded.runID, phase = excluded.phase, updatedAt = excluded.updatedAt
                """, arguments: [node, run, action, bootBefore, detail, phase, Date(), Date()])
        }
    }

    public func disruption(node: String) throws -> Disruption? {
        try pool.read { db in try Disruption.fetchOne(db, sql: "SELECT * FROM disruption WHERE node = ?", arguments: [node]) }
    }

    public func disruptions() throws -> [Disruption] {
        try pool.read { db in try Disruption.fetchAll(db, sql: "SELECT * FROM disruption ORDER BY startedAt") }
    }

    /// The disruption is over: the node is back and verified.
    public func endDisruption(node: String) throws {
        try pool.write { db in try db.execute(sql: "DELETE FROM disruption WHERE node = ?", arguments: [node]) }
    }

    // MARK: - Reading

    /// The newest finished attempt of each step (any run), to show status and seed resume.
    public func latestAttempts() throws -> [String: Attempt] {
        try pool.read { db in
            let rows = try Attempt.fetchAll(db, sql: """
                SELECT * FROM attempt WHERE id IN (SELECT MAX(id) FROM attempt GROUP BY stepID)
                """)
            return Dictionary(rows.map { ($0.stepID, $0) }, uniquingKeysWith: { a, _ in a })
        }
    }

    /// The newest successful (applied or satisfied) attempt of a step.
    public func lastSuccess(step: String) throws -> Attempt? {
        try pool.read { db in
            try Attempt.fetchOne(db, sql: """
                SELECT * FROM attempt WHERE stepID = ? AND outcome IN ('applied', 'satisfied') ORDER BY id DESC LIMIT 1
                """, arguments: [step])
        }
    }

    public func attempts(run: String) throws -> [Attempt] {
        try pool.read { db in try Attempt.fetchAll(db, sql: "SELECT * FROM attempt WHERE runID = ? ORDER BY id", arguments: [run]) }
    }

    public func allAttempts() throws -> [Attempt] {
        try pool.read { db in try Attempt.fetchAll(db, sql: "SELECT * FROM attempt ORDER BY id") }
    }

    /// One run by its id.
    public func run(id: String) throws -> Run? {
        try pool.read { db in try Run.fetchOne(db, sql: "SELECT * FROM run WHERE id = ?", arguments: [id]) }
    }

    public func runs(limit: Int = 20) throws -> [Run] {
        try pool.read { db in try Run.fetchAll(db, sql: "SELECT * FROM run ORDER BY startedAt DESC, rowid DESC LIMIT ?", arguments: [limit]) }
    }

    /// Forces the WAL into the main file; called at exit so a copied state directory is complete.
    public func checkpoint() {
        _ = try? pool.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
    }
}

public enum JournalError: Error, Sendable, CustomStringConvertible {
    case newerSchema(path: String, unknown: [String])
    case unreadable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .newerSchema(path, unknown):
            return "journal \(path) was written by a newer provision (schema \(unknown.joined(separator: ", "))); upgrade provision, or move that state directory aside"
        case let .unreadable(path, reason):
            return "journal \(path) cannot be opened: \(reason); if it is not a provision journal, move it aside"
        }
    }
}
