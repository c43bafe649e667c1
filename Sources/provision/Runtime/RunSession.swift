import Dispatch
import Foundation
import Synchronization
import ProvisionCore
import Steps

/// Runs one playbook for a command: checks that this build can run every step, takes the inventory
/// lock, opens the journal, wires events to the terminal, `--json` and the trace log, handles
/// SIGINT/SIGTERM, and turns the outcome into an exit code.
struct RunSession {
    var global: GlobalOptions
    var run: RunOptions
    var command: String
    var playbook: String
    var target: String?
    var arguments: [String: String] = [:]
    /// A live plan: a dry run whose steps are collected here instead of printed.
    var plan: PlanCollector?
    /// Talos client credentials from a talosconfig (`--talosconfig`) instead of the bundle's.
    var talosCredentials: (ca: String, certificate: String, key: String)?

    /// Runs the playbook. Returns the dry run's summary and graph for a plan; a run ends in its exit code.
    @discardableResult
    func perform(inventory: Inventory) async throws(Exit) -> (summary: RunSummary, graph: StepGraph)? {
        var global = self.global
        if plan != nil { global.dryRun = true }
        let output = Output(json: global.json)
        let loader = Loader(output: output)
        let (book, graph) = try loader.graph(playbook, inventory: inventory, target: target)

        var options = ExecutorOptions()
        options.dryRun = global.dryRun
        options.only = run.only
        options.until = run.until
        options.maxConcurrency = max(1, run.concurrency)
        guard run.maxParallel >= 1 else {
            output.failure("--max-parallel \(run.maxParallel): at least one worker must be allowed down at a time", key: "flag.invalid")
            throw Exit(status: .badInput)
        }
        options.resourceLimits["disruption-workers"] = run.maxParallel
        // A lab runs on a compressed clock: its waits are bounded on that clock too.
        if let scale = inventory.lab?.timeScale.value, scale < 1 { options.timeoutScale = scale }
        guard let lockTimeout = DurationText.parse(run.lockTimeout) ?? (run.lockTimeout == "0" ? .zero : nil) else {
            output.failure("--lock-timeout \(run.lockTimeout) is not a duration; write e.g. 30s or 10m", key: "flag.invalid")
            throw Exit(status: .badInput)
        }

        let stateDir = loader.stateDirectory(global, inventory: inventory)
        let runID = Self.newRunID()
        let redactor = Redactor()
        let selected: Set<String>
        do {
            selected = try graph.selection(only: options.only, until: options.until).run
        } catch {
            output.diagnostics(error.diagnostics)
            throw Exit(status: .badInput)
        }
        // Say plainly, before touching anything, when this build cannot run the playbook.
        let missing = loader.catalog.unavailableKinds(in: graph, instances: selected)
        if !missing.isEmpty {
            let list = missing.map { "step kind \($0) is not available in this build" }.joined(separator: "\n")
            output.failure(list + "\n(`provision plan \(inventory.name)` shows the steps; nothing was changed)", key: "step.unavailable")
            throw Exit(status: .failed)
        }

        let invalid = ConfigPreflight.problems(inventory, graph: graph, selected: selected)
        if !invalid.isEmpty {
            output.failure(invalid.joined(separator: "\n") + "\nnothing was sent to any node", key: "config.invalid")
            throw Exit(status: .badInput)
        }

        do {
            try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            output.failure("cannot create state directory \(stateDir): \(error.localizedDescription)", key: "state.unwritable")
            throw Exit(status: .failed)
        }
        let lock: InventoryLock
        do {
            lock = try await InventoryLock.acquire(stateDirectory: stateDir, command: command, timeout: lockTimeout) { stale in
                output.warning("took over the lock of a run that ended without releasing it: \(stale)")
            }
        } catch {
            output.failure(error.description, key: "lock.held")
            throw Exit(status: .locked)
        }
        defer { lock.release() }
        let resolver = CredentialResolver(baseDirectory: inventory.directory, redactor: redactor)
        await resolver.preload(inventory.credentialReferences.map(\.value))
        // The shared lease before anything is written here: a host that waits or is refused leaves no trace.
        let shared = global.dryRun ? nil : try await SharedState.take(inventory, stateDirectory: stateDir, runID: runID, command: command,
                                                                     timeout: lockTimeout, credentials: resolver, output: output)
        let journal: Journal
        do {
            journal = try Journal(path: stateDir + "/journal.sqlite")
        } catch {
            await shared?.lease.release()
            output.failure(error.description, key: "journal.unreadable")
            throw Exit(status: .failed)
        }
        let touchesLab = graph.instances.contains { selected.contains($0.id) && InProcessLab.needsLab($0.kind) }
        // A dry run observes a lab too, read-only: restored as left, never saved.
        let lab = !touchesLab ? nil : try await InProcessLab.start(inventory, stateDirectory: stateDir, credentials: resolver, output: output, readOnly: global.dryRun)
        var sinks: [any EventSink] = []
        if let plan {
            sinks.append(plan)
        } else if global.json {
            sinks.append(JSONLinesSink())
        } else {
            sinks.append(ConsoleSink(live: isatty(STDERR_FILENO) == 1, verbose: global.verbose, total: selected.count))
        }
        if let trace = try? TraceLogSink(directory: stateDir + "/logs", runID: runID) { sinks.append(trace) }
        let bus = EventBus(redactor: redactor, sinks: sinks)
        // One Talos access per run: the bundle is decrypted once and each node keeps one connection.
        let talos = TalosAccess(inventory: inventory, stateDirectory: stateDir, credentials: resolver, clientCredentials: talosCredentials)
        defer { talos.close() }
        var services = Services()
        services[TalosAccess.self] = talos
        services[MachineProviders.self] = MachineProviders()
        let kube = KubeAccess(stateDirectory: stateDir)
        services[KubeAccess.self] = kube
        let context = StepContext(inventory: inventory, stateDirectory: stateDir, runID: runID, target: target,
                                  credentials: resolver,
                                  events: bus, dryRun: global.dryRun, arguments: arguments, services: services, journal: journal)
        let executor = Executor(graph: graph, catalog: loader.catalog, context: context, journal: journal, options: options)
        if plan == nil { output.note("\(command) · inventory \(inventory.name) · playbook \(book.name) · state \(stateDir)") }

        let task = Task { try await executor.run(command: command, playbook: book.name) }
        shared?.lease.whenLost {
            output.warning("the shared lock was taken over by another host (it judged this run dead); stopping now")
            task.cancel()
        }
        let signals = SignalWatcher { task.cancel() }
        let result = await task.result
        signals.stop()
        if let path = run.metricsFile, plan == nil, !global.dryRun {
            await RunMetricsWriter(context: context, journal: journal, playbook: book.name)
                .write(result: result, to: path, output: output)
        }
        await shared?.finish(runID: runID, journal: journal, output: output)
        await kube.close()
        await lab?.finish()
        switch result {
        case let .success(summary):
            if summary.interrupted { throw Exit(status: .interrupted) }
            if summary.refused { throw Exit(status: .refused) }
            if plan != nil { return (summary, graph) }
            if !summary.succeeded { throw Exit(status: .failed) }
            if global.dryRun, summary.pending > 0 { throw Exit(status: .changes) }
            if run.detailedExitcode, summary.changed > 0 { throw Exit(status: .changes) }
            if summary.changed == 0, !global.dryRun { output.note("nothing to do: everything was already in place") }
            if lab != nil, !global.dryRun, FileManager.default.fileExists(atPath: stateDir + "/kubeconfig") {
                output.note("the lab is saved and stopped with this command; to look at the cluster, serve it (`provision lab serve \(inventory.name)\(global.stateDir.map { " --state-dir \($0)" } ?? "")`) and run `kubectl --kubeconfig \(stateDir)/kubeconfig get nodes`")
            }
        case let .failure(error):
            output.failure(redactor.redact("\(error)"), key: "run.failed")
            throw Exit(status: error is InputError ? .badInput : .failed)
        }
        return nil
    }

    static func newRunID() -> String {
        let stamp = ISO8601DateFormatter.string(from: Date(), timeZone: .gmt, formatOptions: [.withYear, .withMonth, .withDay, .withTime])
        return "\(stamp)-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
    }
}
