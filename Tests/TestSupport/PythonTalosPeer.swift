import Foundation
import ProvisionCore
#if canImport(Glibc)
import Glibc
#endif

/// An independent Talos API peer: Tests/Interop/talos_peer.py, built on the talos-linux-api
/// bindings' MachineServiceBase over grpclib and Python's TLS, with an Ed25519 certificate.
public final class PythonPeer: @unchecked Sendable {
    // @unchecked: `port`, `log` and the server are set once in init, before the peer is shared.
    var server: BackgroundProcess?
    public private(set) var port = 0
    var log = ""

    /// What the peer received, one JSON object per call.
    public var calls: [[String: Any]] {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }
    public let spkiPin: String

    /// The certificate the peer presents.
    public enum Identity: Sendable {
        /// Talos' maintenance identity: self-signed, CN maintenance-service.talos.dev.
        case maintenance
        /// Self-signed for some other name: neither maintenance nor any cluster's node.
        case selfSigned(commonName: String)
        /// Issued by this CA (PEM files), as a configured node's certificate is.
        case issued(by: (crt: String, key: String))
    }

    /// Whether the peer asks for a client certificate, and whether it insists on one.
    public enum ClientCertificates: Sendable {
        case notRequested
        /// Asked for and verified against this CA, refused when missing: a configured Talos node.
        case required(ca: String)
        /// Asked for but not insisted on: a proxy or misconfigured node that must not be taken
        /// for maintenance mode.
        case optional
    }

    /// Maintenance (self-signed) by default; with `authority`, a configured node: server certificate
    /// issued by that OS CA (PEM files) and client certificates required.
    public convenience init(authority: (crt: String, key: String)? = nil) async throws {
        if let authority {
            try await self.init(identity: .issued(by: authority), clientCertificates: .required(ca: authority.crt))
        } else {
            try await self.init(identity: .maintenance, clientCertificates: .notRequested)
        }
    }

    /// A peer on `bind`:`port` (0: any free port) presenting `identity`.
    public init(identity: Identity, clientCertificates: ClientCertificates, bind: String = "127.0.0.1", port: Int = 0) async throws {
        let dir = temporaryDirectory()
        let issue: String
        switch identity {
        case let .issued(ca):
            issue = """
            printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\nkeyUsage=digitalSignature\\n' > ext.cnf && \
            openssl req -new -key key.pem -subj /CN=cp1 -out req.csr 2>/dev/null && \
            openssl x509 -req -in req.csr -CA '\(ca.crt)' -CAkey '\(ca.key)' -CAcreateserial -days 1 -extfile ext.cnf -out cert.pem 2>/dev/null &&
            """
        case .maintenance:
            issue = "openssl req -x509 -new -key key.pem -subj /CN=maintenance-service.talos.dev -days 1 -out cert.pem 2>/dev/null && "
        case let .selfSigned(name):
            issue = "openssl req -x509 -new -key key.pem -subj '/CN=\(name)' -days 1 -out cert.pem 2>/dev/null && "
        }
        let keygen = try await Subprocess.run(["sh", "-c", """
            cd '\(dir)' && openssl genpkey -algorithm ed25519 -out key.pem 2>/dev/null && \(issue) \
            openssl x509 -in cert.pem -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | base64
            """])
        guard keygen.status == 0 else { throw PeerError("openssl could not make the peer certificate: \(keygen.stderr)") }
        spkiPin = keygen.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        log = dir + "/calls.jsonl"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let clientArguments: [String]
        switch clientCertificates {
        case .notRequested: clientArguments = []
        case let .required(ca): clientArguments = ["--client-ca", ca]
        // Python needs some CA to check a certificate against; its own will do (none ever verifies).
        case .optional: clientArguments = ["--client-ca", dir + "/cert.pem", "--client-cert", "optional"]
        }
        server = try await BackgroundProcess(["python3", "\(repositoryRoot)/Tests/Interop/talos_peer.py", "--cert", dir + "/cert.pem", "--key", dir + "/key.pem",
                                              "--bind", bind, "--port", "\(port)", "--ready", dir + "/ready"] + clientArguments, stdout: log)
        // The file can exist before its content is written: wait for a port, not for the file.
        func readyPort() -> Int { Int((try? String(contentsOfFile: dir + "/ready", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0 }
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline, readyPort() == 0 {
            try await Task.sleep(for: .milliseconds(50))
        }
        self.port = readyPort()
        guard self.port > 0 else { throw PeerError("the Python Talos peer did not start (talos-linux-api and grpclib come from scripts/bootstrap)") }
    }

    public func stop() async { await server?.stop() }
}
