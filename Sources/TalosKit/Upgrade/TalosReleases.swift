import Foundation

/// The Talos releases this build knows, with what each minor accepts: the Kubernetes versions it
/// runs and the host versions its installer upgrades from (reference/day2.md 2.3 to 2.5). A target
/// outside the table is refused: an unknown release is never guessed at.
public enum TalosReleases {
    public struct Minor: Sendable {
        /// `v1.13`.
        public var minor: String
        /// The latest patch: every path goes through it.
        public var latest: String
        /// Patches known to exist (a target must be one of them).
        public var patches: [String]
        /// Kubernetes minors this Talos minor runs, inclusive: `(1.31, 1.36)`.
        public var kubernetes: (low: Int, high: Int)
        /// The lowest host minor its installer upgrades from, and the first one it does not accept.
        public var upgradesFrom: (low: Int, below: Int)
        /// Whether nodes on it serve ImageService/Pull and LifecycleService/Upgrade (1.13+).
        public var lifecycleAPI: Bool
    }

    public static let minors: [Minor] = [
        Minor(minor: "v1.12", latest: "v1.12.11", patches: (0...11).map { "v1.12.\($0)" }, kubernetes: (30, 35), upgradesFrom: (10, 14), lifecycleAPI: false),
        Minor(minor: "v1.13", latest: "v1.13.9", patches: (0...9).map { "v1.13.\($0)" }, kubernetes: (31, 36), upgradesFrom: (11, 15), lifecycleAPI: true),
    ]

    /// `(1, 13, 9)` for `v1.13.9`; nil when it is not a release version.
    public static func parts(_ version: String) -> (major: Int, minor: Int, patch: Int)? {
        guard version.hasPrefix("v") else { return nil }
        let numbers = version.dropFirst().split(separator: ".").map { Int($0) }
        guard numbers.count == 3, let a = numbers[0], let b = numbers[1], let c = numbers[2] else { return nil }
        return (a, b, c)
    }

    public static func minor(of version: String) -> Minor? {
        guard let p = parts(version) else { return nil }
        return minors.first { $0.minor == "v\(p.major).\(p.minor)" }
    }

    static func precedes(_ a: String, _ b: String) -> Bool {
        guard let x = parts(a), let y = parts(b) else { return false }
        return [x.major, x.minor, x.patch].lexicographicallyPrecedes([y.major, y.minor, y.patch])
    }

    public enum PathError: Error, CustomStringConvertible, Equatable {
        case unknown(String)
        case downgrade(from: String, to: String)
        case kubernetes(talos: String, kubernetes: String, window: String)
        case installer(from: String, to: String)

        public var description: String {
            switch self {
            case let .unknown(version):
                return "Talos \(version) is not a release this build knows (\(minors.map { "\($0.minor).0-\($0.latest)" }.joined(separator: ", "))); pin a known version"
            case let .downgrade(from, to):
                return "\(to) is older than the running \(from): a downgrade; pass --allow-downgrade if you mean it"
            case let .kubernetes(talos, kubernetes, window):
                return "Talos \(talos) does not run Kubernetes \(kubernetes) (it runs \(window)); upgrade Kubernetes first, or stop at an older Talos"
            case let .installer(from, to):
                return "the \(to) installer does not upgrade a host on \(from); go through the minors in between"
            }
        }
    }

    /// The versions a node goes through from `current` to `target`: to another minor, first the
    /// latest patch of its own minor (when this build knows it), then the latest patch of every
    /// minor in between, then the target. That is the upgrade guide's path ("always upgrade to the
    /// latest patch release of all intermediate minor releases": 1.0 -> 1.0.6 -> 1.1.2 -> 1.2.4,
    /// siderolabs/docs talos/v1.13 lifecycle-management/upgrading-talos.mdx). Each step is checked
    /// against the Kubernetes `kubernetes` runs.
    public static func path(from current: String, to target: String, kubernetes: String, allowDowngrade: Bool = false) throws(PathError) -> [String] {
        guard let targetMinor = minor(of: target), targetMinor.patches.contains(target) else { throw .unknown(target) }
        guard current != target else { return [] }
        guard let now = parts(current), let want = parts(target) else { throw .unknown(current) }
        if precedes(target, current) {
            guard allowDowngrade else { throw .downgrade(from: current, to: target) }
            return [target]
        }
        var steps: [String] = []
        if want.minor > now.minor, let own = minor(of: current), own.latest != current, precedes(current, own.latest) {
            steps.append(own.latest)
        }
        var minorNumber = now.minor + 1
        while minorNumber < want.minor {
            guard let between = minors.first(where: { $0.minor == "v\(now.major).\(minorNumber)" }) else { throw .unknown("v\(now.major).\(minorNumber).x") }
            steps.append(between.latest)
            minorNumber += 1
        }
        steps.append(target)
        var host = current
        for step in steps {
            if let window = minor(of: step)?.upgradesFrom, let from = parts(host), from.minor < window.low || from.minor >= window.below {
                throw .installer(from: host, to: step)
            }
            host = step
        }
        if let k8s = parts(kubernetes) {
            for step in steps {
                guard let window = minor(of: step)?.kubernetes else { continue }
                if k8s.minor < window.low || k8s.minor > window.high {
                    throw .kubernetes(talos: step, kubernetes: kubernetes, window: "1.\(window.low) to 1.\(window.high)")
                }
            }
        }
        return steps
    }
}
