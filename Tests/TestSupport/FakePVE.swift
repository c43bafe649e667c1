import Foundation
import ProvisionCore
#if canImport(Glibc)
import Glibc
#endif

/// fakepve (PyPI fakepve[crypto]: a Proxmox VE API fake carrying PVE's real schema and error texts),
/// started by Tests/Interop/fakepve_serve.py on a loopback address of its own, HTTPS on 8006 with a
/// fresh certificate whose fingerprint `fingerprint` holds. The token secret goes by environment.
public final class FakePVE: @unchecked Sendable {
    // @unchecked: `fingerprint` is set once in init, before the instance is shared.
    let server: BackgroundProcess
    public let host: String
    public let port = 8006
    public let tokenID: String
    public let secret = UUID().uuidString.lowercased()
    /// root@pam's password, for ticket sign-in.
    public let password = UUID().uuidString
    public private(set) var fingerprint = ""

    /// `faults`: fakepve `fail()` calls as JSON objects (method, suffix, error or status+message, times).
    /// `guest`: attributes of every VM created over the API (`shutdown_secs`, `agent`, ...).
    /// `arguments`: more of fakepve_serve.py's options (`--pve-version`, `--pvestatd-secs`,
    /// `--create-secs`, `--time-scale`, `--grants`), which make it answer as PVE does where it is faster.
    /// `tokenID`: the API token's id; one under root@pam holds every privilege, as on PVE.
    public init(faults: String = "[]", guest: String = "{}", arguments: [String] = [], tokenID: String = "root@pam!provision") async throws {
        self.tokenID = tokenID
        let host = Loopback.address()
        self.host = host
        let dir = temporaryDirectory()
        server = try await BackgroundProcess(["python3", "\(repositoryRoot)/Tests/Interop/fakepve_serve.py", "--host", host, "--ready", dir + "/ready", "--faults", faults, "--guest", guest] + arguments,
                                             environment: ["PVE_TEST_TOKEN": "\(tokenID)=\(secret)", "PVE_TEST_PASSWORD": password])
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let text = try? String(contentsOfFile: dir + "/ready", encoding: .utf8), !text.isEmpty {
                fingerprint = text.trimmingCharacters(in: .whitespacesAndNewlines)
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        await stop()
        throw PeerError("fakepve did not start on \(host):8006 (fakepve[crypto] comes from scripts/bootstrap)")
    }

    public func stop() async { await server.stop() }
}
