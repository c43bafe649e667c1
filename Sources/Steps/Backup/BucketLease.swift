import Foundation
import Providers
import ProvisionCore
import Synchronization

/// The inventory lock shared by every host that runs this inventory (`state.backend: s3`): an
/// object created with `If-None-Match: *`, holding who holds it and a heartbeat renewed with
/// `If-Match` on its ETag (compare-and-swap). A lease whose heartbeat is older than its TTL is a dead
/// holder's and is taken over by the same compare-and-swap, so two hosts that both see it stale
/// cannot both win. Terraform's S3 lock file has no lease: a crashed run wedges it until a human
/// force-unlocks; this one frees itself.
public final class BucketLease: Sendable {
    public struct Holder: Codable, Sendable, CustomStringConvertible {
        public var runID: String
        public var host: String
        public var pid: Int32
        public var command: String
        public var since: Date
        public var heartbeat: Date
        public var ttlSeconds: Double

        public var description: String {
            "pid \(pid) on \(host) since \(ISO8601DateFormatter().string(from: since)) (\(command)), heartbeat \(Int(Date().timeIntervalSince(heartbeat)))s ago"
        }

        func stale(at now: Date) -> Bool { now.timeIntervalSince(heartbeat) > ttlSeconds }
    }

    public enum Failure: Error, CustomStringConvertible, Sendable {
        case held(key: String, holder: Holder?, waited: Duration)
        case conditionalWritesIgnored(store: String)

        public var description: String {
            switch self {
            case let .held(key, holder, waited):
                return "the inventory is locked by another run: \(holder?.description ?? "unknown holder") (waited \(DurationText.format(waited)); lease \(key)); wait for it to finish or raise --lock-timeout"
            case let .conditionalWritesIgnored(store):
                return "\(store) ignores conditional writes (a second create of the same key with If-None-Match: * was not refused), so a lock there would silently do nothing; use a store that honours them (AWS S3, Cloudflare R2, MinIO) or `state.backend: local`. Nothing was changed"
            }
        }
    }

    let bucket: BackupBucket
    public let key: String
    private struct Current {
        var etag: String
        var holder: Holder
        var lost = false
    }

    private let current: Mutex<Current>
    private let onLost = Mutex<(@Sendable () -> Void)?>(nil)
    private let beating = Mutex<Task<Void, Never>?>(nil)

    private init(bucket: BackupBucket, key: String, etag: String, holder: Holder) {
        self.bucket = bucket
        self.key = key
        current = Mutex(Current(etag: etag, holder: holder))
    }

    /// Takes the lease, waiting up to `timeout` for a live holder; `onTakeover` hears about a dead one.
    public static func acquire(bucket: BackupBucket, inventory: Inventory, stateDirectory: String, runID: String, command: String,
                               ttl: Duration, timeout: Duration, onTakeover: (Holder) -> Void) async throws -> BucketLease {
        try await probe(bucket, stateDirectory: stateDirectory)
        let key = bucket.stateKey(inventory, "lock")
        let now = Date()
        var mine = Holder(runID: runID, host: ProcessInfo.processInfo.hostName, pid: getpid(), command: command, since: now, heartbeat: now,
                          ttlSeconds: Double(ttl.components.seconds))
        let deadline = ContinuousClock.now + timeout
        var seen: Holder?
        while true {
            mine.heartbeat = Date()
            do {
                let etag = try await bucket.s3.put(key, try encode(mine), condition: .absent, contentType: "application/json")
                return start(BucketLease(bucket: bucket, key: key, etag: etag, holder: mine), ttl: ttl)
            } catch let error as S3Error where error.isPreconditionFailed {}
            if let (data, etag) = try await bucket.s3.get(key) {
                let holder = try? decode(data)
                seen = holder
                if holder.map({ $0.stale(at: Date()) }) ?? true {
                    do {
                        let taken = try await bucket.s3.put(key, try encode(mine), condition: .matches(etag), contentType: "application/json")
                        if let holder { onTakeover(holder) }
                        return start(BucketLease(bucket: bucket, key: key, etag: taken, holder: mine), ttl: ttl)
                    } catch let error as S3Error where error.isPreconditionFailed {
                        // Another host took it first: it is theirs now.
                    }
                }
            }
            if ContinuousClock.now >= deadline || Task.isCancelled { throw Failure.held(key: bucket.s3.describe(key), holder: seen, waited: timeout) }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// Once per state directory and store: a second create of a probe key must be refused with 412.
    static func probe(_ bucket: BackupBucket, stateDirectory: String) async throws {
        let marker = stateDirectory + "/bucket-conditional-writes"
        let store = "\(bucket.spec.endpoint.value.absoluteString) bucket \(bucket.spec.bucket.value)"
        if (try? String(contentsOfFile: marker, encoding: .utf8)) == store { return }
        let probe = bucket.root + "state/probe-\(UUID().uuidString.lowercased())"
        try await bucket.s3.put(probe, Data("probe".utf8), condition: .absent)
        let refused: Bool
        do {
            try await bucket.s3.put(probe, Data("probe again".utf8), condition: .absent)
            refused = false
        } catch let error as S3Error where error.isPreconditionFailed {
            refused = true
        } catch let error as S3Error where error.code == "NotImplemented" {
            refused = false
        } catch {
            try? await bucket.s3.delete(probe)
            throw error
        }
        try? await bucket.s3.delete(probe)
        guard refused else { throw Failure.conditionalWritesIgnored(store: store) }
        try PrivateFile.write(Array(store.utf8), to: marker)
    }

    /// The heartbeat: every third of the TTL, a compare-and-swap of the lease with a new heartbeat.
    /// A swap refused means another host took the lease (it judged this one dead): `whenLost` runs.
    private static func start(_ lease: BucketLease, ttl: Duration) -> BucketLease {
        let interval = ttl / 3
        let task = Task { [weak lease] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard let lease, !Task.isCancelled else { return }
                await lease.beat()
            }
        }
        lease.beating.withLock { $0 = task }
        return lease
    }

    private func beat() async {
        var now = current.withLock { $0 }
        guard !now.lost else { return }
        now.holder.heartbeat = Date()
        do {
            now.etag = try await bucket.s3.put(key, try Self.encode(now.holder), condition: .matches(now.etag), contentType: "application/json")
            current.withLock { $0 = now }
        } catch let error as S3Error where error.isPreconditionFailed {
            current.withLock { $0.lost = true }
            onLost.withLock { $0 }?()
        } catch {
            // A network blip: the next beat tries again, well within the TTL.
        }
    }

    public var lost: Bool { current.withLock { $0.lost } }

    public func whenLost(_ action: @escaping @Sendable () -> Void) { onLost.withLock { $0 = action } }

    /// Stops the heartbeat and deletes the lease if it is still ours (GET, compare, DELETE: S3 has no
    /// conditional delete, so a takeover in between is the only, harmless, race).
    public func release() async {
        beating.withLock { $0?.cancel() }
        let mine = current.withLock { $0 }
        guard !mine.lost, let (_, now) = try? await bucket.s3.get(key), now == mine.etag else { return }
        try? await bucket.s3.delete(key)
    }

    static func encode(_ holder: Holder) throws -> Data {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(holder)
    }

    static func decode(_ data: Data) throws -> Holder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(Holder.self, from: data)
    }
}
