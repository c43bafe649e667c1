import Foundation
import GRPCCore
import SwiftProtobuf
import Yams

/// The calls of a Talos upgrade: on 1.13+ ImageService/Pull then LifecycleService/Upgrade into the
/// same containerd instance (neither reboots, drains nor checks etcd: the caller does), on 1.12 the
/// legacy MachineService/Upgrade (pulls, etcd-checks, drains and reboots on the node itself).
extension TalosClient {
    /// The CRI containerd's system namespace (where etcd's and the kubelet's images live):
    /// talosctl v1.13.9's default `--namespace system` for `image pull` and `upgrade`
    /// (cmd/talosctl/cmd/talos/image.go containerdInstance, upgrade.go). It keeps the installer on
    /// the EPHEMERAL disk, not in the tmpfs of the in-memory instance (`inmem`). Pull and Upgrade
    /// must name the same one: the installer is looked up where it was pulled.
    public static let installerContainerd: Common_ContainerdInstance = .with {
        $0.driver = .cri
        $0.namespace = .nsSystem
    }

    /// Pulls `image` (the installer), reading the progress stream to its end; returns the name.
    public func pull(_ image: String) async throws -> String {
        var request = Machine_ImageServicePullRequest()
        request.containerd = Self.installerContainerd
        request.imageRef = image
        var pullOptions = options
        pullOptions.timeout = max(timeout, .seconds(600))
        return try await withClient { grpc in
            try await Machine_ImageService.Client(wrapping: grpc).pull(request, options: pullOptions) { response in
                var name = ""
                for try await message in response.messages { if case let .name(pulled)? = message.response { name = pulled } }
                return name
            }
        }
    }

    /// What the installer said, and how it ended.
    public struct InstallOutcome: Sendable {
        public var messages: [String]
        public var exitCode: Int32?
    }

    /// Installs `image` into the other boot slot (no reboot). A non-zero exit code is a failure even
    /// though the RPC ends OK: it is thrown, with the installer's last words.
    public func installUpgrade(_ image: String) async throws -> InstallOutcome {
        var request = Machine_LifecycleServiceUpgradeRequest()
        request.containerd = Self.installerContainerd
        request.source.imageName = image
        var upgradeOptions = options
        upgradeOptions.timeout = max(timeout, .seconds(900))
        let outcome = try await withClient { grpc in
            try await Machine_LifecycleService.Client(wrapping: grpc).upgrade(request, options: upgradeOptions) { response in
                var outcome = InstallOutcome(messages: [], exitCode: nil)
                for try await message in response.messages {
                    switch message.progress.response {
                    case let .message(text)?: outcome.messages.append(text)
                    case let .exitCode(code)?: outcome.exitCode = code
                    case nil: break
                    }
                }
                return outcome
            }
        }
        if let code = outcome.exitCode, code != 0 {
            throw TalosError.rejected("the installer exited \(code): \(outcome.messages.suffix(3).joined(separator: " / "))")
        }
        return outcome
    }

    /// The legacy upgrade: the node pulls the installer into its system containerd and runs it once
    /// to check it, then checks etcd (refusing 2 members or an unstarted one), and only then answers
    /// (talos v1.12.11 `v1alpha1_server.go` Upgrade, `install/pull.go`); it drains, installs and
    /// reboots by itself after. `deadline` must cover that pull: minutes for a schematic Image
    /// Factory builds on its first request. Returns the acknowledgement.
    public func legacyUpgrade(_ image: String, deadline: Duration) async throws -> String {
        var request = Machine_UpgradeRequest()
        request.image = image
        var upgradeOptions = options
        upgradeOptions.timeout = max(timeout, deadline)
        return try await machine { try Self.first(try await $0.upgrade(request, options: upgradeOptions).messages, "Upgrade").ack }
    }

    /// MachineService/ImagePull (1.12's, unary, no progress): the image into the CRI containerd's
    /// `system` namespace (NS_SYSTEM selects the namespace, not the system containerd).
    /// Not the store the legacy upgrade pulls into (that is the system containerd), but the same
    /// registry: it has Image Factory build a new schematic's installer while the node is still in
    /// service, so the upgrade's own pull, once the node is drained, is a download.
    public func imagePull(_ reference: String, deadline: Duration) async throws {
        var request = Machine_ImagePullRequest()
        request.namespace = .nsSystem
        request.reference = reference
        var pullOptions = options
        pullOptions.timeout = max(timeout, deadline)
        _ = try await machine { try await $0.imagePull(request, options: pullOptions) }
    }

    /// The running schematic: the extension Talos lists as `schematic` (COSI ExtensionStatuses);
    /// nil when the node reports none (not a factory image).
    public func schematic() async throws -> String? {
        for (_, spec) in try await resources(namespace: "runtime", type: "ExtensionStatuses.runtime.talos.dev") {
            guard let root = try? Yams.load(yaml: spec) as? [String: Any], let metadata = root["metadata"] as? [String: Any],
                  metadata["name"] as? String == "schematic" else { continue }
            return metadata["version"] as? String
        }
        return nil
    }
}
