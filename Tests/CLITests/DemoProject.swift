import Foundation
import ProvisionCore
import TestSupport

/// A copy of the repository's demo project (inventories/demo.yaml, lab/, images/, playbooks/) in a
/// scratch folder, whose inventory a test edits as a user edits theirs, with its own state directory.
struct DemoProject {
    let dir: String
    var state: String { dir + "/state" }
    var inventoryFile: String { dir + "/inventories/demo.yaml" }

    init() throws {
        dir = temporaryDirectory()
        for folder in ["inventories", "images", "lab", "playbooks"] {
            try FileManager.default.createDirectory(atPath: "\(dir)/\(folder)", withIntermediateDirectories: true)
            for name in try FileManager.default.contentsOfDirectory(atPath: "\(repositoryRoot)/\(folder)") where !name.hasPrefix(".") {
                try FileManager.default.copyItem(atPath: "\(repositoryRoot)/\(folder)/\(name)", toPath: "\(dir)/\(folder)/\(name)")
            }
        }
    }

    func edit(_ transform: (String) -> String) throws {
        let text = try String(contentsOfFile: inventoryFile, encoding: .utf8)
        let changed = transform(text)
        guard changed != text else { throw CLIError("the inventory edit changed nothing") }
        try changed.write(toFile: inventoryFile, atomically: true, encoding: .utf8)
    }

    /// Adds `patch` (a one-line YAML mapping) to `node`'s patches, after its one-line install.
    func patch(_ node: String, _ patch: String) throws {
        try edit { text in
            guard let start = text.range(of: "  - name: \(node)\n"), let install = text.range(of: "    install: {", range: start.upperBound..<text.endIndex),
                  let end = text.range(of: "\n", range: install.upperBound..<text.endIndex) else { return text }
            return String(text[..<end.lowerBound]) + "\n    patches:\n      - \(patch)" + String(text[end.lowerBound...])
        }
    }

    /// Runs provision in the project with its state directory.
    func run(_ arguments: [String], timeout: Duration = .seconds(150)) async throws -> CLI.Result {
        try await CLI.run(arguments + ["--state-dir", state], cwd: dir, timeout: timeout)
    }

    func running(_ arguments: [String]) throws -> CLI.Running {
        try CLI.Running(arguments + ["--state-dir", state], cwd: dir, environment: [:])
    }

    /// `provision lab serve demo` for this project, once its EC2 endpoint answers.
    func serve() async throws -> CLI.Running {
        let lab = try running(["lab", "serve", "demo"])
        guard try await lab.waitFor(timeout: .seconds(60), { lines in lines.contains { $0.hasPrefix("ec2  ") } }) else {
            throw CLIError("the lab did not start: \(lab.lines)")
        }
        return lab
    }

    func kubectl(_ arguments: [String]) async throws -> Subprocess.Result {
        var environment = ProcessInfo.processInfo.environment
        environment["KUBECONFIG"] = state + "/kubeconfig"
        return try await Subprocess.run(["kubectl"] + arguments, environment: environment)
    }

    /// Each node's boot ID as the lab's twin holds it (an in-process lab saves it after every command).
    func bootIDs() throws -> [String: String] {
        let twin = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: state + "/lab/twin.json"))) as? [String: Any]
        let nodes = twin?["nodes"] as? [[String: Any]] ?? []
        return Dictionary(uniqueKeysWithValues: nodes.compactMap { node in
            (node["name"] as? String).map { ($0, node["bootID"] as? String ?? "") }
        })
    }

    func json(_ result: CLI.Result) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]) ?? [:]
    }

    struct CLIError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
