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

    public static func address() -> String {
        lock.lock()
        defer { lock.unlock() }
        next += 1
        let base = Int(getpid() % 200) * 256 + next
        return "127.77.\(base / 256 % 256).\(base % 256 == 0 ? 1 : base % 256)"
    }
}
