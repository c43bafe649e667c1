import Foundation
import Yams

/// Talos' `MachineStatuses.runtime.talos.dev/machine`: the stage a node is in and whether it is
/// ready, read from the resource's YAML spec so we need none of Talos' resource protos.
public struct MachineStatus: Sendable, Equatable {
    public enum Stage: String, Sendable, CaseIterable {
        case unknown, booting, installing, maintenance, running, rebooting
        case shuttingDown = "shutting down"
        case resetting, upgrading
    }

    public var stage: Stage
    public var ready: Bool
    public var unmetConditions: [String]

    public init(stage: Stage, ready: Bool, unmetConditions: [String] = []) {
        self.stage = stage
        self.ready = ready
        self.unmetConditions = unmetConditions
    }

    public init(yaml: String) throws {
        guard let root = try Yams.load(yaml: yaml) as? [String: Any] else {
            throw TalosError.other(code: "decode", message: "MachineStatus spec is not a YAML mapping")
        }
        let stageText = root["stage"] as? String ?? "unknown"
        stage = Stage(rawValue: stageText) ?? .unknown
        let status = root["status"] as? [String: Any] ?? [:]
        ready = status["ready"] as? Bool ?? false
        let unmet = status["unmetConditions"] as? [[String: Any]] ?? []
        unmetConditions = unmet.compactMap { condition in
            guard let name = condition["name"] as? String else { return nil }
            return [name, condition["reason"] as? String].compactMap { $0 }.joined(separator: ": ")
        }
    }

    /// The spec as Talos writes it.
    public var yaml: String {
        var text = "stage: \(stage.rawValue)\nstatus:\n    ready: \(ready)\n"
        if unmetConditions.isEmpty {
            text += "    unmetConditions: []\n"
        } else {
            text += "    unmetConditions:\n" + unmetConditions.map { "        - name: \($0)\n          reason: pending\n" }.joined()
        }
        return text
    }
}
