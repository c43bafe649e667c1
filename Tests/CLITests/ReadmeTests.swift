import Foundation
import Testing
import TestSupport

/// Keeps the README true: its command lines run with the exit codes it states, and its YAML examples
/// are verbatim excerpts of the shipped files.
@Suite struct ReadmeTests {
    static let text = (try? String(contentsOfFile: repositoryRoot + "/README.md", encoding: .utf8)) ?? ""

    static func blocks(_ language: String) -> [[String]] {
        var blocks: [[String]] = [], current: [String]?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if current == nil, line == "```\(language)" { current = [] } else if current != nil, line == "```" {
                blocks.append(current!)
                current = nil
            } else if current != nil { current!.append(line) }
        }
        return blocks
    }

    /// `COMMAND   # exit N…` → (arguments, N)
    static func commands() -> [(arguments: [String], exit: Int32, line: String)] {
        blocks("sh").flatMap { $0 }.compactMap { line in
            let parts = line.components(separatedBy: "# exit ")
            guard parts.count == 2, let code = Int32(parts[1].prefix { $0.isNumber }) else { return nil }
            var command = parts[0].trimmingCharacters(in: .whitespaces)
            if let range = command.range(of: ".build/debug/provision ") { command = String(command[range.upperBound...]) }
            else if command.hasPrefix("provision ") { command = String(command.dropFirst("provision ".count)) }
            else { return nil }
            return (command.split(separator: " ").map(String.init), code, line)
        }
    }

    @Test func startsWithTheTwoNewcomerCommands() {
        let first = Self.blocks("sh").first ?? []
        #expect(first.count == 2)
        #expect(first.first?.hasPrefix("scripts/bootstrap && .build/debug/provision up demo") == true)
        #expect(first.last?.hasPrefix("scripts/test") == true)
        #expect(Self.text.hasPrefix("# provision\n\n```sh\n"))
    }

    @Test func everyAnnotatedCommandExitsAsDocumented() async throws {
        let commands = Self.commands()
        #expect(commands.count >= 12)
        // One state directory for the whole block, as a user's commands would share one.
        let state = FileManager.default.temporaryDirectory.path + "/readme-\(UUID())"
        for command in commands {
            let result = try await DemoLabLock.exclusive { try await CLI.run(command.arguments + ["--state-dir", state], timeout: .seconds(150)) }
            #expect(result.status == command.exit, "README line `\(command.line)` exited \(result.status):\n\(result.stderr)")
        }
    }

    @Test func yamlExamplesAreExcerptsOfShippedFiles() throws {
        let shipped = try ["inventories/homelab.yaml", "playbooks/up.yaml"].map {
            try String(contentsOfFile: repositoryRoot + "/" + $0, encoding: .utf8)
        }.joined(separator: "\n")
        let lines = Set(shipped.split(separator: "\n").map { String($0) })
        for block in Self.blocks("yaml") {
            for line in block where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                #expect(lines.contains(line), "README YAML line not found verbatim in the shipped files: `\(line)`")
            }
        }
    }
}
