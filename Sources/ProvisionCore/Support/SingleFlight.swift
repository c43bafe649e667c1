/// One run of a job per key, however many callers want it at once: later callers wait for the
/// first one's result (one download of an image that ten VMs boot from). A failure is not kept:
/// the next caller runs the job again.
public actor SingleFlight<Value: Sendable> {
    private var inFlight: [String: Task<Value, Error>] = [:]

    public init() {}

    public func run(_ key: String, _ work: @escaping @Sendable () async throws -> Value) async throws -> Value {
        if let running = inFlight[key] { return try await running.value }
        let task = Task { try await work() }
        inFlight[key] = task
        do {
            return try await task.value
        } catch {
            inFlight[key] = nil
            throw error
        }
    }
}
