import Foundation
import GRDB
import Testing
import TestSupport
@testable import ProvisionCore

@Suite struct JournalTests {
    @Test func journalUsesWAL() throws {
        let dir = Fixtures.temporaryDirectory()
        _ = try Journal(path: dir + "/j.sqlite")
        let queue = try DatabaseQueue(path: dir + "/j.sqlite")
        let mode = try queue.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") }
        #expect(mode == "wal")
    }

    @Test func olderSchemaIsMigrated() throws {
        let dir = Fixtures.temporaryDirectory()
        let path = dir + "/j.sqlite"
        // A journal as the first release wrote it: only the v1 migration applied.
        let queue = try DatabaseQueue(path: path)
        try Journal.migrator.migrate(queue, upTo: "v1-runs-attempts")
        try queue.write { db in
            try db.execute(sql: "INSERT INTO run (id, inventory, playbook, command, pid, host, startedAt) VALUES ('r1', 'demo', 'up', 'up demo', 1, 'h', ?)", arguments: [Date()])
        }
        try queue.close()
        let journal = try Journal(path: path)
        let runs = try journal.runs()
        #expect(runs.map(\.id) == ["r1"])
        #expect(runs.first?.target == nil)
        try journal.startRun(id: "r2", inventory: "demo", playbook: "safe-reset", target: "cp2", command: "safe-reset demo/cp2")
        #expect(try journal.runs().first { $0.id == "r2" }?.target == "cp2")
    }

    @Test func newerSchemaIsRefusedClearly() throws {
        let dir = Fixtures.temporaryDirectory()
        let path = dir + "/j.sqlite"
        _ = try Journal(path: path)
        let queue = try DatabaseQueue(path: path)
        try queue.write { try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v9-from-the-future')") }
        try queue.close()
        let error = #expect(throws: JournalError.self) { _ = try Journal(path: path) }
        #expect(error?.description.contains("written by a newer provision") == true)
        #expect(error?.description.contains("v9-from-the-future") == true)
    }

    @Test func garbageFileIsRefusedNotCrashed() throws {
        let dir = Fixtures.temporaryDirectory()
        let path = dir + "/j.sqlite"
        try Data(repeating: 0x42, count: 8192).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: JournalError.self) { _ = try Journal(path: path) }
        #expect(error?.description.contains("cannot be opened") == true)
    }

    @Test func attemptsLeftRunningByACrashAreMarkedAbandoned() throws {
        let dir = Fixtures.temporaryDirectory()
        let journal = try Journal(path: dir + "/j.sqlite")
        try journal.startRun(id: "r1", inventory: "i", playbook: "p", target: nil, command: "c")
        let step = graph([(id: "a", deps: [], params: [:])]).instances[0]
        _ = try journal.beginAttempt(run: "r1", step: step, attempt: 1)
        // No endAttempt: the process "died". The next run's start repairs the record.
        try journal.startRun(id: "r2", inventory: "i", playbook: "p", target: nil, command: "c")
        #expect(try journal.allAttempts().map(\.outcome) == [.abandoned])
    }
}

@Suite struct LockTests {
    @Test func secondHolderWaitsThenFailsNamingTheHolder() async throws {
        let dir = Fixtures.temporaryDirectory()
        let first = try await InventoryLock.acquire(stateDirectory: dir, command: "up demo", timeout: .zero)
        let started = ContinuousClock.now
        let error = await #expect(throws: LockError.self) {
            _ = try await InventoryLock.acquire(stateDirectory: dir, command: "gpu up demo/gpu", timeout: .milliseconds(300))
        }
        #expect(ContinuousClock.now - started >= .milliseconds(300))
        let text = error?.description ?? ""
        #expect(text.contains("pid \(getpid())"))
        #expect(text.contains("up demo"))
        first.release()
        let again = try await InventoryLock.acquire(stateDirectory: dir, command: "gpu up demo/gpu", timeout: .zero)
        again.release()
    }

    @Test func staleLockOfADeadHolderIsTakenOverWithAWarning() async throws {
        let dir = Fixtures.temporaryDirectory()
        // What a kill -9'd holder leaves: its record, not released; the kernel already dropped the flock.
        let record = #"{"pid":999999,"host":"elsewhere","since":"2026-01-01T00:00:00Z","command":"up demo","released":false}"#
        try record.write(toFile: dir + "/lock", atomically: true, encoding: .utf8)
        var stale: InventoryLock.Holder?
        let lock = try await InventoryLock.acquire(stateDirectory: dir, command: "up demo", timeout: .zero) { stale = $0 }
        #expect(stale?.pid == 999999)
        lock.release()
        var staleAgain: InventoryLock.Holder?
        let next = try await InventoryLock.acquire(stateDirectory: dir, command: "up demo", timeout: .zero) { staleAgain = $0 }
        #expect(staleAgain == nil, "a clean release is not reported as stale")
        next.release()
    }
}

@Suite struct RedactionTests {
    /// A secret that contains another is masked whole, whichever was registered first.
    @Test func theLongestSecretIsMaskedFirst() {
        let redactor = Redactor()
        redactor.register("abcd")
        redactor.register("xxabcdyy")
        redactor.register("  zzzz-padded  ")
        #expect(redactor.redact("a xxabcdyy b abcd c zzzz-padded") == "a \(Redactor.mask) b \(Redactor.mask) c \(Redactor.mask)")
        #expect(redactor.redact("abc is too short to be one") == "abc is too short to be one")
    }

    @Test func resolvedCredentialsNeverReachEventsOrTheTraceLog() async throws {
        let dir = Fixtures.temporaryDirectory()
        let redactor = Redactor()
        let resolver = CredentialResolver(environment: ["TOKEN": "tok-9f8e7d6c5b4a"], baseDirectory: dir, redactor: redactor)
        try "file-secret-0123456789\n".write(toFile: dir + "/cred", atomically: true, encoding: .utf8)
        let token = try await resolver.resolve(.environment("TOKEN"))
        let fromFile = try await resolver.resolve(.file("cred"))
        #expect(fromFile == "file-secret-0123456789")
        let trace = try TraceLogSink(directory: dir + "/logs", runID: "r")
        let collected = CollectingSink()
        let bus = EventBus(redactor: redactor, sinks: [trace, collected])
        bus.emit(Event(run: "r", kind: .log, message: "using \(token) and \(fromFile)", outputs: ["x": token]))
        let log = try String(contentsOfFile: trace.path, encoding: .utf8)
        for text in [log, collected.all.map { "\($0.message ?? "") \($0.outputs ?? [:])" }.joined()] {
            #expect(!text.contains(token))
            #expect(!text.contains(fromFile))
            #expect(text.contains(Redactor.mask))
        }
        let mode = try FileManager.default.attributesOfItem(atPath: trace.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func missingReferencesSayWhatToDoWithoutAValue() async throws {
        let resolver = CredentialResolver(environment: [:], baseDirectory: "/nonexistent", redactor: Redactor())
        let error = await #expect(throws: CredentialError.self) { _ = try await resolver.resolve(.environment("PVE_TOKEN")) }
        #expect(error?.description == "credential env:PVE_TOKEN is not set; export PVE_TOKEN before running provision")
    }
}
