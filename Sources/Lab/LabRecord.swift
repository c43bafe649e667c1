import Foundation
import Synchronization

/// What happened in the lab and when: every machine stage change (with its boot ID) and every
/// change of which etcd members run, in memory and, once attached, appended as JSON lines to
/// `<state>/lab/record.jsonl`. Tests read it to assert safety over time (never two control planes
/// down at once, etcd never without quorum, one reboot and not two), not just the end state.
public final class LabRecord: Sendable {
    public struct Entry: Codable, Sendable, Equatable {
        /// Milliseconds since 1970.
        public var t: Int64
        public var node: String?
        /// `stage` (a machine stage change), `etcd` (the running members changed), or `lab` (the
        /// simulator `started` or `stopped`: its machines are not going down, the process is).
        public var event: String
        public var stage: String?
        public var bootID: String?
        public var etcdRunning: [String]?
        public var etcdMembers: Int?
        public var quorum: Bool?
        /// A call that changes a machine (`Upgrade`, `LifecycleService/Upgrade`, `ImageService/Pull`), or a note.
        public var method: String?
        public var detail: String?
    }

    private let state = Mutex<(entries: [Entry], file: FileHandle?, stopped: Bool)>(([], nil, false))

    public init() {}

    /// Appends every entry from now on to `path` (created 0600 if missing).
    public func attach(path: String) {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        // O_APPEND: the orchestrator's simulated hypervisor appends its creates to the same file.
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT, 0o600)
        guard descriptor >= 0 else { return }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        state.withLock { $0.file = handle }
    }

    public var entries: [Entry] { state.withLock { $0.entries } }

    /// The simulator starts (a restored lab's machines resume as they were) or stops; after `stopped`
    /// nothing more is recorded, so a process that exits never looks like machines going down.
    func lab(_ what: String) {
        append(Entry(t: Self.now(), node: nil, event: "lab", stage: what))
        if what == "stopped" {
            state.withLock { state in
                state.file?.closeFile()
                state.file = nil
                state.stopped = true
            }
        }
    }

    func stage(_ node: String, _ stage: String, bootID: String) {
        append(Entry(t: Self.now(), node: node, event: "stage", stage: stage, bootID: bootID))
    }

    /// A machine-changing call arrived (which upgrade path a node went through, say).
    func call(_ node: String, _ method: String, detail: String? = nil) {
        append(Entry(t: Self.now(), node: node, event: "call", method: method, detail: detail))
    }

    /// A Kubernetes component (`kube-apiserver`, `kubelet`) restarts into a new version (`restarting`),
    /// then runs it and is ready (`ready`).
    func component(_ node: String, _ name: String, version: String, stage: String) {
        append(Entry(t: Self.now(), node: node, event: "component", stage: stage, method: name, detail: version))
    }

    /// Something the machine did that a test asserts on (an upgrade falling back).
    func note(_ node: String, _ what: String, detail: String) {
        append(Entry(t: Self.now(), node: node, event: what, detail: detail))
    }

    /// A call that changes something (an applied config, a reboot, a Kubernetes write, an EC2
    /// launch), so a benchmark can count what a converged re-run changed: it should be nothing.
    func mutation(_ who: String, _ what: String) {
        append(Entry(t: Self.now(), node: who, event: "mutation", method: what))
    }

    func etcd(running: [String], members: Int, quorum: Bool) {
        append(Entry(t: Self.now(), node: nil, event: "etcd", etcdRunning: running.sorted(), etcdMembers: members, quorum: quorum))
    }

    private func append(_ entry: Entry) {
        let line = (try? JSONEncoder().encode(entry)).map { $0 + Data("\n".utf8) }
        state.withLock { state in
            guard !state.stopped else { return }
            state.entries.append(entry)
            if let line { state.file?.write(line) }
        }
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}
