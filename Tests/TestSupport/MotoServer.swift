import Foundation
import ProvisionCore
#if canImport(Glibc)
import Glibc
#endif

/// moto_server (PyPI moto[server], installed by scripts/bootstrap): an independent EC2 endpoint on
/// a loopback address of its own. With `authenticatedAfter` set, moto checks signatures once that
/// many unauthenticated calls (used to create an IAM user and key) have been made.
public final class MotoServer: @unchecked Sendable {
    // @unchecked: the Process is only touched by the test that owns this server.
    let process = Process()
    var child: ChildProcess?
    public let host: String
    public let port = 5000
    public var endpoint: URL { URL(string: "http://\(host):\(port)/")! }

    public init(authenticatedAfter: Int? = nil) async throws {
        host = Loopback.address()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["moto_server", "-H", host, "-p", "\(port)"]
        var environment = ProcessInfo.processInfo.environment
        if let count = authenticatedAfter { environment["INITIAL_NO_AUTH_ACTION_COUNT"] = "\(count)" }
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        child = try await ChildProcess.launch(process)
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if Self.accepts(host: host, port: port) { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        await stop()
        throw PeerError("moto_server did not start on \(host):\(port) (moto[server] comes from scripts/bootstrap)")
    }

    static func accepts(host: String, port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &address.sin_addr)
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    public func stop() async {
        kill(process.processIdentifier, SIGKILL)
        _ = await child?.exited()
    }
}
