import Foundation
import ProvisionCore

/// Tests/Interop/s3_proxy.py in front of a moto_server: a store that ignores conditional writes
/// (`stripConditional`), or one whose PUTs to some keys fail (`failPut`).
public final class S3Proxy: Sendable {
    let server: BackgroundProcess
    public let host: String
    public let port = 5000
    public var endpoint: URL { URL(string: "http://\(host):\(port)/")! }

    public init(upstream: URL, stripConditional: Bool = false, failPut: String? = nil) async throws {
        host = Loopback.address()
        var arguments = ["python3", "\(repositoryRoot)/Tests/Interop/s3_proxy.py", host, "\(port)", upstream.absoluteString]
        if stripConditional { arguments.append("--strip-conditional") }
        if let failPut { arguments += ["--fail-put", failPut] }
        server = try await BackgroundProcess(arguments)
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if TCPProbe.answers(host: host, port: port) { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        await stop()
        throw PeerError("the S3 proxy did not start on \(host):\(port)")
    }

    public func stop() async { await server.stop() }
}
