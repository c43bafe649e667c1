import Foundation
import TestSupport
@testable import ProvisionCore

/// Paths to the shared fixtures under Tests/Fixtures.
enum Fixtures {
    static let root = repositoryRoot + "/Tests/Fixtures"

    static func path(_ relative: String) -> String { "\(root)/\(relative)" }

    static func files(in folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path(folder))) ?? []).filter { $0.hasSuffix(".yaml") }.sorted()
            .map { path("\(folder)/\($0)") }
    }

    /// `# expect: LINE:COLUMN KEY` (or `# expect: any KEY`) lines written into a corpus file.
    static func expectations(of file: String) -> [(line: Int?, column: Int?, key: String)] {
        guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("# expect: ") else { return nil }
            let parts = line.dropFirst("# expect: ".count).split(separator: " ")
            guard parts.count == 2 else { return nil }
            if parts[0] == "any" { return (nil, nil, String(parts[1])) }
            let position = parts[0].split(separator: ":").compactMap { Int($0) }
            return (position[0], position[1], String(parts[1]))
        }
    }

    static func inventory(_ relative: String = "inventories/base.yaml") throws -> Inventory {
        try InventoryParser.load(path: path(relative)).0
    }

    static func temporaryDirectory() -> String { TestSupport.temporaryDirectory() }
}
