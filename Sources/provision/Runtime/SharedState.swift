import Foundation
import ProvisionCore
import Steps

/// A run's share of the state kept in the bucket (`state.backend: s3`): the lease taken before
/// anything happens (exit 4 while another host holds it, exit 3 when the store ignores conditional
/// writes), the bundle and version records pulled when this host has none, and at the end both
/// pushed, the run archived and the lease released.
struct SharedState {
    let lease: BucketLease
    let state: BucketState

    static func take(_ inventory: Inventory, stateDirectory: String, runID: String, command: String, timeout: Duration,
                     credentials: CredentialResolver, output: Output) async throws(Exit) -> SharedState? {
        guard inventory.sharesStateInBucket, let ttl = inventory.state?.lockTTL else { return nil }
        do {
            let bucket = try await BackupBucket.open(inventory, credentials: credentials)
            let lease = try await BucketLease.acquire(bucket: bucket, inventory: inventory, stateDirectory: stateDirectory, runID: runID,
                                                      command: command, ttl: ttl, timeout: timeout) { stale in
                output.warning("took over the shared lock of a run that stopped renewing it: \(stale)")
            }
            let state = BucketState(bucket: bucket, inventory: inventory, stateDirectory: stateDirectory, credentials: credentials)
            do {
                try await pull(state, output: output)
            } catch {
                await lease.release()
                throw error
            }
            return SharedState(lease: lease, state: state)
        } catch let failure as BucketLease.Failure {
            if case .held = failure {
                output.failure(failure.description, key: "lock.held")
                throw Exit(status: .locked)
            }
            output.failure(failure.description, key: "state.store")
            throw Exit(status: .refused)
        } catch {
            output.failure(credentials.redactor.redact("the shared state in the bucket cannot be used: \(error)"), key: "state.store")
            throw Exit(status: .failed)
        }
    }

    /// For a command that reads without the lease (`status`): a host new to the cluster takes the
    /// bundle and version records from the bucket, so it reads the cluster the other hosts built.
    static func adopt(_ inventory: Inventory, stateDirectory: String, output: Output) async {
        guard inventory.sharesStateInBucket else { return }
        let credentials = CredentialResolver(baseDirectory: inventory.directory, redactor: Redactor())
        do {
            try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let bucket = try await BackupBucket.open(inventory, credentials: credentials)
            try await pull(BucketState(bucket: bucket, inventory: inventory, stateDirectory: stateDirectory, credentials: credentials), output: output)
        } catch {
            output.warning("the shared state in the bucket could not be read: \(credentials.redactor.redact("\(error)"))")
        }
    }

    /// What a host without them takes from the bucket: the secrets bundle and the version records.
    static func pull(_ state: BucketState, output: Output) async throws {
        if try await state.pullBundle() { output.note("secrets bundle taken from \(state.bucket.s3.describe(state.bundleKey))") }
        try await state.pullRecords()
    }

    func finish(runID: String, journal: Journal, output: Output) async {
        do {
            try await state.pushBundle()
            try await state.pushRecords()
            try await state.archive(run: runID, journal: journal)
        } catch {
            output.warning("the run's state could not be written to the bucket: \(state.credentials.redactor.redact("\(error)"))")
        }
        await lease.release()
    }
}
