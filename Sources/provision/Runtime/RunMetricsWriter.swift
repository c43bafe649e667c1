import Foundation
import ProvisionCore
import Steps

/// `--metrics-file`: the run's figures gathered from its summary and journal (and, for an
/// inventory with GPU pools, EC2's view of their instances) and written for Prometheus. A metrics
/// file that cannot be written is a warning: the run's own outcome stands.
struct RunMetricsWriter {
    let context: StepContext
    let journal: Journal
    let playbook: String

    func write(result: Result<RunSummary, any Error>, to path: String, output: Output) async {
        let now = Date()
        let summary = try? result.get()
        let run = try? journal.run(id: context.runID)
        let attempts = (try? journal.attempts(run: context.runID)) ?? []
        var outcomes: [Journal.Outcome: Int] = [:]
        for outcome in summary?.outcomes.values.map({ $0 }) ?? [] { outcomes[outcome, default: 0] += 1 }
        let succeeded = summary?.succeeded ?? false
        let lastSuccess = succeeded ? now : (try? journal.runs(limit: 500))?.first { $0.playbook == playbook && $0.outcome == "succeeded" }?.finishedAt
        var metrics = RunMetrics(inventory: context.inventory.name, playbook: playbook,
                                 duration: now.timeIntervalSince(run?.startedAt ?? now), succeeded: succeeded, finishedAt: now,
                                 outcomes: outcomes, retries: attempts.filter { $0.attempt > 1 }.count, lastSuccess: lastSuccess)
        if !context.inventory.gpuPools.isEmpty {
            if let instances = await GPUMetrics.instances(context, now: now) {
                metrics.gpuPools = context.inventory.gpuPools.map(\.name.value)
                metrics.gpuInstances = instances
            } else {
                output.warning("EC2 did not answer: the metrics file leaves the GPU pools out")
            }
        }
        do {
            try metrics.write(to: PathText.resolve(path, relativeTo: FileManager.default.currentDirectoryPath))
        } catch {
            output.warning("cannot write the metrics file \(path): \(error.localizedDescription)")
        }
    }
}
