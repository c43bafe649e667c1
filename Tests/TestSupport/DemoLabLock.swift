import Foundation

/// The demo inventory's fixed loopback addresses (127.0.0.11:50000, 127.0.0.10:6443, the WoL and EC2
/// ports) can host one lab at a time: tests that run the demo through the CLI take this in turn.
public enum DemoLabLock {
    static let lock = TurnLock()

    /// Runs `body` holding the demo addresses, once the last holder's lab has let go of them (a
    /// test that ends with SIGINT to its served lab does not wait for that process to exit).
    public static func exclusive<T: Sendable>(_ body: @Sendable () async throws -> T) async rethrows -> T {
        try await lock.holding(ready: {
            // The EC2 endpoint and the stand-in Image Factory: the last two things a lab lets go of.
            await waitUntilFree(port: 45000)
            await waitUntilFree(port: 45100)
        }, body)
    }

    /// Waits (up to 30 s) until nothing listens on 127.0.0.1:`port`.
    static func waitUntilFree(port: UInt16) async {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, listening(port) { try? await Task.sleep(for: .milliseconds(100)) }
    }

    static func listening(_ port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
