import Foundation
import ProvisionCore
#if canImport(Glibc)
import Glibc
#endif

/// moto_server (PyPI moto[server], installed by scripts/bootstrap): an independent EC2 endpoint on
/// a loopback address of its own. With `authenticatedAfter` set, moto checks signatures once that
/// many unauthenticated calls (used to create an IAM user and key) have been made.
public final class MotoServer: Sendable {
    let server: BackgroundProcess
    public let host: String
    public let port = 5000
    public var endpoint: URL { URL(string: "http://\(host):\(port)/")! }

    public init(authenticatedAfter: Int? = nil) async throws {
        let host = Loopback.address()
        self.host = host
        server = try await BackgroundProcess(["moto_server", "-H", host, "-p", "5000"],
                                             environment: authenticatedAfter.map { ["INITIAL_NO_AUTH_ACTION_COUNT": "\($0)"] } ?? [:])
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if TCPProbe.answers(host: host, port: port) { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        await stop()
        throw PeerError("moto_server did not start on \(host):\(port) (moto[server] comes from scripts/bootstrap)")
    }

    public func stop() async { await server.stop() }
}
