import Foundation

/// Idempotent launches: a tag lookup before any launch, plus a ClientToken per logical launch, so
/// a cron job that runs twice, or a run resumed after a crash, never pays for a second instance.
extension EC2Client {
    /// The live (pending or running) instances carrying every one of `tags`: billing, or about to.
    public func liveInstances(tagged tags: [String: String]) async throws -> [EC2Instance] {
        try await instances(tagged: tags, states: ["pending", "running"])
    }

    /// Instances not yet terminated (pending, running, shutting-down, stopping, stopped): a machine
    /// that may still be up, with a kubelet that may still post its Node.
    public func unterminatedInstances(tagged tags: [String: String]) async throws -> [EC2Instance] {
        try await instances(tagged: tags, states: ["pending", "running", "shutting-down", "stopping", "stopped"])
    }

    /// Instances with every one of `tags`, in `states` (nil: any, terminated ones included, which
    /// EC2 lists for about an hour).
    public func instances(tagged tags: [String: String], states: [String]? = nil) async throws -> [EC2Instance] {
        var filters = tags.sorted { $0.key < $1.key }.map { ("tag:\($0.key)", [$0.value]) }
        if let states { filters.append(("instance-state-name", states)) }
        return try await describeInstances(filters: filters)
    }

    /// Finds the instance `spec.tags` describe, or launches it. `launched` says which happened.
    public func findOrLaunch(_ spec: EC2LaunchSpec) async throws -> (instance: EC2Instance, launched: Bool) {
        if let existing = try await liveInstances(tagged: spec.tags).first { return (existing, false) }
        guard let instance = try await runInstances(spec).first else {
            throw AWSError.malformed("RunInstances returned no instance")
        }
        return (instance, true)
    }
}
