import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One lock per inventory so overlapping runs (two cron lines, a person and cron) never interleave.
///
/// It is an advisory `flock` on `<state>/lock`: the kernel drops it when the holder dies, even on
/// `kill -9`, so a dead holder can never wedge cron. The file also records who holds it (pid, host,
/// since, command) so a waiting run can name the holder, and so a takeover after a crash is reported.
public final class InventoryLock: Sendable {
    public struct Holder: Sendable, Codable, CustomStringConvertible {
        public var pid: Int32
        public var host: String
        public var since: Date
        public var command: String
        /// False while held; set true by a clean release, so a takeover can tell a crash from an exit.
        public var released: Bool

        public var description: String {
            "pid \(pid) on \(host) since \(ISO8601DateFormatter().string(from: since)) (\(command))"
        }
    }

    public let path: String
    private let descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    /// Waits up to `timeout` for the lock. `onStale` hears about a holder that died without releasing.
    public static func acquire(stateDirectory: String, command: String, timeout: Duration,
                               onStale: (Holder) -> Void = { _ in }) async throws(LockError) -> InventoryLock {
        let path = stateDirectory + "/lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LockError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        let deadline = ContinuousClock.now + timeout
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                close(fd)
                throw LockError.cannotOpen(path: path, reason: String(cString: strerror(errno)))
            }
            if ContinuousClock.now >= deadline || Task.isCancelled {
                let holder = readHolder(fd)
                close(fd)
                throw LockError.held(path: path, holder: holder, waited: timeout)
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        if let previous = readHolder(fd), !previous.released {
            onStale(previous)
        }
        let lock = InventoryLock(path: path, descriptor: fd)
        lock.writeHolder(Holder(pid: getpid(), host: ProcessInfo.processInfo.hostName, since: Date(), command: command, released: false))
        return lock
    }

    /// Marks the lock released and drops it. Safe to call once; the kernel also drops it at exit.
    public func release() {
        if var holder = Self.readHolder(descriptor) {
            holder.released = true
            writeHolder(holder)
        }
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }

    private func writeHolder(_ holder: Holder) {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        guard let data = try? encoder.encode(holder) else { return }
        ftruncate(descriptor, 0)
        _ = data.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        fsync(descriptor)
    }

    static func readHolder(_ fd: Int32) -> Holder? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = pread(fd, &buffer, buffer.count, 0)
        guard count > 0 else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(Holder.self, from: Data(buffer[0..<count]))
    }
}

public enum LockError: Error, Sendable, CustomStringConvertible {
    case held(path: String, holder: InventoryLock.Holder?, waited: Duration)
    case cannotOpen(path: String, reason: String)

    public var description: String {
        switch self {
        case let .held(path, holder, waited):
            return "the inventory is locked by another run: \(holder?.description ?? "unknown holder") (waited \(DurationText.format(waited)); lock file \(path)); wait for it to finish or raise --lock-timeout"
        case let .cannotOpen(path, reason):
            return "cannot open lock file \(path): \(reason)"
        }
    }
}
