import Foundation
import Testing
import TalosKit
import ProvisionCore

@Suite struct ConfigCommandTests {
    @Test func renderPrintsRedactedAndOutputWritesTheRealConfigPrivately() async throws {
        let dir = try CLI.project()
        let state = dir + "/state"
        #expect(try await CLI.run(["secrets", "init", "lab", "--state-dir", state], cwd: dir).status == 0)
        let bundle = try SecretsBundle.load(path: state + "/secrets.yaml")
        let printed = try await CLI.run(["config", "render", "lab", "cp1", "--state-dir", state], cwd: dir)
        #expect(printed.status == 0, "\(printed.stderr)")
        #expect(printed.stdout.contains("kind: HostnameConfig"))
        #expect(printed.stdout.contains("«redacted»"))
        for secret in bundle.secretValues { #expect(!(printed.stdout + printed.stderr).contains(secret)) }
        let written = try await CLI.run(["config", "render", "lab", "cp1", "--output", dir + "/configs", "--state-dir", state], cwd: dir)
        #expect(written.stdout == dir + "/configs/cp1.yaml")
        let file = dir + "/configs/cp1.yaml"
        #expect(try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int == 0o600)
        #expect(try String(contentsOfFile: file, encoding: .utf8).contains(bundle.os.key), "the written config is the real one")
    }

    @Test func invalidPatchExits64AndWritesNothing() async throws {
        let dir = try CLI.project()
        let path = dir + "/inventories/lab.yaml"
        let text = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(
            of: "    install: {disk: /dev/sda}\n  - name: w1",
            with: "    install: {disk: /dev/sda}\n    patches:\n      - machine: {kubelet: {extraArgs: [not, a, map]}}\n  - name: w1")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let state = dir + "/state"
        _ = try await CLI.run(["secrets", "init", "lab", "--state-dir", state], cwd: dir)
        let result = try await CLI.run(["config", "render", "lab", "cp1", "--output", dir + "/configs", "--state-dir", state], cwd: dir)
        #expect(result.status == 64)
        #expect(result.stderr.contains("machine.kubelet.extraArgs: expected object"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/configs/cp1.yaml"))
    }

    @Test func renderAllWritesEveryNodeAndPoolOrNothing() async throws {
        let dir = try CLI.project()
        let state = dir + "/state"
        _ = try await CLI.run(["secrets", "init", "lab", "--state-dir", state], cwd: dir)
        let printing = try await CLI.run(["config", "render", "lab", "--all", "--state-dir", state], cwd: dir)
        #expect(printing.status == 64, "--all needs --output")
        let result = try await CLI.run(["config", "render", "lab", "--all", "--output", dir + "/all", "--state-dir", state], cwd: dir)
        #expect(result.status == 0, "\(result.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/all").sorted()
        #expect(files == ["cp1.yaml", "gpu.yaml", "mini1.yaml", "w1.yaml"])
        #expect(result.stdout.split(separator: "\n").count == 4)
    }

    @Test func unknownNodeSuggests() async throws {
        let result = try await CLI.run(["config", "render", "homelab", "mini1", "--state-dir", NSTemporaryDirectory() + "x-\(UUID())"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("did you mean `mini01`"))
    }
}
