import Foundation

/// The repository's root, for test fixtures and interop peers.
public let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

public func temporaryDirectory() -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("provision-peer-\(UUID().uuidString)").path
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

public struct PeerError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Hands out loopback addresses no other test in this process uses (127.77.x.y), so simulated
/// nodes on port 50000 never collide. Loopback only: the network rule.
public enum Loopback {
    nonisolated(unsafe) private static var next = 0
    private static let lock = NSLock()

    nonisolated(unsafe) private static var nextNetwork = 0

    /// A /24 of this test process's own ("127.78.N"), for a lab with a DHCP pool and a scan.
    public static func network() -> String {
        lock.lock()
        defer { lock.unlock() }
        nextNetwork += 1
        let n = Int(getpid() % 64) * 8 + nextNetwork % 8
        return "127.\(78 + n / 256).\(n % 256)"
    }

    public static func address() -> String {
        lock.lock()
        defer { lock.unlock() }
        next += 1
        let base = Int(getpid() % 200) * 256 + next
        return "127.77.\(base / 256 % 256).\(base % 256 == 0 ? 1 : base % 256)"
    }
}
