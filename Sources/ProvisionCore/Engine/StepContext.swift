import Synchronization

/// Everything a step kind may use while it runs. Passed by value; shared parts are thread-safe.
public struct StepContext: Sendable {
    public let inventory: Inventory
    public let stateDirectory: String
    public let runID: String
    /// The node or pool named on the command line, if any.
    public let target: String?
    public let credentials: CredentialResolver
    public let events: EventBus
    public let dryRun: Bool
    /// Command-line values a playbook's steps read, e.g. `ttl` for `gpu up`.
    public let arguments: [String: String]
    /// Typed bag of collaborators that step kinds share (Talos client factory, lab handles, …).
    public let services: Services
    /// The run's journal, for work that must be recorded before it is sent (a reboot); nil in tests
    /// that run steps without one.
    public let journal: Journal?
    let outputStore: OutputStore

    public init(inventory: Inventory, stateDirectory: String, runID: String, target: String? = nil,
                credentials: CredentialResolver, events: EventBus, dryRun: Bool = false, arguments: [String: String] = [:],
                services: Services = Services(), journal: Journal? = nil) {
        self.init(inventory: inventory, stateDirectory: stateDirectory, runID: runID, target: target, credentials: credentials, events: events,
                  dryRun: dryRun, arguments: arguments, services: services, journal: journal, outputs: OutputStore())
    }

    init(inventory: Inventory, stateDirectory: String, runID: String, target: String?, credentials: CredentialResolver, events: EventBus,
         dryRun: Bool, arguments: [String: String], services: Services, journal: Journal?, outputs: OutputStore) {
        self.inventory = inventory
        self.stateDirectory = stateDirectory
        self.runID = runID
        self.target = target
        self.credentials = credentials
        self.events = events
        self.dryRun = dryRun
        self.arguments = arguments
        self.services = services
        self.journal = journal
        self.outputStore = outputs
    }

    /// The same context with the run's journal (the executor hands its own to the steps).
    func with(journal: Journal?) -> StepContext {
        StepContext(inventory: inventory, stateDirectory: stateDirectory, runID: runID, target: target, credentials: credentials, events: events,
                    dryRun: dryRun, arguments: arguments, services: services, journal: journal, outputs: outputStore)
    }

    /// Outputs of another step instance from this run (or, after a resume, from the journal).
    public func outputs(of instanceID: String) -> StepOutputs? { outputStore.get(instanceID) }

    /// What a waiting step waits for now: a timeout reports it, so the failure says what was
    /// still missing (where the node was looked for) rather than only how long it waited.
    public func waiting(_ reason: String, step: StepInstance) { outputStore.setWaiting(step.id, reason) }

    public func log(_ message: String, level: Event.Level = .info, step: StepInstance? = nil) {
        events.emit(Event(run: runID, kind: .log, level: level, step: step?.id, node: step?.node, message: message))
    }

    /// Runs `body` holding `keys`, as if the step had declared them: for a step that learns only
    /// while it runs that its change needs a one-at-a-time slot (a live change that restarts a
    /// control plane's static pods takes the slot the gated reboots take). Outside an executor's
    /// run (a bare test), it just runs.
    public func holding<T: Sendable>(_ keys: [ResourceKey], _ body: () async throws -> T) async throws -> T {
        guard let limiter = outputStore.limiter.withLock({ $0 }) else { return try await body() }
        await limiter.acquireResources(keys)
        do {
            // A step whose time ran out while it waited does not go on.
            try Task.checkCancellation()
            let result = try await body()
            await limiter.releaseResources(keys)
            return result
        } catch {
            await limiter.releaseResources(keys)
            throw error
        }
    }

    /// What a dry run found would change, in the plan's terms; only emitted in dry runs (a real run
    /// logs as it acts).
    public func plan(_ change: PlannedChange, step: StepInstance) {
        guard dryRun else { return }
        events.emit(Event(run: runID, kind: .change, step: step.id, node: change.node ?? step.node, message: change.reason, change: change))
    }
}

/// Outputs of finished steps, readable by their dependents, and the run's limiter.
final class OutputStore: Sendable {
    private let values = Mutex<[String: StepOutputs]>([:])
    /// The executor's, for steps that take a resource while they run (`StepContext.holding`).
    let limiter = Mutex<Limiter?>(nil)
    private let waits = Mutex<[String: String]>([:])
    func get(_ id: String) -> StepOutputs? { values.withLock { $0[id] } }
    func set(_ id: String, _ outputs: StepOutputs) { values.withLock { $0[id] = outputs } }
    func setWaiting(_ id: String, _ reason: String) { waits.withLock { $0[id] = reason } }
    func waiting(_ id: String) -> String? { waits.withLock { $0[id] } }
}

/// A small typed registry: modules above ProvisionCore put their collaborators here without
/// ProvisionCore knowing their types.
public struct Services: Sendable {
    private var storage: [ObjectIdentifier: any Sendable] = [:]

    public init() {}

    public subscript<T: Sendable>(_ type: T.Type) -> T? {
        get { storage[ObjectIdentifier(type)] as? T }
        set { storage[ObjectIdentifier(type)] = newValue }
    }
}
