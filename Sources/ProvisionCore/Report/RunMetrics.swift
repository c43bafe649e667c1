import Foundation

/// A run's figures in Prometheus' text format, for node_exporter's textfile collector
/// (`--metrics-file`): written whole to a temporary file and renamed, so the collector never reads
/// half a file. Every series is a gauge describing the last run of this command; the collector
/// adds the host's labels.
public struct RunMetrics: Sendable {
    public struct GPUInstance: Sendable {
        public var pool: String
        public var id: String
        public var state: String
        /// Seconds until the expiry tag (negative when past it); nil without a tag.
        public var secondsToExpiry: Double?

        public init(pool: String, id: String, state: String, secondsToExpiry: Double?) {
            self.pool = pool
            self.id = id
            self.state = state
            self.secondsToExpiry = secondsToExpiry
        }
    }

    public var inventory: String
    public var playbook: String
    public var duration: Double
    public var succeeded: Bool
    public var finishedAt: Date
    public var outcomes: [Journal.Outcome: Int]
    public var retries: Int
    /// The last time this playbook succeeded on this inventory (this run's end when it did).
    public var lastSuccess: Date?
    /// The GPU pools' instances as EC2 reported them at the end of the run; nil when not asked.
    public var gpuPools: [String]?
    public var gpuInstances: [GPUInstance] = []

    public init(inventory: String, playbook: String, duration: Double, succeeded: Bool, finishedAt: Date,
                outcomes: [Journal.Outcome: Int], retries: Int, lastSuccess: Date?) {
        self.inventory = inventory
        self.playbook = playbook
        self.duration = duration
        self.succeeded = succeeded
        self.finishedAt = finishedAt
        self.outcomes = outcomes
        self.retries = retries
        self.lastSuccess = lastSuccess
    }

    public func render() -> String {
        var lines: [String] = []
        let run = labels(["inventory": inventory, "playbook": playbook])
        func gauge(_ name: String, _ help: String, _ samples: [(String, Double)]) {
            lines.append("# HELP \(name) \(help)")
            lines.append("# TYPE \(name) gauge")
            for (labels, value) in samples { lines.append("\(name)\(labels) \(number(value))") }
        }
        gauge("provision_run_duration_seconds", "Wall time of the last run of this playbook.", [(run, duration)])
        gauge("provision_run_success", "1 if the last run of this playbook succeeded, else 0.", [(run, succeeded ? 1 : 0)])
        gauge("provision_run_finished_timestamp_seconds", "When the last run of this playbook ended (Unix time).", [(run, finishedAt.timeIntervalSince1970)])
        if let lastSuccess {
            gauge("provision_run_last_success_timestamp_seconds", "When this playbook last succeeded on this inventory (Unix time).",
                  [(run, lastSuccess.timeIntervalSince1970)])
        }
        let every: [Journal.Outcome] = [.applied, .satisfied, .pending, .failed, .refused, .blocked, .interrupted]
        gauge("provision_run_steps", "Steps of the last run by outcome (applied: changed something; satisfied: already in place).",
              every.map { (labels(["inventory": inventory, "playbook": playbook, "outcome": $0.rawValue]), Double(outcomes[$0] ?? 0)) })
        gauge("provision_run_retries", "Step attempts beyond the first in the last run.", [(run, Double(retries))])
        if let pools = gpuPools {
            gauge("provision_gpu_instances_running", "GPU worker instances pending or running per pool, as EC2 reported at the end of the run.",
                  pools.map { pool in (labels(["inventory": inventory, "pool": pool]),
                                       Double(gpuInstances.filter { $0.pool == pool && ["pending", "running"].contains($0.state) }.count)) })
            let timed = gpuInstances.filter { $0.secondsToExpiry != nil && ["pending", "running"].contains($0.state) }
            if !timed.isEmpty {
                gauge("provision_gpu_instance_expiry_seconds", "Seconds until each GPU instance's expiry tag (negative: past it; `gpu sweep` ends it).",
                      timed.map { (labels(["inventory": inventory, "pool": $0.pool, "instance": $0.id]), $0.secondsToExpiry!) })
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes the file atomically (temporary file in the same folder, then rename), mode 0644:
    /// node_exporter runs as its own user, and nothing here is secret.
    public func write(to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
        try Data(render().utf8).write(to: temporary)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: temporary.path)
        if rename(temporary.path, url.path) != 0 {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "cannot move the metrics into \(path): \(reason)"])
        }
    }

    func labels(_ pairs: [String: String]) -> String {
        "{" + pairs.sorted { $0.key < $1.key }.map { "\($0.key)=\"\(Self.escapeLabel($0.value))\"" }.joined(separator: ",") + "}"
    }

    static func escapeLabel(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(format: "%.3f", value)
    }
}
