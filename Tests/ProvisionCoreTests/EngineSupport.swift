import Foundation
import Synchronization
@testable import ProvisionCore
import TestSupport

/// Records what in-test step kinds did: intervals, concurrency, calls. Thread-safe.
final class Recorder: Sendable {
    struct State {
        var running = 0
        var maxRunning = 0
        var runningByResource: [String: Int] = [:]
        var maxByResource: [String: Int] = [:]
        var intervals: [String: (start: ContinuousClock.Instant, end: ContinuousClock.Instant)] = [:]
        var applies: [String: Int] = [:]
        var observes: [String: Int] = [:]
        /// Calls of apply, failed ones included (`applies` counts completed applies).
        var applyCalls: [String: Int] = [:]
        var done: Set<String> = []
    }

    let state = Mutex(State())

    func begin(_ id: String, resource: String?) -> ContinuousClock.Instant {
        state.withLock { s in
            s.running += 1
            s.maxRunning = max(s.maxRunning, s.running)
            if let resource {
                s.runningByResource[resource, default: 0] += 1
                s.maxByResource[resource] = max(s.maxByResource[resource] ?? 0, s.runningByResource[resource]!)
            }
            return ContinuousClock.now
        }
    }

    func end(_ id: String, resource: String?, started: ContinuousClock.Instant) {
        state.withLock { s in
            s.running -= 1
            if let resource { s.runningByResource[resource, default: 1] -= 1 }
            s.intervals[id] = (started, ContinuousClock.now)
            s.applies[id, default: 0] += 1
            s.done.insert(id)
        }
    }
}

/// An in-test step kind: observe reports done once apply ran; apply sleeps `work` and may fail
/// according to `failures` (a number of transient failures first, or permanent).
struct TestStep: StepKind {
    enum Failure: Sendable { case none, transient(times: Int), permanent, refused }

    let recorder: Recorder
    var name = "test.step"
    var work: Duration = .milliseconds(20)
    var failure: Failure = .none
    var resource: String?

    var info: StepKindInfo {
        StepKindInfo(name: name, summary: "test", estimate: .seconds(1), defaultTimeout: .seconds(30), parameters: ["work", "resource"])
    }

    func resources(for step: StepInstance, context: StepContext) -> [ResourceKey] {
        (step.parameters.string("resource") ?? resource).map { [ResourceKey("test", $0)] } ?? []
    }

    func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        recorder.state.withLock { $0.observes[step.id, default: 0] += 1 }
        return recorder.state.withLock { $0.done.contains(step.id) } ? .satisfied(["seen": "yes"]) : .pending("not yet")
    }

    func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let attempts = recorder.state.withLock { s in
            s.applyCalls[step.id, default: 0] += 1
            return s.applyCalls[step.id]!
        }
        switch failure {
        case .none: break
        case let .transient(times) where attempts <= times: throw StepError.transient("flaky (\(attempts))")
        case .transient: break
        case .permanent: throw StepError.permanent("broken")
        case .refused: throw StepError.refused("would break quorum")
        }
        let resource = step.parameters.string("resource") ?? self.resource
        let started = recorder.begin(step.id, resource: resource)
        let work = step.parameters.duration("work") ?? self.work
        do {
            try await Task.sleep(for: work)
        } catch {
            recorder.state.withLock { $0.running -= 1 }
            throw error
        }
        recorder.end(step.id, resource: resource, started: started)
        return ["node": step.node ?? "cluster"]
    }
}

/// Builds a graph directly (no YAML) for engine tests.
func graph(_ specs: [(id: String, deps: [String], params: [String: String])], kind: String = "test.step") -> StepGraph {
    StepGraph(specs.map { spec in
        let params = YAMLNode(.mapping(spec.params.sorted { $0.key < $1.key }.map { (YAMLNode(.scalar($0.key, plain: true), at: .init(file: "t", line: 1, column: 1)),
                                                                               YAMLNode(.scalar($0.value, plain: true), at: .init(file: "t", line: 1, column: 1))) }),
                              at: .init(file: "t", line: 1, column: 1))
        return StepInstance(id: spec.id, stepID: spec.id.components(separatedBy: "@")[0], kind: kind, node: nil,
                            parameters: StepParameters(params), dependencies: spec.deps, timeout: nil, retries: nil,
                            inputsDigest: "d-\(spec.id)", location: .init(file: "t", line: 1, column: 1))
    })
}

struct Harness {
    let recorder = Recorder()
    let sink = CollectingSink()
    let redactor = Redactor()
    let directory = Fixtures.temporaryDirectory()

    func context(_ inventory: Inventory) -> StepContext {
        StepContext(inventory: inventory, stateDirectory: directory, runID: "run-\(UUID().uuidString.prefix(8))",
                    credentials: CredentialResolver(environment: [:], baseDirectory: directory, redactor: redactor),
                    events: EventBus(redactor: redactor, sinks: [sink]))
    }

    func run(_ graph: StepGraph, kinds: [any StepKind], options: ExecutorOptions = ExecutorOptions(),
             journal: Journal? = nil) async throws -> RunSummary {
        var catalog = StepCatalog()
        for kind in kinds { catalog.register(kind) }
        let executor = Executor(graph: graph, catalog: catalog, context: context(try Fixtures.inventory()), journal: journal, options: options)
        return try await executor.run(command: "test", playbook: "test")
    }
}

extension ExecutorOptions {
    static func fast(concurrency: Int = 8) -> ExecutorOptions {
        var options = ExecutorOptions()
        options.maxConcurrency = concurrency
        options.retry = RetryPolicy(maxAttempts: 4, baseDelay: .milliseconds(2), maxDelay: .milliseconds(10))
        return options
    }
}
