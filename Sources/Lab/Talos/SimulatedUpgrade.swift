import Foundation
import GRPCCore
import TalosKit

/// How a simulated node upgrades, as Talos 1.13 does (reference/day2.md 2.3): ImageService/Pull
/// into a containerd instance; LifecycleService/Upgrade installs the pulled installer into the
/// other boot slot and reboots nothing, checks no etcd; the legacy MachineService/Upgrade checks
/// etcd on a control plane (refusing 2 members or an unstarted one), then installs and reboots by
/// itself. The next boot runs the other slot, or falls back to the old one (`upgrade-fails-boot`).
extension SimulatedTalosNode {
    /// `factory.talos.dev/nocloud-installer/<schematic>:<version>` or `ghcr.io/siderolabs/installer:<version>`.
    static func installer(_ image: String) -> (version: String, schematic: String?)? {
        guard let colon = image.lastIndex(of: ":"), TalosReleases.parts(String(image[image.index(after: colon)...])) != nil else { return nil }
        let version = String(image[image.index(after: colon)...])
        let path = image[..<colon].split(separator: "/")
        let schematic = path.count >= 3 && path[path.count - 2].hasSuffix("-installer") ? String(path.last!) : nil
        return (version, schematic)
    }

    /// What the next boot runs with `slot` installed: the slot, unless its image never gets to
    /// running (`upgrade-fails-boot`) and Talos' A/B fallback boots the old one again.
    func bootsInto(_ slot: (version: String, schematic: String?)) -> (version: String, schematic: String?) {
        spec.faults.contains(.upgradeFailsBoot) ? (talosVersion, schematic) : slot
    }

    static func key(_ containerd: Common_ContainerdInstance, _ image: String) -> String { "\(containerd.driver)/\(containerd.namespace)/\(image)" }

    /// Pulls an image; progress goes to `progress` as a registry would report layers.
    func pull(_ image: String, into containerd: Common_ContainerdInstance, progress: @Sendable (Int) async throws -> Void) async throws {
        directory.record.call(spec.name, "ImageService/Pull", detail: image)
        // The CRI serves pulls once the configured boot started it (booting or running).
        guard servicesUp else { throw RPCError(code: .failedPrecondition, message: "machine is \(stage.rawValue)") }
        guard !spec.faults.contains(.pullFails) else {
            throw RPCError(code: .unavailable, message: "failed to pull image \"\(image)\": dial tcp: lookup factory.talos.dev: i/o timeout (simulated fault)")
        }
        guard Self.installer(image) != nil else { throw RPCError(code: .notFound, message: "failed to resolve reference \"\(image)\": not found") }
        try await fetch(image, into: Self.key(containerd, image), progress: progress)
    }

    /// The registry side of a pull: skipped when that containerd store has it (`WithSkipIfAlreadyPulled`),
    /// else Image Factory's build on the image's first request, then three layers.
    func fetch(_ image: String, into key: String, progress: @Sendable (Int) async throws -> Void = { _ in }) async throws {
        guard !pulled.contains(key) else { return }
        let mark = epoch
        if await directory.firstFactoryRequest(image) {
            directory.record.note(spec.name, "factory-build", detail: image)
            guard await pause(spec.installerBuildSeconds, mark) else { throw RPCError(code: .unavailable, message: "the node rebooted during the pull") }
        }
        for layer in 1...3 {
            guard await pause(SimulatedTiming.pull / 3, mark) else { throw RPCError(code: .unavailable, message: "the node rebooted during the pull") }
            try await progress(layer)
        }
        pulled.insert(key)
    }

    /// MachineService/ImagePull (1.12): into the CRI containerd, in the namespace asked for
    /// (talos v1.12.11 `v1alpha1_images.go`); no progress, NotFound for an unknown image.
    func imagePull(_ image: String, namespace: Common_ContainerdNamespace) async throws {
        directory.record.call(spec.name, "MachineService/ImagePull", detail: image)
        guard namespace != .nsUnknown else { throw RPCError(code: .invalidArgument, message: "invalid namespace \(namespace)") }
        guard servicesUp else { throw RPCError(code: .unavailable, message: "error connecting to containerd: machine is \(stage.rawValue)") }
        guard !spec.faults.contains(.pullFails) else {
            throw RPCError(code: .unknown, message: "failed to pull image \"\(image)\": dial tcp: lookup factory.talos.dev: i/o timeout (simulated fault)")
        }
        guard Self.installer(image) != nil else { throw RPCError(code: .notFound, message: "error pulling image: \(image): not found") }
        try await fetch(image, into: "cri/\(namespace)/\(image)")
    }

    /// Installs a pulled installer into the other slot; the returned lines are the installer's log
    /// and the exit code is non-zero when it refuses (not pulled there, an incompatible host).
    func installUpgrade(_ image: String, from containerd: Common_ContainerdInstance) async throws -> (messages: [String], exitCode: Int32) {
        directory.record.call(spec.name, "LifecycleService/Upgrade", detail: image)
        // No stage or etcd check on the server (talos v1.13.9 internal/app/lifecycle/lifecycle.go).
        guard servicesUp else { throw RPCError(code: .failedPrecondition, message: "machine is \(stage.rawValue)") }
        guard !installing else { throw RPCError(code: .failedPrecondition, message: "another installation/upgrade is already in progress") }
        guard let target = Self.installer(image) else { return (["invalid installer image reference \(image)"], 1) }
        guard pulled.contains(Self.key(containerd, image)) else {
            return (["error: image \(image) not found in \(containerd.driver)/\(containerd.namespace): pull it into the same containerd instance first"], 1)
        }
        if let host = TalosReleases.parts(talosVersion), let window = TalosReleases.minor(of: target.version)?.upgradesFrom,
           host.minor < window.low || host.minor >= window.below {
            return (["host version \(talosVersion) is not supported by the \(target.version) installer"], 1)
        }
        installing = true
        defer { installing = false }
        let mark = epoch
        guard await pause(SimulatedTiming.upgradeInstall, mark) else { throw RPCError(code: .unavailable, message: "the node rebooted during the install") }
        otherSlot = target
        await directory.commit()
        return (["installing \(target.version) to the inactive boot slot", "upgrade of the inactive slot complete; reboot to run it"], 0)
    }

    /// The legacy upgrade (talos v1.12.11 `v1alpha1_server.go` Upgrade): the installer pulled into
    /// the system containerd and checked before anything else, then the etcd checks on a control
    /// plane, all as plain errors (gRPC Unknown); only then the answer, after which the install and
    /// reboot are certain.
    func legacyUpgrade(_ request: Machine_UpgradeRequest) async throws -> String {
        directory.record.call(spec.name, "MachineService/Upgrade", detail: request.image)
        guard stage == .running else { throw RPCError(code: .failedPrecondition, message: "machine is \(stage.rawValue)") }
        guard let target = Self.installer(request.image) else {
            throw RPCError(code: .unknown, message: "error validating installer image \"\(request.image)\": invalid reference")
        }
        guard !spec.faults.contains(.pullFails) else {
            throw RPCError(code: .unknown, message: "error validating installer image \"\(request.image)\": failed to pull image: dial tcp: lookup factory.talos.dev: i/o timeout (simulated fault)")
        }
        try await fetch(request.image, into: "system/\(request.image)")
        if isControlPlane, !request.force, !request.preserve {
            // ValidateForUpgrade, under the etcd upgrade mutex (internal/pkg/etcd/etcd.go).
            let members = (try? await etcd.members(via: spec.name)) ?? []
            if members.count == 2 {
                throw RPCError(code: .unknown, message: "error validating etcd for upgrade: etcd member count(2) is insufficient to maintain quorum if upgrade commences")
            }
            for member in members where !(await etcd.isRunning(member.node)) {
                throw RPCError(code: .unknown, message: "error validating etcd for upgrade: etcd member \(String(format: "%016x", member.id)) is not started, all members must be running to perform an upgrade")
            }
        }
        installing = true
        otherSlot = target
        nextBootID = UUID().uuidString.lowercased()
        var after = snapshot()
        (after.talosVersion, after.schematic) = bootsInto(target)
        after.slotVersion = nil
        after.slotSchematic = nil
        after.bootID = nextBootID
        after.powered = true
        promised = after
        await directory.commit()
        let mark = epoch
        stage = .upgrading
        Task {
            guard await self.pause(SimulatedTiming.upgradeInstall, mark) else { return }
            await self.finishLegacyUpgrade()
        }
        return "Upgrade request received"
    }

    private func finishLegacyUpgrade() async {
        installing = false
        await reboot()
    }
}

/// `machine.ImageService` of a simulated node (Talos 1.13+).
struct ImageHandler: Machine_ImageService.SimpleServiceProtocol {
    let node: SimulatedTalosNode

    func pull(request: Machine_ImageServicePullRequest, response: RPCWriter<Machine_ImageServicePullResponse>, context: ServerContext) async throws {
        try await node.authorize(.operate, "ImageService/Pull", context)
        try await node.pull(request.imageRef, into: request.containerd) { layer in
            try await response.write(.with {
                $0.pullProgress = .with { progress in
                    progress.layerID = "sha256:layer\(layer)"
                    progress.progress.status = .downloadComplete
                    progress.progress.offset = Int64(layer) << 20
                    progress.progress.total = 3 << 20
                }
            })
        }
        try await response.write(.with { $0.name = request.imageRef })
    }
}

/// `machine.LifecycleService` of a simulated node (Talos 1.13+).
struct LifecycleHandler: Machine_LifecycleService.SimpleServiceProtocol {
    let node: SimulatedTalosNode

    func upgrade(request: Machine_LifecycleServiceUpgradeRequest, response: RPCWriter<Machine_LifecycleServiceUpgradeResponse>, context: ServerContext) async throws {
        try await node.authorize(.admin, "LifecycleService/Upgrade", context)
        let (messages, code) = try await node.installUpgrade(request.source.imageName, from: request.containerd)
        for message in messages { try await response.write(.with { $0.progress.message = message }) }
        try await response.write(.with { $0.progress.exitCode = code })
    }
}
