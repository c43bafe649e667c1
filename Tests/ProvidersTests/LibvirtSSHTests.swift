import Foundation
import Testing
import TestSupport
@testable import Providers
@testable import ProvisionCore

/// libvirt's `qemu+ssh` transport against a real OpenSSH server on loopback (Unraid is reached this
/// way): an unknown host key and a refused key are each named with what to do, not libvirt's text;
/// with both right, the same URI reaches the real libvirtd. The client is the system's `ssh`, as
/// libvirt runs it, through `command=` so that its known_hosts is the test's own file. In CI a
/// missing sshd is a failure, not a skip.
@Suite(.serialized) struct LibvirtSSHTests {
    @Test(.timeLimit(.minutes(5))) func anUnknownHostAndARefusedKeyAreNamedAndTheRightKeyConnects() async throws {
        guard FileManager.default.fileExists(atPath: "/usr/sbin/sshd"), RealLibvirtd.missing == nil else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("sshd or libvirtd is missing (scripts/bootstrap installs them)") }
            return
        }
        try await QuietMachine.exclusive {
            let daemon = try await RealLibvirtd()
            let dir = temporaryDirectory()
            for key in ["host", "client", "stranger"] {
                let made = try await Subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", key, "-f", "\(dir)/\(key)"])
                #expect(made.status == 0, "\(made.stderr)")
            }
            try FileManager.default.copyItem(atPath: "\(dir)/client.pub", toPath: "\(dir)/authorized_keys")
            let port = 20000 + Int(getpid() % 20000)
            try """
                Port \(port)
                ListenAddress 127.0.0.1
                HostKey \(dir)/host
                AuthorizedKeysFile \(dir)/authorized_keys
                PermitRootLogin prohibit-password
                PasswordAuthentication no
                KbdInteractiveAuthentication no
                UsePAM no
                StrictModes no
                PidFile \(dir)/sshd.pid
                """.write(toFile: "\(dir)/sshd_config", atomically: true, encoding: .utf8)
            try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
            let sshd = try await BackgroundProcess(["/usr/sbin/sshd", "-D", "-e", "-f", "\(dir)/sshd_config"])
            do { try await check(dir: dir, port: port) } catch { Issue.record("\(error)") }
            await sshd.stop()
            await daemon.stop()
        }
    }

    func check(dir: String, port: Int) async throws {
        try await Task.sleep(for: .seconds(1))
        // The ssh libvirt runs, with the test's known_hosts.
        try "#!/bin/sh\nexec ssh -o UserKnownHostsFile=\(dir)/known_hosts \"$@\"\n".write(toFile: "\(dir)/ssh", atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: "\(dir)/ssh")
        func uri(_ key: String) -> String { "qemu+ssh://root@127.0.0.1:\(port)/system?no_tty=1&keyfile=\(dir)/\(key)&command=\(dir)/ssh" }
        func failure(_ key: String) -> String {
            do { _ = try LibvirtConnection(uri: uri(key)); return "connected" } catch { return "\(error)" }
        }

        let unknown = failure("client")
        #expect(unknown.contains("SSH host key is not in known_hosts") && unknown.contains("ssh root@127.0.0.1 true"), "\(unknown)")

        let hostKey = try String(contentsOfFile: "\(dir)/host.pub", encoding: .utf8)
        try "[127.0.0.1]:\(port) \(hostKey)".write(toFile: "\(dir)/known_hosts", atomically: true, encoding: .utf8)
        let refused = failure("stranger")
        #expect(refused.contains("refused the key") && refused.contains("Users -> root -> SSH authorized keys"), "\(refused)")

        let connection = try LibvirtConnection(uri: uri("client"))
        #expect(try connection.state(of: "provision-no-such-domain") == nil, "the right key reaches the real libvirtd over SSH")
    }
}
