import Foundation
import Testing
import ProvisionCore

/// A credential an inventory references never shows in stdout, stderr, the trace log or the journal,
/// even when a command prints it.
@Suite struct SecretsInOutputTests {
    @Test(arguments: [true, false])
    func credentialValuesAreRedactedEverywhere(json: Bool) async throws {
        let secret = "pve-secret-value-4242-abcdef"
        let dir = try CLI.project(playbooks: ["leak": """
              - id: leak
                uses: local.exec
                with: {run: "echo token is $TEST_PVE_SECRET; exit 3"}
            """])
        let result = try await CLI.run(["up", "lab", "--playbook", "leak", "--state-dir", dir + "/state"] + (json ? ["--json"] : []),
                                       cwd: dir, environment: ["TEST_PVE_SECRET": secret])
        #expect(result.status == 1)
        var everything = result.stdout + result.stderr
        let logs = try FileManager.default.contentsOfDirectory(atPath: dir + "/state/logs")
        #expect(!logs.isEmpty, "a trace log is always written")
        for log in logs { everything += try String(contentsOfFile: "\(dir)/state/logs/\(log)", encoding: .utf8) }
        let journal = try Journal(path: dir + "/state/journal.sqlite")
        everything += try journal.allAttempts().map { "\($0.error ?? "") \($0.outputs ?? "")" }.joined()
        everything += try String(decoding: Data(contentsOf: URL(fileURLWithPath: dir + "/state/journal.sqlite")), as: UTF8.self)
        #expect(!everything.contains(secret))
        #expect(everything.contains("token is «redacted»"))
    }
}
