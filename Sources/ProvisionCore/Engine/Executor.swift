import Foundation

/// Options of one run, from the command line.
public struct ExecutorOptions: Sendable {
    public var maxConcurrency = 64
    /// Per resource kind; a kind not listed allows one instance at a time.
    public var resourceLimits: [String: Int] = [:]
    public var retry = RetryPolicy()
    public var dryRun = false
    /// Run only this step (id or instance id); its dependencies are observed, never applied.
    public var only: String?
    /// Run this step and what it needs, nothing after it.
    public var until: String?
    /// Multiplies step kinds' default timeouts (a lab's time scale; never below a minute).
    public var timeoutScale: Double?

    public init() {}
}

/// What a run did, and the exit code the CLI should return.
public struct RunSummary: Sendable {
    public var runID: String
    public var outcomes: [String: Journal.Outcome]
    public var errors: [String: String]
    public var refused = false
    public var interrupted = false

    public var changed: Int { outcomes.values.filter { $0 == .applied }.count }
    public var pending: Int { outcomes.values.filter { $0 == .pending }.count }
    public var failed: Int { outcomes.values.filter { $0 == .failed || $0 == .refused }.count }
    public var succeeded: Bool { !interrupted && failed == 0 && !refused && !outcomes.values.contains(.blocked) }
}

/// Runs a `StepGraph`: dependency order, bounded concurrency, observe-then-apply, retries with
/// backoff, per-step timeouts, journaled attempts, and clean cancellation.
public struct Executor: Sendable {
    let graph: StepGraph
    let catalog: StepCatalog
    let context: StepContext
    let journal: Journal?
    let options: ExecutorOptions

    public init(graph: StepGraph, catalog: StepCatalog, context: StepContext, journal: Journal?, options: ExecutorOptions) {
        self.graph = graph
        self.catalog = catalog
        // Steps that record work before sending it (a reboot, a reset) use the run's journal.
        self.context = context.journal == nil ? context.with(journal: journal) : context
        self.journal = journal
        self.options = options
    }

    public func run(command: String, playbook: String) async throws -> RunSummary {
        let (selected, observeOnly) = try graph.selection(only: options.only, until: options.until)
        if let missing = catalog.unavailableKinds(in: graph, instances: selected).first { throw StepError.unavailable(missing) }
        let edges = Dictionary(uniqueKeysWithValues: graph.instances.filter { selected.contains($0.id) }.map { ($0.id, $0.dependencies.filter(selected.contains)) })
        try journal?.startRun(id: context.runID, inventory: context.inventory.name, playbook: playbook, target: context.target, command: command, graph: edges)
        context.events.emit(Event(run: context.runID, kind: .runStarted, message: "\(command): \(selected.count) steps"))
        let limiter = Limiter(maxConcurrency: options.maxConcurrency, resourceLimits: options.resourceLimits)
        context.outputStore.limiter.withLock { $0 = limiter }
        var summary = RunSummary(runID: context.runID, outcomes: [:], errors: [:])

        let instances = graph.instances.filter { selected.contains($0.id) }
        var waitingOn: [String: Int] = [:]
        var dependents: [String: [String]] = [:]
        for instance in instances {
            let deps = instance.dependencies.filter(selected.contains)
            waitingOn[instance.id] = deps.count
            for dep in deps { dependents[dep, default: []].append(instance.id) }
        }
        var poisoned: [String: String] = [:] // instance -> failed dependency
        var pendingDeps: [String: String] = [:] // dry run: instance -> dependency that would change

        await withTaskGroup(of: (String, Journal.Outcome, String?).self) { group in
            func start(_ id: String) {
                guard let instance = graph[id] else { return }
                if let failedDep = poisoned[id] {
                    group.addTask { (id, .blocked, "not run: \(failedDep) did not finish") }
                } else if let dep = pendingDeps[id] {
                    // A dry run still reads what is live downstream of a change: a step that already
                    // matches says so; one that cannot be judged until the change is made waits for it.
                    group.addTask { await observeAfterPending(instance, dependency: dep, limiter: limiter) }
                } else {
                    group.addTask { await execute(instance, limiter: limiter, observeOnly: observeOnly.contains(id)) }
                }
            }
            for instance in instances where waitingOn[instance.id] == 0 { start(instance.id) }
            for await (id, outcome, error) in group {
                summary.outcomes[id] = outcome
                if let error { summary.errors[id] = error }
                if outcome == .blocked {
                    context.events.emit(Event(run: context.runID, kind: .stepBlocked, step: id, node: graph[id]?.node, message: error))
                    try? journal.map { j in try j.endAttempt(try j.beginAttempt(run: context.runID, step: graph[id]!, attempt: 0), outcome: .blocked, error: error) }
                }

                for next in dependents[id] ?? [] {
                    switch outcome {
                    case .applied, .satisfied: break
                    case .pending: pendingDeps[next] = pendingDeps[next] ?? id
                    default: poisoned[next] = poisoned[next] ?? id
                    }
                    waitingOn[next, default: 1] -= 1
                    if waitingOn[next] == 0, !Task.isCancelled { start(next) }
                }
            }
        }
        summary.interrupted = Task.isCancelled || summary.outcomes.values.contains(.interrupted)
        summary.refused = summary.outcomes.values.contains(.refused)
        for instance in instances where summary.outcomes[instance.id] == nil {
            summary.outcomes[instance.id] = summary.interrupted ? .interrupted : .blocked
        }
        let outcome = summary.interrupted ? "interrupted" : summary.refused ? "refused" : summary.succeeded ? "succeeded" : "failed"
        try? journal?.finishRun(id: context.runID, outcome: outcome)
        journal?.checkpoint()
        let text = "\(outcome): \(summary.changed) changed, \(summary.outcomes.values.filter { $0 == .satisfied }.count) already done"
            + (options.dryRun ? ", \(summary.pending) would change" : "") + (summary.failed > 0 ? ", \(summary.failed) failed" : "")
        context.events.emit(Event(run: context.runID, kind: .runFinished, level: summary.succeeded ? .info : .error, message: text))
        context.events.flush()
        return summary
    }

    /// A dry run's step whose dependency would change: observed once, no retries; what it cannot
    /// observe yet (the dependency has not happened) is reported as waiting for it.
    func observeAfterPending(_ step: StepInstance, dependency: String, limiter: Limiter) async -> (String, Journal.Outcome, String?) {
        guard let kind = catalog.kind(step.kind) else { return (step.id, .failed, StepError.unavailable(step.kind).description) }
        let resources = kind.resources(for: step, context: context)
        await limiter.acquire(resources)
        emit(.stepStarted, step, attempt: 1)
        let outcome: Journal.Outcome, note: String
        do {
            switch try await withTimeout(.seconds(30), step: step.id, { try await kind.observe(step, context: context) }) {
            case .satisfied: (outcome, note) = (.satisfied, "already in place")
            case let .pending(reason): (outcome, note) = (.pending, reason)
            }
        } catch {
            (outcome, note) = (.pending, "waits for \(dependency)")
        }
        await limiter.release(resources)
        emit(outcome == .satisfied ? .stepSatisfied : .stepPending, step, attempt: 1, message: note)
        return (step.id, outcome, outcome == .pending && note.hasPrefix("waits for") ? note : nil)
    }

    /// One instance, all attempts. Returns its final outcome and error text.
    func execute(_ step: StepInstance, limiter: Limiter, observeOnly: Bool) async -> (String, Journal.Outcome, String?) {
        guard let kind = catalog.kind(step.kind) else { return (step.id, .failed, StepError.unavailable(step.kind).description) }
        let resources = kind.resources(for: step, context: context)
        await limiter.acquire(resources)
        let (outcome, error) = await attempts(step, kind: kind, observeOnly: observeOnly)
        await limiter.release(resources)
        return (step.id, outcome, error)
    }

    func attempts(_ step: StepInstance, kind: any StepKind, observeOnly: Bool) async -> (Journal.Outcome, String?) {
        let maxAttempts = (step.retries.map { $0 + 1 }) ?? options.retry.maxAttempts
        let timeout = step.timeout ?? options.timeoutScale.map { max(.seconds(60), kind.info.defaultTimeout * $0) } ?? kind.info.defaultTimeout
        let previous = try? journal?.lastSuccess(step: step.id)
        var attempt = 0
        while true {
            attempt += 1
            if Task.isCancelled { return (.interrupted, "interrupted before start") }
            let started = ContinuousClock.now
            emit(.stepStarted, step, attempt: attempt)
            let row = try? journal?.beginAttempt(run: context.runID, step: step, attempt: attempt)
            do {
                let (outcome, outputs, note) = try await withTimeout(timeout, step: step.id) {
                    try await observeThenApply(step, kind: kind, observeOnly: observeOnly, previous: previous)
                }
                if let row { try? journal?.endAttempt(row, outcome: outcome, outputs: outputs) }
                context.outputStore.set(step.id, outputs)
                let ms = Int((ContinuousClock.now - started) / .milliseconds(1))
                emit(outcome == .applied ? .stepApplied : outcome == .pending ? .stepPending : .stepSatisfied, step,
                     attempt: attempt, message: note, outputs: outputs.isEmpty ? nil : outputs, durationMs: ms)
                return (outcome, nil)
            } catch {
                let cancelled = error is CancellationError || (Task.isCancelled && !(error is StepTimeoutError))
                var described = "\(error)"
                if error is StepTimeoutError, let waiting = context.outputStore.waiting(step.id) { described += ": \(waiting)" }
                let text = context.events.redactor.redact(cancelled ? "interrupted" : described)
                let transient = (error as? any ClassifiedError)?.isTransient ?? false
                let retry = transient && !cancelled && attempt < maxAttempts
                let refused: Bool
                if case StepError.refused = error { refused = true } else { refused = false }
                if let row { try? journal?.endAttempt(row, outcome: cancelled ? .interrupted : refused ? .refused : .failed, error: text) }
                if cancelled {
                    emit(.log, step, attempt: attempt, message: "interrupted", level: .warning)
                    return (.interrupted, text)
                }
                guard retry else {
                    emit(.stepFailed, step, attempt: attempt, message: refused ? "refused: \(text)" : text, level: .error)
                    return (refused ? .refused : .failed, text)
                }
                let delay = options.retry.delay(after: attempt)
                emit(.stepRetrying, step, attempt: attempt + 1, message: "\(text); retrying in \(DurationText.format(delay))", level: .warning)
                do { try await Task.sleep(for: delay) } catch { return (.interrupted, "interrupted") }
            }
        }
    }

    func observeThenApply(_ step: StepInstance, kind: any StepKind, observeOnly: Bool,
                          previous: Journal.Attempt?) async throws -> (Journal.Outcome, StepOutputs, String?) {
        switch try await kind.observe(step, context: context) {
        case let .satisfied(outputs):
            return (.satisfied, outputs, previous == nil ? "already in place" : nil)
        case let .pending(reason):
            if observeOnly {
                throw StepError.permanent("not done (\(reason)); run without --only first")
            }
            if options.dryRun { return (.pending, [:], reason) }
            if kind.info.everyRun {
                // Nothing to say: it is meant to run again.
            } else if let previous, previous.inputsDigest == step.inputsDigest {
                context.log("recorded as done in run \(previous.runID), but live state differs (\(reason)); applying again", level: .warning, step: step)
            } else if previous != nil {
                context.log("the inventory changed since it was done: \(reason)", step: step)
            }
            let outputs = try await kind.apply(step, context: context)
            return (.applied, outputs, nil)
        }
    }

    func emit(_ kind: Event.Kind, _ step: StepInstance, attempt: Int, message: String? = nil, outputs: StepOutputs? = nil,
              durationMs: Int? = nil, level: Event.Level = .info) {
        context.events.emit(Event(run: context.runID, kind: kind, level: level, step: step.id, node: step.node, attempt: attempt,
                                  message: message, outputs: outputs, durationMs: durationMs))
    }
}

/// Runs `operation` with a deadline; on expiry the operation is cancelled and `StepTimeoutError` thrown.
func withTimeout<T: Sendable>(_ timeout: Duration, step: String, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: timeout)
            throw StepTimeoutError(step: step, timeout: timeout)
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw CancellationError() }
        return first
    }
}

extension StepGraph {
    /// Instances a run touches, and those among them that may only be observed (`--only` deps).
    public func selection(only: String?, until: String?) throws(InputError) -> (run: Set<String>, observeOnly: Set<String>) {
        func matching(_ name: String, flag: String) throws(InputError) -> Set<String> {
            let found = Set(instances.filter { $0.stepID == name || $0.id == name }.map(\.id))
            if found.isEmpty {
                let names = Set(instances.map(\.stepID)).sorted()
                throw InputError("flag.unknown-step", at: SourceLocation(file: "command line", line: 1, column: 1),
                                 "\(flag) \(name): no such step\(Suggestion.hint(for: name, in: names))", fix: "use one of: \(names.joined(separator: ", "))")
            }
            return found
        }
        if let only {
            let chosen = try matching(only, flag: "--only")
            var deps = Set<String>()
            for id in chosen { deps.formUnion(self[id]?.dependencies ?? []) }
            return (chosen.union(deps), deps.subtracting(chosen))
        }
        if let until {
            _ = try matching(until, flag: "--until")
            return (ancestors(ofStep: until), [])
        }
        return (Set(instances.map(\.id)), [])
    }
}

extension StepCatalog {
    /// Kinds used by `instances` of `graph` that this build cannot run.
    public func unavailableKinds(in graph: StepGraph, instances: Set<String>) -> [String] {
        Set(graph.instances.filter { instances.contains($0.id) && kind($0.kind) == nil }.map(\.kind)).sorted()
    }
}
