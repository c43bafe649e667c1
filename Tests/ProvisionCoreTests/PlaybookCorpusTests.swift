import Foundation
import Testing
@testable import ProvisionCore

/// A catalog with the kinds the corpus names: a node-scoped Talos kind and a generic one.
func corpusCatalog() -> StepCatalog {
    var catalog = StepCatalog()
    catalog.declare(StepKindInfo(name: "talos.apply-config", summary: "", estimate: .seconds(5), scope: .node))
    catalog.declare(StepKindInfo(name: "talos.bootstrap", summary: "", estimate: .seconds(5), scope: .cluster))
    catalog.declare(StepKindInfo(name: "local.exec", summary: "", estimate: .seconds(1), parameters: ["run", "creates", "chdir"]))
    return catalog
}

@Suite struct PlaybookCorpusTests {
    static let files = Fixtures.files(in: "bad-playbooks")

    @Test func corpusIsLargeEnough() {
        #expect(Self.files.count >= 10)
    }

    @Test(arguments: files)
    func badPlaybookIsRefusedAtTheRightPlace(_ file: String) throws {
        let name = URL(fileURLWithPath: file).lastPathComponent
        let inventory = try Fixtures.inventory()
        var diagnostics: [Diagnostic] = []
        do {
            let playbook = try PlaybookParser.load(path: file, catalog: corpusCatalog())
            _ = try PlaybookExpander(inventory: inventory).expand(playbook)
            Issue.record("\(name) was accepted")
        } catch {
            diagnostics = error.diagnostics
        }
        let expected = Fixtures.expectations(of: file)
        #expect(!expected.isEmpty)
        for expectation in expected {
            let found = diagnostics.contains { $0.key == expectation.key && $0.location.line == expectation.line && $0.location.column == expectation.column }
            #expect(found, "\(name): expected \(expectation.key) at \(expectation.line ?? 0):\(expectation.column ?? 0); got:\n\(diagnostics.map(\.description).joined(separator: "\n"))")
        }
    }

    @Test func unknownKindSuggestsTheIntendedOne() throws {
        let error = #expect(throws: InputError.self) {
            try PlaybookParser.load(path: Fixtures.path("bad-playbooks/unknown-kind.yaml"), catalog: corpusCatalog())
        }
        #expect(error?.diagnostics.first?.message.contains("did you mean `talos.apply-config`") == true)
    }

    @Test func cycleIsNamedWithItsPath() throws {
        let error = #expect(throws: InputError.self) {
            try PlaybookParser.load(path: Fixtures.path("bad-playbooks/cycle.yaml"), catalog: corpusCatalog())
        }
        #expect(error?.diagnostics.contains { $0.message.contains("a -> b -> a") } == true)
    }
}
