import Foundation
@testable import Lab
import Testing
import TestSupport
@testable import ProvisionCore
@testable import Steps
@testable import TalosKit

/// A reset as Talos runs it: the RPC answers at once and the sequence reports its end only on the
/// Events stream. A graceful reset etcd refuses (the last member) stops kubelet and every pod, fails
/// there and reboots the node unwiped; provision reports it from the stream at once, and with
/// `--force` resets without leaving etcd, as Talos' docs advise.
@Suite struct ResetSequenceTests {
    static let reset = """
        apiVersion: provision/v1
        kind: Playbook
        name: reset
        steps:
          - {id: reset, uses: talos.reset, forEach: "name=cp1", timeout: 900s}
        """

    /// cp1 alone, bootstrapped: the last etcd member, which etcd will not let leave.
    func singleControlPlane() async throws -> TalosLab {
        let lab = try TalosLab(nodes: ["cp1"])
        await lab.cluster.powerOnAll()
        let up = try await lab.run()
        #expect(up.succeeded, "\(up.errors)")
        return lab
    }

    @Test(.timeLimit(.minutes(3))) func aGracefulResetEtcdRefusesIsReportedFromTheEventsStreamAtOnce() async throws {
        let lab = try await singleControlPlane()
        let bootBefore = try await lab.admin("cp1").bootID()
        let started = ContinuousClock.now
        let run = try await lab.run(Self.reset)
        #expect(ContinuousClock.now - started < .seconds(60), "reported from the stream, not after the 15-minute wait")
        let error = run.errors["reset@cp1"] ?? ""
        #expect(!run.succeeded)
        #expect(error.contains("reset failed on the node") && error.contains("not enough started members") && error.contains("--force"), "\(error)")
        // Talos reboots it as it was: configured, still etcd's only member, nothing wiped.
        let admin = try await lab.admin("cp1")
        try await eventually {
            guard try await admin.bootID() != bootBefore, try await admin.machineStatus().stage == .running else { throw PeerError("rebooting") }
        }
        #expect(try await admin.etcdMembers().map(\.hostname) == ["cp1"])
        #expect(await lab.cluster.node("cp1")!.calls.filter { $0.method == "Reset" }.count == 1)
        // The record is cleared: the next run may send a reset again (here, forced).
        let forced = try await lab.run(Self.reset, arguments: ["force": "true"])
        #expect(forced.succeeded, "\(forced.errors)")
        #expect(forced.outcomes["reset@cp1"] == .applied)
        try await eventually {
            guard try await TalosClient(host: lab.inventory.node(named: "cp1")!.address.value.description, mode: .maintenance(spkiPin: nil))
                .machineStatus().stage == .maintenance else { throw PeerError("not reset yet") }
        }
        #expect(await !lab.cluster.etcd.hasData("cp1"), "a reset without leaving wipes etcd's data")
    }

    /// The node keeps events of every kind, the reset's own with its actor; a successful reset is
    /// read as one, although it too ends with an error event (for its own reboot). (The hello and
    /// the backlog, read by an independent client: `PythonClientInteropTests`.)
    @Test(.timeLimit(.minutes(3))) func aSuccessfulResetIsReadAsOneAmongEventsOfEveryKind() async throws {
        let lab = try LabFixture(nodes: ["cp1", "cp2", "cp3"])
        _ = try await lab.bootstrappedControlPlanes()
        let cp2 = try lab.client("cp2", try lab.admin)
        let actor = try await cp2.resetSystemPartitions()
        #expect(try await cp2.sequenceOutcome(actor: actor, within: .seconds(60)) == .pastStopAllServices)
        let events = await lab.node("cp2").events.events
        let kinds = Set(events.map { $0.data.typeURL.split(separator: ".").last.map(String.init) ?? "" })
        #expect(kinds.isSuperset(of: ["SequenceEvent", "PhaseEvent", "TaskEvent", "MachineStatusEvent", "ServiceStateEvent", "AddressEvent"]), "\(kinds)")
        #expect(events.contains { $0.actor == actor } && events.contains { $0.actor.isEmpty })
    }
}
