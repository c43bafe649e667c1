import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whether something accepts TCP connections at an address, decided within `timeout` and without
/// blocking the calling thread longer than that (a blocking connect to a full backlog can take
/// seconds, and a concurrency-pool thread must never sit in one).
public enum TCPProbe {
    public static func answers(host: String, port: Int, timeout: Duration = .milliseconds(500)) -> Bool {
        answeringNow([host], port: port, timeout: timeout).contains(host)
    }

    /// Which of `hosts` accept a TCP connection on `port`: one non-blocking connect each, all
    /// waited for together (one `poll`, at most `timeout`), on a thread outside Swift's pool so a
    /// slow network never stalls other work. Hosts the network policy forbids are not dialled.
    public static func answering(_ hosts: [String], port: Int, timeout: Duration = .milliseconds(500)) async -> Set<String> {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: answeringNow(hosts, port: port, timeout: timeout)) }
        }
    }

    static func answeringNow(_ hosts: [String], port: Int, timeout: Duration) -> Set<String> {
        var pending: [(host: String, fd: Int32)] = []
        var found: Set<String> = []
        defer { for entry in pending { close(entry.fd) } }
        for host in hosts where NetworkPolicy.current.permits(host: host) {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { continue }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            guard let address = IPv4Socket.address(host, port: port) else { close(fd); continue }
            let result = IPv4Socket.withSockaddr(address) { connect(fd, $0, $1) }
            if result == 0 { found.insert(host); close(fd); continue }
            guard errno == EINPROGRESS else { close(fd); continue }
            pending.append((host, fd))
        }
        let deadline = ContinuousClock.now + timeout
        while !pending.isEmpty, ContinuousClock.now < deadline {
            var descriptors = pending.map { pollfd(fd: $0.fd, events: Int16(POLLOUT), revents: 0) }
            let left = deadline - ContinuousClock.now
            let milliseconds = Int32(max(1, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
            guard poll(&descriptors, nfds_t(descriptors.count), milliseconds) > 0 else { break }
            var still: [(host: String, fd: Int32)] = []
            for (index, entry) in pending.enumerated() {
                guard descriptors[index].revents != 0 else { still.append(entry); continue }
                var error: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(entry.fd, SOL_SOCKET, SO_ERROR, &error, &length)
                if error == 0 { found.insert(entry.host) }
                close(entry.fd)
            }
            pending = still
        }
        return found
    }
}
