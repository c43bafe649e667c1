import Foundation

/// The Kubernetes rules an upgrade checks before it touches anything (reference/day2.md 2.4, 2.5):
/// one minor at a time, inside every node's Talos window, kubelets at most three minors behind the
/// API server, and no API version the target removes still in use.
public enum KubernetesReleases {
    /// Minors a Kubernetes upgrade may go to (go-kubernetes' upgrade path covers 1.19 to 1.37).
    public static let minors = 19...37

    /// API group versions each minor stops serving (kubernetes.io deprecation guide).
    public static let removed: [Int: [(groupVersion: String, resources: [String])]] = [
        25: [("batch/v1beta1", ["cronjobs"]), ("policy/v1beta1", ["poddisruptionbudgets", "podsecuritypolicies"]),
             ("discovery.k8s.io/v1beta1", ["endpointslices"]), ("events.k8s.io/v1beta1", ["events"]),
             ("autoscaling/v2beta1", ["horizontalpodautoscalers"]), ("node.k8s.io/v1beta1", ["runtimeclasses"])],
        26: [("flowcontrol.apiserver.k8s.io/v1beta1", ["flowschemas", "prioritylevelconfigurations"]),
             ("autoscaling/v2beta2", ["horizontalpodautoscalers"])],
        27: [("storage.k8s.io/v1beta1", ["csistoragecapacities"])],
        29: [("flowcontrol.apiserver.k8s.io/v1beta2", ["flowschemas", "prioritylevelconfigurations"])],
        32: [("flowcontrol.apiserver.k8s.io/v1beta3", ["flowschemas", "prioritylevelconfigurations"])],
    ]

    public struct Version: Sendable, Comparable, CustomStringConvertible {
        public var minor: Int
        public var patch: Int
        public var description: String { "v1.\(minor).\(patch)" }

        public init?(_ text: String) {
            let trimmed = text.hasPrefix("v") ? text.dropFirst() : Substring(text)
            let numbers = trimmed.split(separator: ".").map { Int($0) }
            guard numbers.count == 3, numbers[0] == 1, let minor = numbers[1], let patch = numbers[2] else { return nil }
            self.minor = minor
            self.patch = patch
        }

        public static func < (a: Version, b: Version) -> Bool { (a.minor, a.patch) < (b.minor, b.patch) }
    }

    public enum PathError: Error, CustomStringConvertible, Equatable {
        case notAVersion(String)
        case unknownMinor(String)
        case skip(from: String, to: String, through: [String])
        case downgrade(from: String, to: String)

        public var description: String {
            switch self {
            case let .notAVersion(text): return "`\(text)` is not a Kubernetes version such as v1.35.0"
            case let .unknownMinor(text): return "Kubernetes \(text) is outside what this build upgrades (1.\(minors.lowerBound) to 1.\(minors.upperBound))"
            case let .skip(from, to, through):
                return "Kubernetes goes one minor at a time: \(from) -> \(to) skips \(through.joined(separator: ", ")); set kubernetesVersion to the latest \(through[0]) patch, upgrade, then go on (path: \(([from] + through.map { "\($0).x" } + [to]).joined(separator: " -> ")))"
            case let .downgrade(from, to): return "Kubernetes \(to) is older than the running \(from); Kubernetes is never downgraded"
            }
        }
    }

    /// Checks a hop from what runs to what the inventory wants: nothing, a patch, or the next minor.
    public static func check(from current: String, to target: String) throws(PathError) {
        guard let now = Version(current) else { throw .notAVersion(current) }
        guard let want = Version(target) else { throw .notAVersion(target) }
        guard minors.contains(want.minor) else { throw .unknownMinor(target) }
        if want < now { throw .downgrade(from: current, to: target) }
        if want.minor > now.minor + 1 {
            throw .skip(from: current, to: target, through: ((now.minor + 1)..<want.minor).map { "v1.\($0)" })
        }
    }

    /// API versions removed on the way from `current` to `target` (minors above current, up to target).
    public static func removedBetween(_ current: String, _ target: String) -> [(groupVersion: String, resources: [String])] {
        guard let now = Version(current), let want = Version(target), want.minor > now.minor else { return [] }
        return ((now.minor + 1)...want.minor).flatMap { removed[$0] ?? [] }
    }
}
