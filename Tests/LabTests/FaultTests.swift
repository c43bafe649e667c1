import Foundation
import Lab
import ProvisionCore
import Testing
import TestSupport
@testable import TalosKit

/// Each injected fault shows up as the typed error (or retry) a step acts on, and no call waits
/// past its deadline.
@Suite struct FaultTests {
    @Test func nodeThatNeverBootsIsUnreachableAndTransient() async throws {
        let lab = try LabFixture(nodes: ["cp1"], faults: ["cp1": [.neverBoots]])
        await lab.node("cp1").powerOn()
        try await Task.sleep(for: .milliseconds(100))
        do {
            _ = try await lab.client("cp1", .maintenance(spkiPin: nil)).version()
            Issue.record("a node that never boots answered")
        } catch let error as TalosError {
            // Refused at once; on a starved machine the 3 s deadline may win the race. Both are retried.
            switch error {
            case .unreachable, .timedOut: #expect(error.isTransient, "the executor retries it")
            default: Issue.record("expected unreachable, got \(error)")
            }
        }
        #expect(await lab.node("cp1").stage == .booting)
    }

    @Test func refusedApplyIsAPermanentRejection() async throws {
        let lab = try LabFixture(nodes: ["cp1"], faults: ["cp1": [.refusesApply]])
        await lab.node("cp1").powerOn()
        let client = try lab.client("cp1", .maintenance(spkiPin: nil))
        _ = try await eventually { try await client.version() }
        do {
            _ = try await client.applyConfiguration(try lab.config("cp1"))
            Issue.record("apply was accepted")
        } catch let error as TalosError {
            guard case .rejected = error else { Issue.record("expected rejected, got \(error)"); return }
            #expect(!error.isTransient)
        }
    }

    @Test func configWithUnknownKeysIsRejectedLikeTalosDoes() async throws {
        let lab = try LabFixture(nodes: ["cp1"])
        await lab.node("cp1").powerOn()
        let client = try lab.client("cp1", .maintenance(spkiPin: nil))
        _ = try await eventually { try await client.version() }
        let broken = try lab.config("cp1").replacingOccurrences(of: "machine:\n", with: "machine:\n    notAKey: true\n")
        await #expect(throws: TalosError.self) { try await client.applyConfiguration(broken) }
        #expect(await lab.node("cp1").stage == .maintenance, "nothing changed")
    }

    @Test func slowInstallIsStillInstallingWhenANormalOneIsDone() async throws {
        let lab = try LabFixture(nodes: ["cp1", "cp2"], platform: "metal", timeScale: 0.02, faults: ["cp2": [.slowInstall]])
        await lab.cluster.powerOnAll()
        for name in ["cp1", "cp2"] {
            let client = try lab.client(name, .maintenance(spkiPin: nil))
            _ = try await eventually { try await client.version() }
            _ = try await client.applyConfiguration(try lab.config(name))
        }
        // cp1 installed, rebooted and came up configured: booting with etcd waiting for the bootstrap.
        let cp1 = try lab.client("cp1", try lab.admin)
        try await eventually { guard try await cp1.etcdServiceState() == "Preparing" else { throw PeerError("cp1 not configured") } }
        #expect(await lab.node("cp2").stage == .installing)
        #expect(try await lab.client("cp2", .maintenance(spkiPin: nil)).machineStatus().stage == .installing)
    }

    @Test func flappingAPIFailsSomeConnectionsAndRetriesSucceed() async throws {
        let lab = try LabFixture(nodes: ["cp1"], faults: ["cp1": [.apiFlaps]])
        await lab.node("cp1").powerOn()
        try await lab.node("cp1").waitUntilListening()
        var failures = 0, successes = 0
        // One client: its first connection is dropped (the call fails, transiently), the channel
        // reconnects by itself, and later calls go through.
        var client = try lab.client("cp1", .maintenance(spkiPin: nil))
        client.timeout = .seconds(20)
        for _ in 0..<10 {
            do {
                _ = try await client.version()
                successes += 1
            } catch let error as TalosError {
                #expect(error.isTransient, "\(error)")
                failures += 1
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(failures > 0 && successes > 0, "failures \(failures), successes \(successes)")
    }

    @Test func unhealthyEtcdMemberIsReported() async throws {
        let lab = try LabFixture(nodes: ["cp1", "cp2", "cp3"], faults: ["cp3": [.etcdUnhealthy]])
        try await lab.configure(["cp1", "cp2", "cp3"])
        let cp1 = try lab.client("cp1", try lab.admin)
        _ = try await cp1.bootstrap()
        try await eventually { guard try await cp1.etcdMembers().count == 3 else { throw PeerError("joining") } }
        #expect(try await cp1.etcdStatus().errors.isEmpty)
        let errors = try await lab.client("cp3", try lab.admin).etcdStatus().errors
        #expect(errors.contains { $0.contains("unhealthy") })
    }

    /// A server that accepts TCP and never speaks: the call must end at its deadline.
    @Test(.timeLimit(.minutes(1))) func callsEndAtTheirDeadline() async throws {
        let address = Loopback.address()
        let socket = try BlackHole(address: address)
        defer { socket.close() }
        var client = try TalosClient(host: address, port: socket.port, mode: .maintenance(spkiPin: nil))
        client.timeout = .milliseconds(300)
        let started = ContinuousClock.now
        do {
            _ = try await client.version()
            Issue.record("a silent server answered")
        } catch let error as TalosError {
            guard case .timedOut = error else { Issue.record("expected the deadline to end the call, got \(error)"); return }
        }
        // Wall time on a loaded 2-core machine says little; the typed timeout is the proof. This
        // bound only catches a call that ignores its deadline altogether.
        #expect(ContinuousClock.now - started < .seconds(60))
    }
}

/// A listening TCP socket that never accepts: connections complete in the kernel and then hang.
// @unchecked: the descriptor is set once in init and only closed by the test that owns it.
final class BlackHole: @unchecked Sendable {
    let descriptor: Int32
    let port: Int

    init(address: String) throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.descriptor = descriptor
        guard IPv4Socket.bind(descriptor, host: address, port: 0), listen(descriptor, 16) == 0 else { throw PeerError("cannot listen on \(address)") }
        port = IPv4Socket.localPort(descriptor)
    }

    func close() { _ = Glibc.close(descriptor) }
}

/// The inventory accepts exactly the faults the lab can show.
@Suite struct FaultListTests {
    @Test func theInventoryKnowsEveryFaultTheLabHas() {
        #expect(Set(SimulatedFault.allCases.map(\.rawValue)) == Set(InventoryParser.labFaults))
    }
}
