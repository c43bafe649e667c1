import Foundation
import GRPCCore
import SwiftProtobuf
import TalosKit

/// `machine.MachineService` of a simulated node: authorizes each call by role, then asks the node.
struct MachineHandler: Machine_MachineService.SimpleServiceProtocol {
    let node: SimulatedTalosNode

    func applyConfiguration(request: Machine_ApplyConfigurationRequest, context: ServerContext) async throws -> Machine_ApplyConfigurationResponse {
        try await node.authorize(node.tls.mode == .maintenance ? .applyConfiguration : .admin, "ApplyConfiguration", context)
        var reply = Machine_ApplyConfiguration()
        (reply.mode, reply.modeDetails) = try await node.apply(request)
        if !request.dryRun {
            node.directory.record.mutation(node.spec.name, "ApplyConfiguration")
            await node.directory.commit()
        }
        return .with { $0.messages = [reply] }
    }

    func bootstrap(request: Machine_BootstrapRequest, context: ServerContext) async throws -> Machine_BootstrapResponse {
        try await node.authorize(.admin, "Bootstrap", context)
        try await node.bootstrap(request)
        return .with { $0.messages = [Machine_Bootstrap()] }
    }

    func reset(request: Machine_ResetRequest, context: ServerContext) async throws -> Machine_ResetResponse {
        try await node.authorize(.admin, "Reset", context)
        let actor = try await node.reset(request)
        return .with { $0.messages = [.with { $0.actorID = actor }] }
    }

    func reboot(request: Machine_RebootRequest, context: ServerContext) async throws -> Machine_RebootResponse {
        try await node.authorize(.operate, "Reboot", context)
        let actor = try await node.requestReboot()
        return .with { $0.messages = [.with { $0.actorID = actor }] }
    }

    func shutdown(request: Machine_ShutdownRequest, context: ServerContext) async throws -> Machine_ShutdownResponse {
        try await node.authorize(.operate, "Shutdown", context)
        let actor = await node.requestShutdown()
        return .with { $0.messages = [.with { $0.actorID = actor }] }
    }

    /// Version, with apid's one-to-many routing: with `nodes` metadata each target answers in its
    /// own message (hostname set), and a target that fails is a message with `metadata.error` while
    /// the call itself succeeds. Maintenance mode does not route.
    func version(request: ServerRequest<Google_Protobuf_Empty>, context: ServerContext) async throws -> ServerResponse<Machine_VersionResponse> {
        try await node.authorize(.read, "Version", context)
        let targets = request.metadata[stringValues: "nodes"].map { $0 }
        guard !targets.isEmpty, node.tls.mode == .configured else {
            let own = await Self.versionMessage(node)
            return ServerResponse(message: .with { $0.messages = [own] })
        }
        var messages: [Machine_Version] = []
        for target in targets {
            var message = Machine_Version()
            if let peer = await node.directory.node(at: target), await peer.apiServes {
                message = await Self.versionMessage(peer)
            } else {
                message.metadata.error = "rpc error: code = Unavailable desc = connection error: dial tcp \(target):50000: connect: connection refused"
                message.metadata.status.code = 14
                message.metadata.status.message = message.metadata.error
            }
            message.metadata.hostname = target
            messages.append(message)
        }
        return ServerResponse(message: .with { $0.messages = messages })
    }

    /// Required by the simple protocol; the routing-aware overload above is the one gRPC calls.
    func version(request: Google_Protobuf_Empty, context: ServerContext) async throws -> Machine_VersionResponse {
        try await node.authorize(.read, "Version", context)
        let own = await Self.versionMessage(node)
        return .with { $0.messages = [own] }
    }

    static func versionMessage(_ node: SimulatedTalosNode) async -> Machine_Version {
        let configured = await node.configured
        var version = Machine_Version()
        version.version.tag = await node.talosVersion
        version.version.sha = "simulated"
        version.version.os = "linux"
        version.version.arch = "amd64"
        version.platform.name = node.spec.platform
        version.platform.mode = node.spec.platform == "metal" ? "metal" : "cloud"
        version.features.rbac = configured
        return version
    }

    func hostname(request: Google_Protobuf_Empty, context: ServerContext) async throws -> Machine_HostnameResponse {
        try await node.authorize(.read, "Hostname", context)
        let name = await node.hostname
        return .with { $0.messages = [.with { $0.hostname = name }] }
    }

    func serviceList(request: Google_Protobuf_Empty, context: ServerContext) async throws -> Machine_ServiceListResponse {
        try await node.authorize(.read, "ServiceList", context)
        let services = await node.services()
        return .with { $0.messages = [.with { $0.services = services }] }
    }

    func etcdMemberList(request: Machine_EtcdMemberListRequest, context: ServerContext) async throws -> Machine_EtcdMemberListResponse {
        try await node.authorize(.etcdRead, "EtcdMemberList", context)
        try await node.requireControlPlane("EtcdMemberList")
        // Talos dials etcd through the control plane endpoints its local API server publishes; with
        // no etcd here there is no API server, so v1.13.9 answers with this plain error (gRPC
        // Unknown) before any bootstrap or join (internal/pkg/etcd/endpoints.go GetEndpoints).
        guard await node.etcd.hasData(node.spec.name) else {
            throw RPCError(code: .unknown, message: "no controlplane endpoints discovered yet")
        }
        let members = try await node.etcd.members(via: node.spec.name).map { member in
            Machine_EtcdMember.with {
                $0.id = member.id
                $0.hostname = member.hostname
                $0.peerUrls = ["https://\(member.address):2380"]
                $0.clientUrls = ["https://\(member.address):2379"]
                $0.isLearner = member.isLearner
            }
        }
        return .with { $0.messages = [.with { $0.members = members; $0.legacyMembers = members.map(\.hostname) }] }
    }

    func etcdStatus(request: Google_Protobuf_Empty, context: ServerContext) async throws -> Machine_EtcdStatusResponse {
        try await node.authorize(.etcdRead, "EtcdStatus", context)
        try await node.requireControlPlane("EtcdStatus")
        let status = try await node.etcd.status(node: node.spec.name)
        var memberStatus = Machine_EtcdMemberStatus()
        memberStatus.memberID = status.member.id
        memberStatus.leader = status.leader
        memberStatus.errors = status.errors
        memberStatus.raftIndex = UInt64(status.revision)
        memberStatus.raftAppliedIndex = UInt64(status.revision)
        memberStatus.isLearner = status.member.isLearner
        memberStatus.protocolVersion = "3.5.0"
        memberStatus.dbSize = 1 << 20
        return .with { $0.messages = [.with { $0.memberStatus = memberStatus }] }
    }

    func etcdLeaveCluster(request: Machine_EtcdLeaveClusterRequest, context: ServerContext) async throws -> Machine_EtcdLeaveClusterResponse {
        try await node.authorize(.admin, "EtcdLeaveCluster", context)
        try await node.leaveEtcd()
        return .with { $0.messages = [Machine_EtcdLeaveCluster()] }
    }

    func etcdForfeitLeadership(request: Machine_EtcdForfeitLeadershipRequest, context: ServerContext) async throws -> Machine_EtcdForfeitLeadershipResponse {
        try await node.authorize(.admin, "EtcdForfeitLeadership", context)
        try await node.requireControlPlane("EtcdForfeitLeadership")
        let leader = try await node.etcd.forfeitLeadership(node: node.spec.name)
        return .with { $0.messages = [.with { $0.member = leader }] }
    }

    func etcdRemoveMemberByID(request: Machine_EtcdRemoveMemberByIDRequest, context: ServerContext) async throws -> Machine_EtcdRemoveMemberByIDResponse {
        try await node.authorize(.admin, "EtcdRemoveMemberByID", context)
        try await node.requireControlPlane("EtcdRemoveMemberByID")
        try await node.etcd.removeMember(id: request.memberID, via: node.spec.name)
        return .with { $0.messages = [Machine_EtcdRemoveMemberByID()] }
    }

    /// Members with an alarm raised (NOSPACE for the `etcd-alarm` fault), as etcd reports them.
    func etcdAlarmList(request: Google_Protobuf_Empty, context: ServerContext) async throws -> Machine_EtcdAlarmListResponse {
        try await node.authorize(.etcdRead, "EtcdAlarmList", context)
        try await node.requireControlPlane("EtcdAlarmList")
        let alarms = try await node.etcd.alarms(via: node.spec.name)
        return .with { $0.messages = [.with { $0.memberAlarms = alarms.map { id in .with { $0.memberID = id; $0.alarm = .nospace } } }] }
    }

    func etcdAlarmDisarm(request: Google_Protobuf_Empty, context: ServerContext) async throws -> Machine_EtcdAlarmDisarmResponse {
        try await node.authorize(.admin, "EtcdAlarmDisarm", context)
        try await node.requireControlPlane("EtcdAlarmDisarm")
        let cleared = try await node.etcd.disarmAlarms(via: node.spec.name)
        return .with { $0.messages = [.with { $0.memberAlarms = cleared.map { id in .with { $0.memberID = id; $0.alarm = .nospace } } }] }
    }

    func etcdRecover(request: RPCAsyncSequence<Common_Data, any Error>, context: ServerContext) async throws -> Machine_EtcdRecoverResponse {
        try await node.authorize(.admin, "EtcdRecover", context)
        var snapshot = Data()
        for try await chunk in request { snapshot.append(chunk.bytes) }
        try await node.recoverEtcd(snapshot)
        return .with { $0.messages = [Machine_EtcdRecover()] }
    }

    /// ImagePull: the RBAC table's operator-and-up is an assumption (not read in `machined.go`).
    func imagePull(request: Machine_ImagePullRequest, context: ServerContext) async throws -> Machine_ImagePullResponse {
        try await node.authorize(.operate, "ImagePull", context)
        try await node.imagePull(request.reference, namespace: request.namespace)
        return .with { $0.messages = [Machine_ImagePull()] }
    }

    func upgrade(request: Machine_UpgradeRequest, context: ServerContext) async throws -> Machine_UpgradeResponse {
        try await node.authorize(.admin, "Upgrade", context)
        let ack = try await node.legacyUpgrade(request)
        return .with { $0.messages = [.with { $0.ack = ack; $0.actorID = "upgrade-\(node.spec.name)" }] }
    }

    func etcdSnapshot(request: Machine_EtcdSnapshotRequest, response: RPCWriter<Common_Data>, context: ServerContext) async throws {
        try await node.authorize(.etcdBackup, "EtcdSnapshot", context)
        try await node.requireControlPlane("EtcdSnapshot")
        let data = try await node.etcd.snapshot(node: node.spec.name)
        // Streamed in chunks, as Talos sends it.
        for start in stride(from: 0, to: data.count, by: 4096) {
            try await response.write(.with { $0.bytes = data.subdata(in: start..<min(data.count, start + 4096)) })
        }
    }

    func kubeconfig(request: Google_Protobuf_Empty, response: RPCWriter<Common_Data>, context: ServerContext) async throws {
        try await node.authorize(.admin, "Kubeconfig", context)
        let archive = try await node.kubeconfigArchive()
        try await response.write(.with { $0.bytes = archive })
    }

    /// As talos v1.13.9 streams them (v1alpha1_server.go Events): a "hello" event first (empty data,
    /// a fresh id, the caller's `with_actor_id`), then the backlog the tail options ask for (none
    /// by default; a conflict is a plain error after the hello), then each event as it is
    /// published, of every kind; `with_actor_id` keeps only that actor's. The stream ends when the
    /// node goes down (its API with it) or the client hangs up.
    func events(request: Machine_EventsRequest, response: RPCWriter<Machine_Event>, context: ServerContext) async throws {
        try await node.authorize(.read, "Events", context)
        var hello = Machine_Event()
        hello.id = await node.helloEventID()
        hello.actorID = request.withActorID
        hello.data = Google_Protobuf_Any()
        try await response.write(hello)
        let tail = SimulatedEvents.Tail(events: request.tailEvents, id: request.tailID, seconds: request.tailSeconds)
        let stream: (backlog: [SimulatedEvents.Event], live: AsyncStream<SimulatedEvents.Event>)
        do { stream = try await node.eventStream(tail) } catch { throw RPCError(code: .unknown, message: "\(error)") }
        func send(_ event: SimulatedEvents.Event) async throws {
            if !request.withActorID.isEmpty, event.actor != request.withActorID { return }
            try await response.write(.with { $0.id = event.id; $0.actorID = event.actor; $0.data = event.data })
        }
        for event in stream.backlog { try await send(event) }
        for await event in stream.live { try await send(event) }
    }

    /// List as v1.13.9 walks a directory without recursion: the root itself (`.`), then each entry.
    /// The lab has one directory, etcd's data directory: `member` once etcd has data there (etcd
    /// keeps its WAL and snapshots under `member/`); absent on workers.
    func list(request: Machine_ListRequest, response: RPCWriter<Machine_FileInfo>, context: ServerContext) async throws {
        try await node.authorize(.admin, "List", context)
        let root = "/" + request.root.split(separator: "/").joined(separator: "/")
        guard root == "/var/lib/etcd", await node.isControlPlane, await node.servicesUp else {
            throw RPCError(code: .unknown, message: "lstat \(root): no such file or directory")
        }
        try await response.write(.with { $0.name = root; $0.relativeName = "."; $0.isDir = true; $0.mode = 0o700 | 0x8000_0000 })
        if await node.etcd.hasData(node.spec.name) {
            try await response.write(.with { $0.name = root + "/member"; $0.relativeName = "member"; $0.isDir = true; $0.mode = 0o700 | 0x8000_0000 })
        }
    }

    func read(request: Machine_ReadRequest, response: RPCWriter<Common_Data>, context: ServerContext) async throws {
        try await node.authorize(.admin, "Read", context)
        guard request.path == "/proc/sys/kernel/random/boot_id" else {
            throw RPCError(code: .notFound, message: "open \(request.path): no such file or directory")
        }
        let bootID = await node.bootID
        try await response.write(.with { $0.bytes = Data((bootID + "\n").utf8) })
    }
}
