import Foundation
import Testing
@testable import ProvisionCore

@Suite struct PlaybookExpansionTests {
    func expand(_ body: String, target: String? = nil) throws -> StepGraph {
        let dir = Fixtures.temporaryDirectory()
        let path = dir + "/playbook.yaml"
        try ("apiVersion: provision/v1\nkind: Playbook\nsteps:\n" + body).write(toFile: path, atomically: true, encoding: .utf8)
        let playbook = try PlaybookParser.load(path: path, catalog: corpusCatalog())
        return try PlaybookExpander(inventory: try Fixtures.inventory(), target: target).expand(playbook)
    }

    @Test func sameNodeNeedsBecomePerNodeEdges() throws {
        let graph = try expand("""
              - id: a
                uses: talos.apply-config
                forEach: all
              - id: b
                uses: talos.apply-config
                forEach: role=worker
                needs: [a]
            """)
        #expect(graph.instances.count == 5)
        #expect(graph["b@w1"]?.dependencies == ["a@w1"])
        #expect(graph["b@mini1"]?.dependencies == ["a@mini1"])
    }

    @Test func allScopeAndClusterStepsWaitForEveryInstance() throws {
        let graph = try expand("""
              - id: a
                uses: talos.apply-config
                forEach: all
              - id: boot
                uses: talos.bootstrap
                needs: [a]
              - id: c
                uses: talos.apply-config
                forEach: role=controlplane
                needs: [{step: a, scope: all}, boot]
            """)
        #expect(Set(graph["boot"]?.dependencies ?? []) == ["a@cp1", "a@w1", "a@mini1"])
        #expect(Set(graph["c@cp1"]?.dependencies ?? []) == ["a@cp1", "a@w1", "a@mini1", "boot"])
        #expect(graph.phases["c@cp1"] == 2)
    }

    @Test func whenConditionsFilterByInventoryAndNode() throws {
        let graph = try expand("""
              - id: metal
                uses: local.exec
                forEach: all
                when: node.providerKind == metal
              - id: never
                uses: local.exec
                when: cni.kind == flannel
              - id: always
                uses: local.exec
                when: secrets.encryption == plaintext and not foundation.vault
            """)
        #expect(graph.instances.map(\.id) == ["metal@mini1", "always"])
    }

    @Test func parametersAreInterpolatedPerNode() throws {
        let graph = try expand("""
              - id: a
                uses: local.exec
                forEach: role=worker,providerKind!=metal
                with: {run: [echo, "${node.name} ${node.address} ${cluster.name}"]}
            """)
        #expect(graph.instances.count == 1)
        #expect(graph["a@w1"]?.parameters.strings("run") == ["echo", "w1 127.1.0.21 test"])
    }

    @Test func targetSelectorPicksTheCommandLineNode() throws {
        let graph = try expand("  - id: a\n    uses: local.exec\n    forEach: target\n", target: "w1")
        #expect(graph.instances.map(\.id) == ["a@w1"])
    }

    @Test func inputsDigestChangesWithParametersOnly() throws {
        let one = try expand("  - id: a\n    uses: local.exec\n    with: {run: [echo, one]}\n")
        let same = try expand("  - id: a\n    uses: local.exec\n    with: {run: [echo, one]}\n")
        let two = try expand("  - id: a\n    uses: local.exec\n    with: {run: [echo, two]}\n")
        #expect(one["a"]?.inputsDigest == same["a"]?.inputsDigest)
        #expect(one["a"]?.inputsDigest != two["a"]?.inputsDigest)
    }

    @Test func criticalPathFollowsTheLongestChain() throws {
        let graph = try expand("""
              - id: slow
                uses: talos.apply-config
                forEach: name=cp1
              - id: fast
                uses: local.exec
              - id: end
                uses: talos.bootstrap
                needs: [slow, fast]
            """)
        let path = graph.criticalPath { $0.kind == "talos.apply-config" ? .seconds(10) : .seconds(1) }
        #expect(path.path == ["slow@cp1", "end"])
        #expect(path.total == .seconds(11))
    }

    @Test func untilSelectsAncestorsOnly() throws {
        let graph = try expand("""
              - id: a
                uses: local.exec
              - id: b
                uses: local.exec
                needs: [a]
              - id: c
                uses: local.exec
                needs: [b]
            """)
        #expect(graph.ancestors(ofStep: "b") == ["a", "b"])
    }
}
