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
            if TCPProbe.answers(host: host, port: port) { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        await stop()
        throw PeerError("moto_server did not start on \(host):\(port) (moto[server] comes from scripts/bootstrap)")
    }

    public func stop() async {
        kill(process.processIdentifier, SIGKILL)
        _ = await child?.exited()
    }
}
