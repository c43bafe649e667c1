import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SwiftProtobuf
import TalosKit

/// One simulated Talos machine: a stage machine (booting -> maintenance -> installing -> rebooting
/// -> running; reset -> maintenance) with a boot ID that changes on every boot, whose API listens
/// on the node's own loopback address only while Talos' apid would be up.
public actor SimulatedTalosNode {
    public nonisolated let spec: SimulatedNodeSpec
    nonisolated let etcd: SimulatedEtcd
    nonisolated let trustd: SimulatedTrustd
    nonisolated let directory: SimulatedDirectory
    nonisolated let tls = NodeTLS()

    public internal(set) var stage: MachineStatus.Stage = .unknown {
        didSet {
            guard stage != oldValue else { return }
            history.append(stage)
            directory.record.stage(spec.name, stage.rawValue, bootID: bootID)
            // A MachineStatusEvent on every change of the MachineStatus resource, from a controller:
            // no actor (talos v1.13.9 machine_status_publisher.go).
            publish(Machine_MachineStatusEvent.with {
                $0.stage = Machine_MachineStatusEvent.MachineStage(stage)
                $0.status.ready = stage == .running
            })
        }
    }

    /// MachineService/Events: what was published since boot, and the open streams.
    var events = SimulatedEvents()
    /// False from the moment the API starts going down until it serves again.
    private var streamsOpen = false

    func publish(_ message: any SwiftProtobuf.Message, actor: String = "") { events.publish(message, actor: actor) }

    /// A sequence's events as Talos' controller publishes them (v1alpha1_controller.go).
    func publishSequence(_ name: String, _ action: Machine_SequenceEvent.Action, actor: String, error: String? = nil) {
        publish(Machine_SequenceEvent.with {
            $0.sequence = name
            $0.action = action
            if let error { $0.error = .with { $0.code = .fatal; $0.message = error } }
        }, actor: actor)
    }

    /// One phase with its one task, started and stopped (a phase that fails stops all the same).
    func publishPhase(_ phase: String, task: String, actor: String) {
        publish(Machine_PhaseEvent.with { $0.phase = phase; $0.action = .start }, actor: actor)
        publish(Machine_TaskEvent.with { $0.task = task; $0.action = .start }, actor: actor)
        publish(Machine_TaskEvent.with { $0.task = task; $0.action = .stop }, actor: actor)
        publish(Machine_PhaseEvent.with { $0.phase = phase; $0.action = .stop }, actor: actor)
    }

    /// The backlog `tail` asks for, then every new event, until the node goes down or the caller
    /// stops reading.
    func eventStream(_ tail: SimulatedEvents.Tail) throws -> (backlog: [SimulatedEvents.Event], live: AsyncStream<SimulatedEvents.Event>) {
        let backlog = try events.backlog(tail)
        let (stream, continuation) = AsyncStream.makeStream(of: SimulatedEvents.Event.self, bufferingPolicy: .bufferingNewest(256))
        guard streamsOpen else {
            continuation.finish()
            return (backlog, stream)
        }
        let id = UUID()
        events.watch(id, continuation)
        continuation.onTermination = { [weak self] _ in
            Task { await self?.forgetWatcher(id) }
        }
        return (backlog, stream)
    }

    private func forgetWatcher(_ id: UUID) { events.forget(id) }
    func helloEventID() -> String { events.nextIDForHello() }
    /// Every stage the node has been in, in order (tests check the sequence).
    public private(set) var history: [MachineStatus.Stage] = []
    public private(set) var bootID = UUID().uuidString.lowercased()
    public private(set) var powered = false
    /// The Talos it runs (what it was installed with, then what an upgrade booted it into).
    public internal(set) var talosVersion: String
    /// The Image Factory schematic it runs (COSI ExtensionStatuses `schematic`); nil for none.
    public internal(set) var schematic: String?
    /// Installed into the other boot slot by an upgrade: what the next boot runs, unless it fails.
    var otherSlot: (version: String, schematic: String?)?
    /// Installer images pulled, by containerd instance and reference.
    var pulled: Set<String> = []
    /// Talos takes one installation or upgrade at a time.
    var installing = false
    /// Disks the installer zeroed (`install.wipe`): what was on them is gone.
    var wipedDisks: Set<String> = []
    /// The configured boot has started its services (CRI, apid with the cluster's identity, the
    /// kubelet; etcd on a control plane is started too and waits in its pre-start): what Talos'
    /// Bootstrap and EtcdRecover need. Reset at every power transition.
    var servicesUp = false
    /// The active config (COSI `MachineConfigs/v1alpha1`).
    var config: AppliedConfig?
    /// A config written to disk but not active yet (STAGED, or REBOOT until the reboot): it becomes
    /// active at the next boot. COSI `MachineConfigs/persistent` is this, or the active one.
    var staged: AppliedConfig?
    var persistent: AppliedConfig? { staged ?? config }
    /// While a reset or reboot runs: the state it ends in, which is what a save records.
    var promised: TwinSnapshot.NodeState?
    /// The boot ID the next boot gets, when it is already promised (a reset recorded before it reboots).
    var nextBootID: String?
    /// Talos is on the disk (metal after its first install; cloud images always).
    var installed: Bool
    /// Bumped on every power transition so a scheduled step of an older boot does nothing.
    var epoch = 0
    /// Kubernetes components by process name and the version they run (SimulatedComponents).
    var components: [String: String] = [:]
    var restarting: Set<String> = []
    /// The COSI versions of the static pods' config resources (`StaticPodInputs.resources`) and the
    /// inputs they were made from.
    var staticPodVersions: [String: Int] = [:]
    var staticPodInputs: [String: String] = [:]
    /// Its NIC's Wake-on-LAN is armed for magic packets: set by ethtool when a config arming it
    /// runs, kept by the NIC while it has standby power (a shutdown), lost when the power is cut.
    public private(set) var wakeArmed = false
    /// The OS CA key behind the API certificate a worker got from trustd: it holds that certificate
    /// while it runs (talos v1.13.9 `controllers/secrets/api.go` generateWorker), so a lab restored
    /// while it ran serves with it again without a control plane's trustd.
    private var heldCAKey: String?
    private var server: GRPCServer<HTTP2ServerTransport.Posix>?
    /// The address its API last listened at (the lab's record notes each change).
    private var listeningOn: String?
    private var serving: Task<Void, Never>?
    private var actors = 0
    /// Method names as they arrived, with the caller's roles: what tests inspect.
    public private(set) var calls: [(method: String, roles: [String])] = []

    public init(spec: SimulatedNodeSpec, etcd: SimulatedEtcd, trustd: SimulatedTrustd = SimulatedTrustd(),
                directory: SimulatedDirectory = SimulatedDirectory()) {
        self.spec = spec.withDiskFaults()
        talosVersion = spec.talosVersion
        schematic = spec.schematic
        self.etcd = etcd
        self.trustd = trustd
        self.directory = directory
        installed = !spec.installsToDisk
        tls.setFlaps(spec.faults.contains(.apiFlaps))
    }

    public var configured: Bool { config != nil }
    /// apid answers: in maintenance, or once the configured boot started its services.
    var apiServes: Bool { stage == .maintenance || servicesUp }

    /// The cluster's Kubernetes CA as a configured control plane holds it: what its API server serves with.
    var kubernetesCA: (certificate: String, key: String)? { config?.controlPlane == true ? config?.kubernetesCA : nil }

    /// What this machine's kubelet would register: its hostname and role, and whether it runs now.
    /// Nil until a config makes it a cluster member.
    var kubelet: (hostname: String, controlPlane: Bool, running: Bool, labels: [String: String], talosVersion: String, version: String?)? {
        guard let config else { return nil }
        return (hostname, config.controlPlane, stage == .running && !restarting.contains("kubelet"), config.nodeLabels, talosVersion, components["kubelet"])
    }
    public var isControlPlane: Bool { config?.controlPlane ?? false }
    var hostname: String { config?.hostname ?? "talos-" + (address ?? spec.address).replacingOccurrences(of: ".", with: "-") }

    /// Where the machine answers now. Without a config: its DHCP lease (Talos in maintenance runs
    /// DHCP on every link). With one: the static address its link documents put on the NIC, or the
    /// lease when the config keeps DHCP. Nil when the config's link documents turned DHCP off yet
    /// name no link of this machine (a MAC typo): the machine has no address at all.
    public var address: String? {
        let lease = spec.leaseAddress ?? spec.address
        guard let config else { return lease }
        let network = config.network
        if let fixed = network.staticAddress(nicMAC: spec.nicMAC) { return fixed }
        return network.usesDHCP(nicMAC: spec.nicMAC) ? lease : nil
    }

    // MARK: Power and stages

    public func powerOn() async {
        guard !powered else { return }
        await directory.register(self)
        powered = true
        await boot()
    }

    /// A cloud instance's first boot: Talos reads its config from user data and goes straight to
    /// running. User data that is not a valid config leaves it in maintenance, as Talos does; the
    /// reason is returned (what the instance's console would show).
    @discardableResult
    public func powerOn(userData: String) async -> String? {
        let problem = attach(userData: userData)
        await powerOn()
        return problem
    }

    /// The instance's disk and user data are in place before it powers on (EC2 attaches them at
    /// launch, then takes its time to run it); the console's complaint about them, if any.
    @discardableResult
    public func attach(userData: String) -> String? {
        var problem: String?
        do { config = try AppliedConfig.parse(userData, talosVersion: talosVersion) } catch {
            problem = "user data is not a Talos machine config: \(error)"
        }
        installed = true
        return problem
    }

    /// What survives the lab's process: power and the applied config (Talos keeps it on disk).
    func snapshot() -> TwinSnapshot.NodeState {
        var state = promised ?? TwinSnapshot.NodeState(name: spec.name, powered: powered, config: config?.text, staged: staged?.text, bootID: bootID)
        state.address = spec.address
        state.talosVersion = state.talosVersion ?? talosVersion
        state.schematic = state.schematic ?? schematic
        if promised == nil, let slot = otherSlot {
            state.slotVersion = slot.version
            state.slotSchematic = slot.schematic
        }
        state.platform = spec.platform
        state.wakeArmed = wakeArmed ? true : nil
        state.heldCAKey = state.config == nil ? nil : heldCAKey
        state.mac = spec.mac
        state.hypervisor = spec.hypervisor
        state.domain = spec.domain
        return state
    }

    /// Brings the machine back as it was left: it never went down, so a configured machine is
    /// running with the same boot ID, and one in maintenance is in maintenance.
    func restore(_ state: TwinSnapshot.NodeState) async {
        if let text = state.config, let parsed = try? AppliedConfig.parse(text, talosVersion: talosVersion, validate: false) {
            config = parsed
            installed = true
        }
        staged = state.staged.flatMap { try? AppliedConfig.parse($0, talosVersion: talosVersion, validate: false) }
        if let version = state.slotVersion { otherSlot = (version, state.slotSchematic) }
        wakeArmed = state.wakeArmed ?? false
        heldCAKey = state.heldCAKey
        guard state.powered, !spec.faults.contains(.neverBoots) else { return }
        await directory.register(self)
        powered = true
        epoch += 1
        if let bootID = state.bootID { self.bootID = bootID }
        await finishBoot(epoch, resumed: true)
    }

    /// A magic packet for its MAC: it powers on only when off, armed, and of hardware that wakes from
    /// power-off; otherwise nothing happens, as on a Mac mini nobody armed (the record says why).
    /// Whether it powered on.
    @discardableResult
    public func wake() async -> Bool {
        guard !powered else { return false }
        guard wakeArmed, spec.wakesFromPowerOff else {
            directory.record.note(spec.name, "wake-ignored", detail: wakeArmed ? "its hardware does not power on from a magic packet (lab.wakeFromPowerOff)"
                                    : "Wake-on-LAN was not armed on its NIC (no EthernetConfig with wakeOnLan: [magic] for \(ConfiguredNetwork.nicName) ran)")
            return false
        }
        await powerOn()
        return true
    }

    /// Pulls the plug: no graceful anything; an armed NIC loses its setting with the power.
    public func powerOff() async {
        await powerOff(cut: true)
    }

    /// Off; `cut: false` is a shutdown (the NIC keeps standby power and its Wake-on-LAN setting).
    func powerOff(cut: Bool) async {
        if cut { wakeArmed = false }
        powered = false
        servicesUp = false
        epoch += 1
        await stopAPI()
        stage = .unknown
        await etcd.setRunning(spec.name, false, unhealthy: false)
    }

    /// The VM was deleted: its disk (Talos, its config, etcd's data) is gone. An etcd member it
    /// held stays in the membership until someone removes it, as on a real cluster.
    func diskDestroyed() async {
        config = nil
        staged = nil
        promised = nil
        installed = !spec.installsToDisk
        await etcd.wipe(node: spec.name)
    }

    /// Waits (scaled) and tells whether the node is still in the same boot.
    func pause(_ seconds: Double, _ mark: Int, atLeast floor: Duration = .zero) async -> Bool {
        let scaled = max(.milliseconds(Int(seconds * spec.timeScale * 1000)), floor)
        if scaled > .zero { try? await Task.sleep(for: scaled) } else { await Task.yield() }
        return mark == epoch
    }

    private func boot() async {
        epoch += 1
        servicesUp = false
        let mark = epoch
        bootID = nextBootID ?? UUID().uuidString.lowercased()
        nextBootID = nil
        promised = nil
        // What is on disk is what boots: the staged config, and the upgraded slot unless it fails.
        if let staged {
            config = staged
            self.staged = nil
        }
        if let slot = otherSlot {
            otherSlot = nil
            let booted = bootsInto(slot)
            if booted != slot {
                directory.record.note(spec.name, "upgrade-fallback", detail: "\(slot.version) failed to boot; back on \(talosVersion)")
            }
            (talosVersion, schematic) = booted
        }
        events.forgetHistory()
        stage = .booting
        publishSequence("boot", .start, actor: "")
        guard !spec.faults.contains(.neverBoots) else { return }
        Task { await self.finishBoot(mark) }
    }

    private func finishBoot(_ mark: Int, resumed: Bool = false) async {
        if !resumed { guard await pause(SimulatedTiming.boot, mark) else { return } }
        if let config {
            await enterRunning(config, mark, resumed: resumed)
        } else {
            // apid serves before the boot sequence ends, as on Talos: a client already connected
            // sees the stage change on its Events stream instead of finding the API not up yet.
            let host = address ?? spec.address
            await startAPI { try $0.tls.useMaintenance(addresses: [host]) }
            // The fake task config acquisition publishes while it waits (controllers/config/acquire.go).
            if mark == epoch { publish(Machine_TaskEvent.with { $0.task = "runningMaintenance"; $0.action = .start }) }
            if mark == epoch { stage = .maintenance }
        }
    }

    private func enterRunning(_ config: AppliedConfig, _ mark: Int, resumed: Bool = false) async {
        // A worker's API certificate needs a control plane's trustd; until one runs, it waits.
        // One that never went down (a restored lab) still holds the certificate it had.
        var caKey = config.osCA.key ?? (resumed ? heldCAKey : nil)
        while caKey == nil {
            caKey = await trustd.key(for: config.osCA.certificate)
            if caKey == nil { guard await pause(1, mark) else { return } }
            if spec.timeScale == 0, caKey == nil { try? await Task.sleep(for: .milliseconds(5)) }
        }
        guard let caKey, mark == epoch else { return }
        heldCAKey = config.controlPlane ? nil : caKey
        if config.controlPlane { await trustd.register(certificate: config.osCA.certificate, key: caKey) }
        armWake(config)
        startComponents(config)
        let host = address ?? spec.address
        await startAPI { node in
            try node.tls.useConfigured(osCA: (config.osCA.certificate, caKey), hostname: config.hostname ?? node.spec.name,
                                       addresses: [host], sans: config.certSANs)
        }
        guard mark == epoch else { return }
        servicesUp = true
        for service in ["containerd", "cri", "kubelet"] + (config.controlPlane ? ["etcd", "trustd"] : []) {
            publish(Machine_ServiceStateEvent.with { $0.service = service; $0.action = .running; $0.message = "Health check successful" })
        }
        // A worker's boot sequence ends once its own services are up. A control plane's waits for
        // etcd too, whose pre-start waits for a bootstrap or a join: until then it stays `booting`
        // (talos v1.13.9 StartAllServices, etcd.go buildInitialCluster, machine_status.go).
        guard config.controlPlane else {
            stage = .running
            publishSequence("boot", .stop, actor: "")
            return
        }
        if await etcd.hasData(spec.name) {
            await etcdStarted(mark)
        } else {
            // A lab restored while this node waited comes back waiting (the stage was not saved).
            if stage != .booting { stage = .booting }
            Task { await self.joinEtcd(mark) }
        }
    }

    /// etcd runs (it had data, was bootstrapped or joined): the boot sequence ends, `running`.
    func etcdStarted(_ mark: Int) async {
        guard mark == epoch, stage != .running else { return }
        await etcd.setRunning(spec.name, true, unhealthy: spec.faults.contains(.etcdUnhealthy))
        if spec.faults.contains(.etcdAlarm) { await etcd.raiseAlarm(node: spec.name) }
        stage = .running
        publishSequence("boot", .stop, actor: "")
        if await etcd.isLearner(spec.name) { Task { await self.promoteLearner(mark) } }
    }

    /// Talos promotes the learner it added: a first attempt at once (refused: etcd has not caught up),
    /// then every 15 s for up to 10 minutes, through any control plane (talos v1.13.9
    /// `system/services/etcd.go` promoteMember). The lab's learner has caught up by the second.
    private func promoteLearner(_ mark: Int) async {
        // Ten minutes on the lab's clock, never under a minute of real time (a test may hold it back).
        let deadline = ContinuousClock.now + max(.milliseconds(Int(600_000 * spec.timeScale)), .seconds(60))
        while ContinuousClock.now < deadline {
            guard await pause(15, mark, atLeast: .milliseconds(20)) else { return }
            if await etcd.promote(node: spec.name) { return }
            if await !etcd.isLearner(spec.name) { return }
        }
    }

    /// A control plane without etcd data retries joining (every 3 s, as etcd.go's retry does)
    /// until a cluster it can join exists, saying what Talos says while it waits.
    private func joinEtcd(_ mark: Int) async {
        directory.record.note(spec.name, "etcd-waiting", detail: "etcd is waiting to join the cluster, if this node is the first node in the cluster, "
                              + "please run `talosctl bootstrap` against one of the following IPs: [\(address ?? spec.address)]")
        while mark == epoch, config?.controlPlane == true, !(await etcd.hasData(spec.name)) {
            guard await pause(SimulatedTiming.etcdJoin, mark) else { return }
            if await etcd.join(node: spec.name, hostname: hostname, address: address ?? spec.address) { break }
            if spec.timeScale == 0 { try? await Task.sleep(for: .milliseconds(5)) }
        }
        await etcdStarted(mark)
    }

    func reboot() async {
        epoch += 1
        servicesUp = false
        let mark = epoch
        stage = .rebooting
        // Talos stops its services before apid goes: an Events stream still delivers `rebooting`.
        // Never under 300 ms of real time, however fast the lab's clock (Talos takes seconds to stop
        // its services): the event must reach the client's socket, behind the events published
        // before it, before the connection is cut, and a loaded machine needs that long.
        guard await pause(SimulatedTiming.servicesStop, mark, atLeast: .milliseconds(300)) else { return }
        await stopAPI()
        await etcd.setRunning(spec.name, false, unhealthy: false)
        guard await pause(SimulatedTiming.reboot, mark) else { return }
        await boot()
    }

    // MARK: API server lifecycle

    private func startAPI(_ identity: @Sendable (SimulatedTalosNode) throws -> Void) async {
        await stopAPI()
        streamsOpen = true
        do { try identity(self) } catch {
            FileHandle.standardError.write(Data("lab: \(spec.name): cannot make TLS identity: \(error)\n".utf8))
            return
        }
        // A machine with no address answers nowhere: its API runs, but no client can reach it.
        guard let host = address else {
            directory.record.note(spec.name, "no-address", detail: "its config's link documents turned DHCP off and name no link of this machine "
                                  + "(its NIC \(ConfiguredNetwork.nicName) is \(spec.nicMAC)): it has no IPv4 address")
            return
        }
        if host != listeningOn {
            directory.record.note(spec.name, "address", detail: "answers at \(host)" + (config == nil ? " (DHCP, in maintenance)" : ""))
            publish(Machine_AddressEvent.with { $0.hostname = config?.hostname ?? ""; $0.addresses = [host] })
        }
        listeningOn = host
        var transportConfig = HTTP2ServerTransport.Posix.Config.defaults
        transportConfig.rpc.maxRequestPayloadSize = 32 << 20
        let tls = self.tls
        transportConfig.channelDebuggingCallbacks.onAcceptTCPConnection = { channel in tls.configure(channel) }
        let transport = HTTP2ServerTransport.Posix(address: .ipv4(host: host, port: spec.port), transportSecurity: .plaintext, config: transportConfig)
        var services: [any RegistrableRPCService] = [MachineHandler(node: self), StorageHandler(node: self), ResourceHandler(node: self)]
        // ImageService and LifecycleService exist from Talos 1.13 on; 1.12 answers Unimplemented.
        if TalosReleases.minor(of: talosVersion)?.lifecycleAPI ?? true { services += [ImageHandler(node: self), LifecycleHandler(node: self)] }
        let server = GRPCServer(transport: transport, services: services)
        self.server = server
        let name = spec.name, address = host
        serving = Task {
            do { try await server.serve() } catch {
                FileHandle.standardError.write(Data("lab: \(name) (\(address)): API server stopped: \(error)\n".utf8))
            }
        }
        _ = try? await transport.listeningAddress
    }

    private func stopAPI() async {
        // An Events stream waits for the next stage; it ends with the API, or the graceful
        // shutdown below would wait for it forever. A stream asked for while the API goes down
        // (its handler reaches the node after this point) ends at once, for the same reason.
        streamsOpen = false
        events.endStreams()
        server?.beginGracefulShutdown()
        // Connections are cut, as when apid restarts; streams in flight end.
        await serving?.value
        server = nil
        serving = nil
    }

    /// Returns once the node's API server has been started (it is not started while booting).
    public func waitUntilListening(timeout: Duration = .seconds(10)) async throws {
        let deadline = ContinuousClock.now + timeout
        while server == nil {
            guard ContinuousClock.now < deadline else { throw RPCError(code: .deadlineExceeded, message: "\(spec.name) did not start its API") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    // MARK: Operations the handlers call

    /// Records the call with the caller's roles (refused calls too, so tests can see them), then
    /// applies Talos' role rules. Every handler goes through here.
    func authorize(_ access: Access, _ method: String, _ context: ServerContext) throws {
        let roles = Access.roles(context)
        calls.append((method, roles))
        try Access.check(access, roles: roles, maintenance: config == nil || tls.mode == .maintenance)
        if Self.mutating.contains(method) { directory.record.mutation(spec.name, method) }
    }

    /// Calls that change the machine or etcd (ApplyConfiguration is recorded by its handler: a dry run changes nothing).
    static let mutating: Set<String> = ["Bootstrap", "Reset", "Reboot", "Shutdown", "Upgrade", "EtcdRecover", "EtcdLeaveCluster",
                                        "EtcdForfeitLeadership", "EtcdRemoveMemberByID", "EtcdAlarmDisarm", "ImageService/Pull",
                                        "LifecycleService/Upgrade"]

    /// ApplyConfiguration as Talos' server does it (reference/day2.md 2.2): AUTO resolves to
    /// NO_REBOOT when `CanApplyImmediate` allows, else REBOOT; NO_REBOOT of a change that needs a
    /// reboot is refused with the blocking fields; STAGED only writes the disk; REBOOT writes it and
    /// reboots at once, with no drain and no etcd check. A dry run changes nothing and answers with
    /// the mode it would use and a text diff against the active config.
    func apply(_ request: Machine_ApplyConfigurationRequest) async throws -> (mode: Machine_ApplyConfigurationRequest.Mode, details: String) {
        if spec.faults.contains(.refusesApply) {
            throw RPCError(code: .invalidArgument, message: "simulated fault: this node refuses configuration")
        }
        let text = String(decoding: request.data, as: UTF8.self)
        let parsed: AppliedConfig
        do { parsed = try AppliedConfig.parse(text, talosVersion: talosVersion) } catch {
            throw RPCError(code: .invalidArgument, message: error.description)
        }
        if stage == .maintenance {
            // In maintenance every mode but STAGED applies at once, without a reboot: REBOOT and AUTO
            // both answer NO_REBOOT (v1alpha1_server.go ApplyConfiguration). The boot sequence then
            // installs, and reboots from the installer, on its own.
            let mode: Machine_ApplyConfigurationRequest.Mode = request.mode == .staged ? .staged : .noReboot
            if request.dryRun { return (mode, Self.dryRunDetails(mode, from: nil, to: parsed)) }
            config = parsed
            staged = nil
            let mark = epoch
            if installed {
                Task { await self.enterRunningAfterApply(parsed, mark) }
            } else {
                Task { await self.install(mark) }
            }
            return (mode, Self.details(mode))
        }
        guard [.running, .booting].contains(stage), servicesUp, let active = config else {
            throw RPCError(code: .failedPrecondition, message: "machine is \(stage.rawValue), cannot apply now")
        }
        guard promised == nil else { throw RPCError(code: .failedPrecondition, message: "node is rebooting") }
        let blocking = LiveApplyRule.blockingFields(from: active.main, to: parsed.main)
        // CanApplyImmediate's refusal (v1alpha1_runtime.go): the text, then the diff.
        let immediateRefusal = "this config change can't be applied in immediate mode\ndiff:\n" + (TextDiff.unified(active.canonical, parsed.canonical) ?? "")
        let mode: Machine_ApplyConfigurationRequest.Mode
        var refusal = ""
        switch request.mode {
        case .auto:
            mode = blocking.isEmpty ? .noReboot : .reboot
            if !blocking.isEmpty { refusal = ": " + immediateRefusal }
        case .noReboot:
            guard blocking.isEmpty else { throw RPCError(code: .invalidArgument, message: immediateRefusal) }
            mode = .noReboot
        case .staged, .reboot: mode = request.mode
        default: throw RPCError(code: .unimplemented, message: "the lab does not simulate apply mode \(request.mode)")
        }
        if request.dryRun { return (mode, Self.dryRunDetails(mode, from: active, to: parsed)) }
        switch mode {
        case .noReboot:
            config = parsed
            staged = nil
            armWake(parsed)
            restartChanged(from: active, to: parsed)
        case .staged:
            staged = parsed
        default:
            staged = parsed
            promiseReboot()
            Task { await self.reboot() }
        }
        return (mode, Self.details(mode) + refusal)
    }

    /// ApplyConfiguration's `mode_details` for the mode it resolved to (v1alpha1_server.go).
    static func details(_ mode: Machine_ApplyConfigurationRequest.Mode) -> String {
        switch mode {
        case .noReboot: return "Applied configuration without a reboot"
        case .staged: return "Staged configuration to be applied after the next reboot"
        default: return "Applied configuration with a reboot"
        }
    }

    /// Talos' dry-run text: `Dry run summary:`, the mode's details `(skipped in dry-run).`, then
    /// `Config diff:` and the diff of the YAML documents (comments gone) against the active config,
    /// or `No changes.` (v1alpha1_server.go ApplyConfiguration and generateDiff). Like Talos', it
    /// holds secrets in clear.
    static func dryRunDetails(_ mode: Machine_ApplyConfigurationRequest.Mode, from old: AppliedConfig?, to new: AppliedConfig) -> String {
        let diff = TextDiff.unified(old?.canonical ?? "", new.canonical) ?? "No changes."
        return "Dry run summary:\n\(details(mode)) (skipped in dry-run).\nConfig diff:\n\n\(diff)"
    }

    /// An installed node configured in maintenance leaves it: its boot sequence goes on, `booting`.
    private func enterRunningAfterApply(_ config: AppliedConfig, _ mark: Int) async {
        guard await pause(0.5, mark) else { return }
        stage = .booting
        await enterRunning(config, mark)
    }

    private func install(_ mark: Int) async {
        stage = .installing
        let seconds = SimulatedTiming.install * (spec.faults.contains(.slowInstall) ? 100 : 1)
        guard await pause(seconds, mark) else { return }
        // The installer takes an empty disk or an empty GPT; anything else only when told to wipe
        // (talos v1.13.9 cmd/installer/pkg/install/install.go diskOperations). Refused, the node
        // comes back to maintenance without its config: it was never written to a disk.
        if let target = installTarget(config), let disk = spec.disks.first(where: { $0.path == target }), !wipedDisks.contains(target),
           !(disk.partitions.isEmpty && ["", "gpt"].contains(disk.table)) {
            guard config?.installWipe == true else {
                directory.record.note(spec.name, "install-failed", detail: "disk \(target) is not empty, skipping install, detected \"\(disk.table)\"")
                config = nil
                await reboot()
                return
            }
            wipedDisks.insert(target)
        }
        installed = true
        await reboot()
    }

    /// The disk the installer writes: `install.disk`, else the first disk the selector's type and
    /// model glob match (talos v1.13.9 `v1alpha1_provider.go` InstallDiskSelector), else the first
    /// one that is not USB.
    func installTarget(_ config: AppliedConfig?) -> String? {
        if let path = config?.installDisk { return path }
        let model = config?.installDiskModel
        let fixed = spec.disks.filter { disk in disk.transport != "usb" && (model.map { fnmatch($0, disk.model, 0) == 0 } ?? true) }
        switch config?.installDiskType {
        case "nvme": return fixed.first { $0.transport == "nvme" }?.path
        case "ssd": return fixed.first { $0.transport != "nvme" && !$0.rotational }?.path
        case "hdd": return fixed.first { $0.rotational }?.path
        default: return fixed.first?.path
        }
    }

    /// The disks as blkid sees them (COSI DiscoveredVolumes): Talos' own partitions where it is
    /// installed, what was there before elsewhere, nothing on a disk the installer wiped.
    func discoveredVolumes() -> [DiscoveredVolume] {
        var volumes: [DiscoveredVolume] = []
        let talosDisk = installed ? installTarget(config) : nil
        for disk in spec.disks {
            let wiped = wipedDisks.contains(disk.path)
            let partitions = disk.path == talosDisk ? SimulatedPartition.talos : (wiped ? [] : disk.partitions)
            volumes.append(DiscoveredVolume(devPath: disk.path, type: "disk", name: disk.path == talosDisk ? "gpt" : (wiped ? "" : disk.table)))
            for (index, partition) in partitions.enumerated() {
                let path = disk.path + (disk.path.last?.isNumber == true ? "p" : "") + "\(index + 1)"
                volumes.append(DiscoveredVolume(devPath: path, type: "partition", name: partition.filesystem, parentDevPath: disk.path,
                                                partitionLabel: partition.label))
            }
        }
        return volumes
    }

    /// Bootstrap as v1.13.9 takes it: in any stage once the CRI is up (a new control plane is
    /// `booting`, etcd waiting), refused while etcd's data directory is not empty; etcd then starts
    /// and the boot sequence ends.
    func bootstrap(_ request: Machine_BootstrapRequest = .init()) async throws {
        guard servicesUp, let config else { throw RPCError(code: .failedPrecondition, message: "bootstrap is not available yet") }
        guard config.controlPlane else { throw RPCError(code: .unimplemented, message: "bootstrap is only available on control plane nodes") }
        _ = try await etcd.bootstrap(node: spec.name, hostname: hostname, address: address ?? spec.address,
                                     recovering: request.recoverEtcd, skipHashCheck: request.recoverSkipHashCheck)
        await directory.commit()
        await etcdStarted(epoch)
    }

    /// EtcdRecover: refused until the configured boot has started its services (Talos answers so
    /// until `/var/lib` is mounted), then the snapshot is kept for Bootstrap with `recover_etcd`.
    func recoverEtcd(_ snapshot: Data) async throws {
        try requireControlPlane("EtcdRecover")
        guard servicesUp, config != nil else { throw RPCError(code: .failedPrecondition, message: "etcd service is not ready for recovery yet") }
        await etcd.stageRecovery(node: spec.name, snapshot: snapshot)
        await directory.commit()
    }

    func reset(_ request: Machine_ResetRequest) async throws -> String {
        let labels = request.systemPartitionsToWipe.filter(\.wipe).map(\.label)
        if request.mode == .userDisks, !labels.isEmpty {
            throw RPCError(code: .invalidArgument, message: "system partitions can't be wiped in USER_DISKS mode")
        }
        if request.mode == .systemDisk, !request.userDisksToWipe.isEmpty {
            throw RPCError(code: .invalidArgument, message: "user disks can't be wiped in SYSTEM_DISK mode")
        }
        for label in labels where !["STATE", "EPHEMERAL", "META"].contains(label) {
            throw RPCError(code: .invalidArgument, message: "volume \(label) is not located")
        }
        actors += 1
        let actor = "reset-\(spec.name)-\(actors)"
        epoch += 1
        let mark = epoch
        // A graceful reset of a control plane leaves etcd itself, after draining and stopping every
        // pod; a leave etcd refuses fails the sequence there, unwiped (talos v1.13.9
        // v1alpha1_sequencer.go Reset: `leave` is not wrapped in an error handler).
        let hasEtcdData = await etcd.hasData(spec.name)
        let leaves = request.graceful && isControlPlane && hasEtcdData
        if leaves, let refusal = await etcd.leaveRefusal(node: spec.name) {
            // machined treats the failed sequence as fatal and reboots 10 s later with its disk as it
            // was (main.go handle): the lab records that end before answering, as for any reset.
            nextBootID = UUID().uuidString.lowercased()
            promised = TwinSnapshot.NodeState(name: spec.name, powered: true, config: persistent?.text, bootID: nextBootID)
            stage = .resetting
            await directory.commit()
            Task { await self.runFailedReset(refusal, actor: actor, mark) }
            return actor
        }
        // What the reset will leave is certain from here on: the lab records it before answering, so
        // a lab saved mid-reset comes back reset (in maintenance after a reboot), never half-way.
        if leaves { try? await etcd.leave(node: spec.name) }
        let wipesState = labels.isEmpty || labels.contains("STATE")
        if labels.isEmpty || labels.contains("EPHEMERAL") { await etcd.wipe(node: spec.name) }
        nextBootID = UUID().uuidString.lowercased()
        promised = TwinSnapshot.NodeState(name: spec.name, powered: request.reboot, config: wipesState ? nil : persistent?.text, bootID: nextBootID)
        stage = .resetting
        await directory.commit()
        Task { await self.runReset(request, labels: labels, actor: actor, mark) }
        return actor
    }

    /// The phases a reset runs up to its leave, as Talos names them (v1alpha1_sequencer.go Reset).
    private func resetPhasesBeforeLeave(_ graceful: Bool, actor: String) {
        publishSequence("reset", .start, actor: actor)
        if graceful { publishPhase("drain", task: "cordonAndDrainNode", actor: actor) }
        publishPhase("cleanup", task: graceful ? "removeAllPods" : "stopAllPods", actor: actor)
        publishPhase("dbus", task: "stopDBus", actor: actor)
    }

    private func runReset(_ request: Machine_ResetRequest, labels: [String], actor: String, _ mark: Int) async {
        resetPhasesBeforeLeave(request.graceful, actor: actor)
        if request.graceful, isControlPlane { publishPhase("leave", task: "leaveEtcd", actor: actor) }
        for (phase, task) in [("preReset", "sendResetSignal"), ("stopServices", "stopServicesForUpgrade"), ("stopEverything", "stopAllServices"),
                              ("reset", "resetSystemDisk")] {
            publishPhase(phase, task: task, actor: actor)
        }
        // Never under 300 ms of real time: a reset takes Talos seconds, and a client that follows
        // the sequence subscribes to Events after the Reset answer, before the node goes down.
        guard await pause(SimulatedTiming.resetWipe, mark, atLeast: .milliseconds(300)) else { return }
        if labels.isEmpty {
            // The whole system disk: the OS is gone too.
            config = nil
            staged = nil
            installed = false
        } else if labels.contains("STATE") {
            config = nil
            staged = nil
        }
        // The last task restarts the machine; the controller then reports the reboot as the
        // sequence's error, after the RestartEvent machined acts on (v1alpha1_controller.go Run).
        publish(Machine_RestartEvent.with { $0.cmd = request.reboot ? 0x0123_4567 : 0x4321_FEDC }, actor: actor)
        publishSequence("reset", .stop, actor: actor)
        publishSequence("reset", .noop, actor: actor, error: "sequence failed: error running phase 14 in reset sequence: task 1/1: failed, unix.Reboot(\(request.reboot ? "1234567" : "4321fedc"))")
        if request.reboot { await reboot() } else {
            await powerOff(cut: false)
            promised = nil
        }
    }

    /// A graceful reset whose leave etcd refuses: pods and kubelet stopped, the leave retried while
    /// etcd is unhealthy (5 minutes), the sequence failed, then machined's fatal-error reboot 10 s
    /// later, nothing wiped (talos v1.13.9 `internal/pkg/etcd/etcd.go` LeaveCluster, main.go handle).
    private func runFailedReset(_ refusal: SimulatedEtcd.LeaveRefusal, actor: String, _ mark: Int) async {
        resetPhasesBeforeLeave(true, actor: actor)
        servicesUp = false
        directory.record.note(spec.name, "reset-failed", detail: "kubelet and every pod stopped; " + refusal.text)
        publish(Machine_PhaseEvent.with { $0.phase = "leave"; $0.action = .start }, actor: actor)
        publish(Machine_TaskEvent.with { $0.task = "leaveEtcd"; $0.action = .start }, actor: actor)
        if refusal.retried { guard await pause(300, mark) else { return } }
        publish(Machine_TaskEvent.with { $0.task = "leaveEtcd"; $0.action = .stop }, actor: actor)
        publish(Machine_PhaseEvent.with { $0.phase = "leave"; $0.action = .stop }, actor: actor)
        publishSequence("reset", .stop, actor: actor)
        publishSequence("reset", .noop, actor: actor, error: "sequence failed: error running phase 4 in reset sequence: task 1/1: failed, " + refusal.text)
        stage = .rebooting
        // machined's countdown: never under a second of real time, so a client that follows the
        // sequence has its failure before the node goes down, as the 10 s give it on Talos.
        guard await pause(10, mark, atLeast: .seconds(1)) else { return }
        await reboot()
    }

    /// An EthernetConfig arming magic wake for the NIC's kernel name runs; absent, the NIC is left as
    /// it is (talos v1.13.9 `types/network/ethernet.go`: "not changed").
    private func armWake(_ config: AppliedConfig) {
        if config.network.armsMagicWake { wakeArmed = true }
    }

    func leaveEtcd() async throws {
        try requireControlPlane("EtcdLeaveCluster")
        try await etcd.leave(node: spec.name)
    }

    func requireControlPlane(_ method: String) throws {
        guard isControlPlane else { throw RPCError(code: .unimplemented, message: "\(method) is only available on control plane nodes") }
    }

    /// A fresh admin kubeconfig from the cluster CA, gzip'd tar as Talos sends it.
    func kubeconfigArchive() throws -> Data {
        try requireControlPlane("Kubeconfig")
        guard let config, let ca = config.kubernetesCA else { throw RPCError(code: .failedPrecondition, message: "kubernetes CA is not configured") }
        let kubeconfig = try SimulatedKubeconfig.make(clusterName: config.clusterName, endpoint: config.endpoint, ca: ca)
        return try KubeconfigArchive.make(kubeconfig)
    }
}

extension SimulatedTalosNode {
    /// Services as ServiceList shows them for the current stage.
    func services() async -> [Machine_ServiceInfo] {
        func service(_ id: String, _ state: String, healthy: Bool = true) -> Machine_ServiceInfo {
            .with {
                $0.id = id
                $0.state = state
                $0.health.healthy = healthy
                $0.health.unknown = false
            }
        }
        guard servicesUp else { return [service("apid", "Running"), service("machined", "Running")] }
        var list = [service("apid", "Running"), service("containerd", "Running"), service("cri", "Running"),
                    service("kubelet", "Running"), service("machined", "Running"), service("udevd", "Running")]
        if isControlPlane {
            let etcdService = await etcd.service(spec.name)
            var info = service("etcd", etcdService.state, healthy: etcdService.healthy && !spec.faults.contains(.etcdUnhealthy))
            // Not yet health-checked while its pre-start runs (service_runner.go).
            info.health.unknown = etcdService.state == "Preparing"
            list.append(info)
            list.append(service("trustd", "Running"))
        }
        return list.sorted { $0.id < $1.id }
    }

    /// The reboot is certain once acknowledged: the state it ends in (a new boot ID, the disk's
    /// config active) is saved before the answer, so a lab that dies with the caller comes back rebooted.
    func requestReboot() async throws -> String {
        guard stage == .running || stage == .maintenance || servicesUp else { throw RPCError(code: .failedPrecondition, message: "machine is \(stage.rawValue)") }
        let actor = "reboot-\(spec.name)-\(bootID.prefix(8))"
        promiseReboot()
        await directory.commit()
        Task { await self.reboot() }
        return actor
    }

    private func promiseReboot() {
        nextBootID = UUID().uuidString.lowercased()
        promised = TwinSnapshot.NodeState(name: spec.name, powered: true, config: persistent?.text, bootID: nextBootID)
    }

    func requestShutdown() async -> String {
        Task { await self.powerOff(cut: false) }
        return "shutdown-\(spec.name)-\(bootID.prefix(8))"
    }
}
