import Foundation
import KubeKit
import Testing
import TestSupport
@testable import Lab
@testable import ProvisionCore
@testable import TalosKit

/// The cluster's VIP as Talos runs it: nobody answers at it before a control plane's etcd is up,
/// then the first control plane in line holds it; a holder that reboots hands it on at once.
@Suite struct LabVIPTests {
    @Test(.timeLimit(.minutes(2))) func theVIPAnswersOnlyWithEtcdUpAndMovesWhenItsHolderReboots() async throws {
        let lab = try TalosLab(nodes: ["cp1", "cp2", "cp3"])
        await lab.cluster.powerOnAll()
        let endpoint = try #require(URL(string: lab.inventory.cluster.endpoint.value))
        let api = try await lab.kubeAPI()
        defer { Task { await api.stop() } }
        let configured = try await lab.run(TalosLab.upToConfigured)
        #expect(configured.succeeded, "\(configured.errors)")
        try await Task.sleep(for: .milliseconds(200))
        #expect(await api.vipHolder == nil, "configured, not bootstrapped: no etcd, no VIP")

        let run = try await lab.run()
        #expect(run.succeeded, "\(run.errors)")
        let client = try KubeClient(config: try Kubeconfig.load(path: "\(lab.state)/kubeconfig"))
        defer { Task { await client.shutdown() } }
        let first = try await eventually(timeout: .seconds(20)) { () async throws -> String in
            guard let holder = await api.vipHolder else { throw CancellationError() }
            return holder
        }
        #expect(try await client.raw(.GET, "/version").0 == 200, "the holder answers at the VIP")

        _ = try await lab.admin(first).reboot()
        let next = try await eventually(timeout: .seconds(20)) { () async throws -> String in
            guard let holder = await api.vipHolder, holder != first else { throw CancellationError() }
            return holder
        }
        #expect(["cp1", "cp2", "cp3"].contains(next))
        let status = try await eventually(timeout: .seconds(20)) { try await client.raw(.GET, "/version").0 }
        #expect(status == 200, "the next control plane answers at the VIP")
        let notes = lab.cluster.record.entries.filter { $0.event == "vip" }.compactMap { "\($0.node ?? "") \($0.detail ?? "")" }
        #expect(notes.contains("\(first) released \(endpoint.host!): gave it up: it is going down"), "\(notes)")
    }
}
