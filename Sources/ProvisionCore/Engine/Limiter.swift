/// Bounds concurrency overall and per named resource (one storage-heavy Proxmox task per storage).
actor Limiter {
    private let global: AsyncSemaphore
    private var perResource: [ResourceKey: AsyncSemaphore] = [:]
    private let limits: [String: Int]

    init(maxConcurrency: Int, resourceLimits: [String: Int]) {
        global = AsyncSemaphore(maxConcurrency)
        limits = resourceLimits
    }

    private func semaphore(for key: ResourceKey) -> AsyncSemaphore {
        if let existing = perResource[key] { return existing }
        let created = AsyncSemaphore(limits[key.kind] ?? 1)
        perResource[key] = created
        return created
    }

    /// Resources first, in sorted order (no deadlock), then a global slot, so a step waiting for a
    /// busy resource does not hold a slot that independent steps could use.
    nonisolated func acquire(_ keys: [ResourceKey]) async {
        for key in keys.sorted() { await semaphore(for: key).acquire() }
        await global.acquire()
    }

    nonisolated func release(_ keys: [ResourceKey]) async {
        await global.release()
        for key in keys.sorted() { await semaphore(for: key).release() }
    }

    /// More resources for a step that already holds its global slot: the slot is given back while it
    /// waits and taken again after, so the order stays resources first, then a slot (a step that
    /// holds the resource and waits for a slot never waits on this one).
    nonisolated func acquireResources(_ keys: [ResourceKey]) async {
        await global.release()
        for key in keys.sorted() { await semaphore(for: key).acquire() }
        await global.acquire()
    }

    nonisolated func releaseResources(_ keys: [ResourceKey]) async {
        for key in keys.sorted() { await semaphore(for: key).release() }
    }
}

/// Exponential backoff with full jitter and a cap on attempts.
public struct RetryPolicy: Sendable {
    public var maxAttempts: Int
    public var baseDelay: Duration
    public var maxDelay: Duration

    public init(maxAttempts: Int = 4, baseDelay: Duration = .milliseconds(500), maxDelay: Duration = .seconds(30)) {
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// Delay before attempt `attempt + 1`: uniform in [0, min(max, base * 2^(attempt-1))].
    public func delay(after attempt: Int) -> Duration {
        let ceiling = min(maxDelay, baseDelay * (1 << min(attempt - 1, 20)))
        let ms = Int64(ceiling.components.seconds) * 1000 + ceiling.components.attoseconds / 1_000_000_000_000_000
        return .milliseconds(Int64.random(in: 0...max(0, ms)))
    }
}
