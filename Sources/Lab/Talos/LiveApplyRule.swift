import TalosKit

/// Talos' `CanApplyImmediate`: which changes to the v1alpha1 document a running node takes without
/// a reboot (reference/day2.md 2.2). Every other document kind is not compared, so its changes are
/// live; anything else in v1alpha1 (disks, machine.type, most features, ...) needs a reboot.
enum LiveApplyRule {
    static let liveMachineFields: Set<String> = [
        "ca", "acceptedCAs", "time", "certSANs", "install", "network", "sysfs", "sysctls", "logging", "controlPlane", "kubelet",
        "kernel", "registries", "pods", "seccompProfiles", "nodeAnnotations", "nodeLabels", "nodeTaints",
    ]
    static let liveFeatures: Set<String> = ["kubernetesTalosAPIAccess", "kubePrism", "hostDNS", "imageCache", "nodeAddressSortAlgorithm"]

    /// The fields (as dotted paths) whose change needs a reboot; empty when the change applies live.
    static func blockingFields(from old: ConfigValue?, to new: ConfigValue?) -> [String] {
        var blocking: [String] = []
        for key in keys(old, new) where old?[key] != new?[key] {
            switch key {
            case "debug", "cluster": continue
            case "machine":
                for field in keys(old?["machine"], new?["machine"]) where old?["machine"]?[field] != new?["machine"]?[field] {
                    if liveMachineFields.contains(field) { continue }
                    if field == "features" {
                        let before = old?["machine"]?["features"], after = new?["machine"]?["features"]
                        for feature in keys(before, after) where before?[feature] != after?[feature] && !liveFeatures.contains(feature) {
                            blocking.append("machine.features.\(feature)")
                        }
                        continue
                    }
                    blocking.append("machine.\(field)")
                }
            default: blocking.append(key)
            }
        }
        return blocking
    }

    static func keys(_ a: ConfigValue?, _ b: ConfigValue?) -> [String] {
        var seen: [String] = []
        for value in [a, b] {
            guard case let .map(entries)? = value else { continue }
            for entry in entries where !seen.contains(entry.key) { seen.append(entry.key) }
        }
        return seen
    }
}
