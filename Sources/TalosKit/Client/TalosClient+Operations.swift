import Foundation
import GRPCCore
import ProvisionCore
import SwiftProtobuf

/// The calls steps need beyond the basics: services, etcd, kubeconfig, snapshots, boot ID, stage.
extension TalosClient {
    public func services() async throws -> [Machine_ServiceInfo] {
        try await machine { try Self.first(try await $0.serviceList(Google_Protobuf_Empty(), options: options).messages, "ServiceList").services }
    }

    public func etcdStatus() async throws -> Machine_EtcdMemberStatus {
        try await machine { try Self.first(try await $0.etcdStatus(Google_Protobuf_Empty(), options: options).messages, "EtcdStatus").memberStatus }
    }

    public func etcdLeaveCluster() async throws {
        _ = try await machine { try await $0.etcdLeaveCluster(Machine_EtcdLeaveClusterRequest(), options: options) }
    }

    /// Returns the new leader's name.
    public func etcdForfeitLeadership() async throws -> String {
        try await machine { try Self.first(try await $0.etcdForfeitLeadership(Machine_EtcdForfeitLeadershipRequest(), options: options).messages, "EtcdForfeitLeadership").member }
    }

    public func etcdRemoveMember(id: UInt64) async throws {
        var request = Machine_EtcdRemoveMemberByIDRequest()
        request.memberID = id
        _ = try await machine { try await $0.etcdRemoveMemberByID(request, options: options) }
    }

    /// Members with an alarm raised (NOSPACE, CORRUPT): etcd refuses writes until they are handled.
    public func etcdAlarms() async throws -> [Machine_EtcdMemberAlarm] {
        try await machine { try await $0.etcdAlarmList(Google_Protobuf_Empty(), options: options).messages.flatMap(\.memberAlarms) }
    }

    public func reboot() async throws -> String {
        try await machine { try Self.first(try await $0.reboot(Machine_RebootRequest(), options: options).messages, "Reboot").actorID }
    }

    /// A fresh admin kubeconfig (control planes only).
    public func kubeconfig() async throws -> String {
        let archive = try await machine { try await $0.kubeconfig(Google_Protobuf_Empty(), options: options, onResponse: Self.collect) }
        return try KubeconfigArchive.extract(archive)
    }

    /// Streams an etcd snapshot into `file` and returns its size: written 0600 as it arrives (a
    /// snapshot holds every Kubernetes secret), checked whole (size and appended SHA-256) before it
    /// is renamed into place; a short or damaged one is removed and thrown.
    public func etcdSnapshot(to file: URL) async throws -> Int {
        var snapshotOptions = options
        snapshotOptions.timeout = .seconds(300)
        let path = file.path
        return try await machine { service in
            try await service.etcdSnapshot(Machine_EtcdSnapshotRequest(), options: snapshotOptions) { response in
                var writer = try EtcdSnapshotWriter(path: path)
                do {
                    for try await message in response.messages { try writer.append(message.bytes) }
                    return try writer.finish()
                } catch {
                    writer.abandon()
                    throw error
                }
            }
        }
    }

    /// The Linux boot ID: it changes on every boot, so it proves a reboot happened.
    /// EtcdRecover: streams a snapshot file (in 1 MiB messages, never held whole) to the node,
    /// where Bootstrap with `recoverEtcd` restores it. Talos refuses (FailedPrecondition) until
    /// the node's `/var/lib` is mounted, which callers retry.
    public func etcdRecover(from file: URL) async throws {
        var recoverOptions = options
        recoverOptions.timeout = .seconds(300)
        guard let handle = FileHandle(forReadingAtPath: file.path) else {
            throw TalosError.other(code: "io", message: "cannot read the snapshot \(file.path)")
        }
        defer { try? handle.close() }
        let source = SendableHandle(handle: handle)
        _ = try await machine { service in
            try await service.etcdRecover(options: recoverOptions, requestProducer: { writer in
                while let chunk = try source.handle.read(upToCount: 1 << 20), !chunk.isEmpty {
                    try await writer.write(.with { $0.bytes = chunk })
                }
            })
        }
    }

    /// The state of the etcd service (`Running`, `Preparing`, `Failed`...), nil when it has none.
    public func etcdServiceState() async throws -> String? {
        try await services().first { $0.id == "etcd" }?.state
    }

    /// What etcd's data directory holds (names directly under `/var/lib/etcd`), read with
    /// MachineService/List as `talosctl ls` does: Talos' Bootstrap refuses a node whose directory is
    /// not empty, so this is how a caller tells "never bootstrapped" from "has data" before etcd runs.
    /// An entry the node could not read is an error: "cannot tell" must never read as "empty".
    public func etcdDataEntries() async throws -> [String] {
        var request = Machine_ListRequest()
        request.root = "/var/lib/etcd"
        let infos = try await machine { try await $0.list(request, options: options) { response in
            var infos: [Machine_FileInfo] = []
            for try await info in response.messages { infos.append(info) }
            return infos
        } }
        if let failed = infos.first(where: { !$0.error.isEmpty }) {
            throw TalosError.other(code: "list", message: "\(failed.name): \(failed.error)")
        }
        return infos.map(\.relativeName).filter { $0 != "." && !$0.isEmpty }
    }

    public func bootID() async throws -> String {
        var request = Machine_ReadRequest()
        request.path = "/proc/sys/kernel/random/boot_id"
        let data = try await machine { try await $0.read(request, options: options, onResponse: Self.collect) }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Concatenates a stream of `common.Data` (Kubeconfig, EtcdSnapshot, Read): read until the end.
    @Sendable static func collect(_ response: StreamingClientResponse<Common_Data>) async throws -> Data {
        var bytes = Data()
        for try await message in response.messages { bytes.append(message.bytes) }
        return bytes
    }

    /// Every COSI resource of `type` in `namespace` (COSI State/List): each one's id and YAML spec.
    public func resources(namespace: String, type: String) async throws -> [(id: String, spec: String)] {
        var request = Cosi_Resource_ListRequest()
        request.namespace = namespace
        request.type = type
        return try await withClient { grpc in
            try await Cosi_Resource_State.Client(wrapping: grpc).list(request, options: options) { response in
                var items: [(id: String, spec: String)] = []
                for try await item in response.messages { items.append((item.resource.metadata.id, item.resource.spec.yamlSpec)) }
                return items
            }
        }
    }

    /// The machine's stage and readiness, from the COSI `MachineStatuses` resource.
    public func machineStatus() async throws -> MachineStatus {
        guard let resource = try await resource(namespace: "runtime", type: "MachineStatuses.runtime.talos.dev", id: "machine") else {
            throw TalosError.notFound("MachineStatuses.runtime.talos.dev/machine")
        }
        return try MachineStatus(yaml: resource.spec.yamlSpec)
    }

    /// One COSI resource (COSI State/Get), nil when it does not exist.
    func resource(namespace: String, type: String, id: String) async throws -> Cosi_Resource_Resource? {
        var request = Cosi_Resource_GetRequest()
        request.namespace = namespace
        request.type = type
        request.id = id
        do {
            return try await withClient { grpc in
                try await Cosi_Resource_State.Client(wrapping: grpc).get(request, options: options)
            }.resource
        } catch TalosError.notFound {
            return nil
        }
    }

    /// Which of a node's machine configs to read (COSI `MachineConfigs.config.talos.dev`).
    public enum ConfigID: String, Sendable {
        /// The active config.
        case active = "v1alpha1"
        /// What is on disk: ahead of the active one after a STAGED apply, until the next boot.
        case persistent
    }

    /// The node's machine config as Talos holds it (all documents, YAML), or nil when it has none.
    /// It holds the cluster's secrets: never log it unredacted.
    public func machineConfig(_ id: ConfigID) async throws -> String? {
        try await resource(namespace: "config", type: "MachineConfigs.config.talos.dev", id: id.rawValue)?.spec.yamlSpec
    }


    /// Version from several nodes through this endpoint (`nodes` fan-out). The gRPC status is OK even
    /// when a node failed; each reply says so in its own metadata, so results are per node.
    public func versions(nodes: [String]) async throws -> [String: Result<Machine_Version, TalosError>] {
        var metadata = Metadata()
        for node in nodes { metadata.addString(node, forKey: "nodes") }
        let response = try await machine { try await $0.version(Google_Protobuf_Empty(), metadata: metadata, options: options) }
        return Self.perNode(response.messages, metadata: \.metadata)
    }

    static func perNode<Message>(_ messages: [Message], metadata: KeyPath<Message, Common_Metadata>) -> [String: Result<Message, TalosError>] {
        var results: [String: Result<Message, TalosError>] = [:]
        for message in messages {
            let meta = message[keyPath: metadata]
            if !meta.error.isEmpty || meta.status.code != 0 {
                let text = meta.error.isEmpty ? meta.status.message : meta.error
                let code = Status.Code(rawValue: Int(meta.status.code)).flatMap { RPCError.Code($0) } ?? .unknown
                results[meta.hostname] = .failure(TalosError.from(RPCError(code: code, message: text), host: meta.hostname))
            } else {
                results[meta.hostname] = .success(message)
            }
        }
        return results
    }
}

/// A file handle read by one producer task at a time (FileHandle is not Sendable on Linux).
struct SendableHandle: @unchecked Sendable {
    let handle: FileHandle
}
