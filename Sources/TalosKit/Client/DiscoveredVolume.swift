import Foundation

/// Talos' `DiscoveredVolumes.block.talos.dev`: what blkid found on each disk and partition (the
/// partition table or filesystem in `name`: `gpt`, `xfs`, `apfs`...). Read in maintenance mode too,
/// so an install can be judged before Talos' installer refuses it. Spec fields as talos v1.13.9
/// `pkg/machinery/resources/block/discovered_volume.go` names them.
public struct DiscoveredVolume: Sendable, Equatable {
    /// `/dev/nvme0n1`, `/dev/nvme0n1p2`.
    public var devPath: String
    /// `disk` or `partition`.
    public var type: String
    /// What blkid detected: a partition table (`gpt`, `dos`) or a filesystem; empty when nothing.
    public var name: String
    /// The disk a partition is on.
    public var parentDevPath: String
    public var label: String
    public var partitionLabel: String

    public init(devPath: String, type: String, name: String, parentDevPath: String = "", label: String = "", partitionLabel: String = "") {
        self.devPath = devPath
        self.type = type
        self.name = name
        self.parentDevPath = parentDevPath
        self.label = label
        self.partitionLabel = partitionLabel
    }

    public init(yaml: String) throws {
        let spec = try ResourceSpec(yaml, kind: "DiscoveredVolume")
        self.init(devPath: spec.text("dev_path"), type: spec.text("type"), name: spec.text("name"), parentDevPath: spec.text("parent_dev_path"),
                  label: spec.text("label"), partitionLabel: spec.text("partition_label"))
    }

    /// The spec as Talos writes it (the fields this type reads).
    public var yaml: String {
        var text = "dev_path: \(devPath)\ntype: \(type)\nname: \"\(name)\"\n"
        if !parentDevPath.isEmpty { text += "parent_dev_path: \(parentDevPath)\n" }
        if !label.isEmpty { text += "label: \"\(label)\"\n" }
        if !partitionLabel.isEmpty { text += "partition_label: \"\(partitionLabel)\"\n" }
        return text
    }

    /// What Talos' installer finds on `disk`, as it judges it: nil when the disk is empty or holds
    /// an empty GPT (it installs there), else a description of what it would refuse to overwrite
    /// ("disk ... is not empty, skipping install": talos v1.13.9
    /// `cmd/installer/pkg/install/install.go` diskOperations). Nil too when Talos is installed
    /// there (a META partition): the node boots from it and the installer does not run
    /// (`v1alpha1_state.go` Installed).
    public static func contents(of disk: String, in volumes: [DiscoveredVolume]) -> String? {
        let table = volumes.first { $0.devPath == disk && $0.type == "disk" }?.name ?? ""
        let partitions = volumes.filter { $0.type == "partition" && $0.parentDevPath == disk }
        if partitions.contains(where: { $0.partitionLabel == "META" }) { return nil }
        if table.isEmpty, partitions.isEmpty { return nil }
        if table == "gpt", partitions.isEmpty { return nil }
        let described = partitions.map { part in
            let what = [part.name, part.partitionLabel.isEmpty ? part.label : part.partitionLabel].filter { !$0.isEmpty }.joined(separator: " ")
            return what.isEmpty ? part.devPath : "\(part.devPath) (\(what))"
        }
        let head = table.isEmpty ? "" : "a \(table) partition table"
        if described.isEmpty { return head }
        return (head.isEmpty ? "" : head + " with ") + "\(described.count) partition\(described.count == 1 ? "" : "s"): " + described.joined(separator: ", ")
    }
}

extension TalosClient {
    /// Every volume the node discovered (COSI `DiscoveredVolumes`, readable in maintenance mode).
    public func discoveredVolumes() async throws -> [DiscoveredVolume] {
        try await resources(namespace: "runtime", type: "DiscoveredVolumes.block.talos.dev").map { try DiscoveredVolume(yaml: $0.spec) }
    }
}
