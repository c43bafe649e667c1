import Foundation
import SwiftProtobuf
import Testing
import TestSupport
@testable import TalosKit

/// Our generated messages against the talos-linux-api Python bindings (generated from Talos' own
/// protos): what we encode, they decode field for field, and the other way round.
@Suite struct WireCompatibilityTests {
    func python(_ script: String, input: Data) async throws -> String {
        let dir = temporaryDirectory()
        try input.write(to: URL(fileURLWithPath: dir + "/in.bin"))
        try Peer.write(script, dir + "/check.py")
        let result = try await Peer.run(["python3", dir + "/check.py", dir + "/in.bin"])
        #expect(result.status == 0, "talos-linux-api must be installed (scripts/bootstrap): \(result.stderr)")
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func applyConfigurationRequestDecodesAsTalosSees() async throws {
        var request = Machine_ApplyConfigurationRequest()
        request.data = Data("version: v1alpha1\n".utf8)
        request.mode = .auto
        request.dryRun = true
        request.tryModeTimeout = .init(seconds: 90)
        let decoded = try await python("""
            import sys
            from talos_linux_api.v1_6_0.machine import ApplyConfigurationRequest, ApplyConfigurationRequestMode
            m = ApplyConfigurationRequest().parse(open(sys.argv[1], "rb").read())
            print(m.data.decode(), m.mode == ApplyConfigurationRequestMode.AUTO, m.dry_run, m.try_mode_timeout.total_seconds(), sep="|")
            """, input: try request.serializedBytes())
        #expect(decoded == "version: v1alpha1\n|True|True|90.0")
    }

    @Test func resetRequestDecodesAsTalosSees() async throws {
        var request = Machine_ResetRequest()
        request.graceful = true
        request.reboot = true
        request.systemPartitionsToWipe = ["STATE", "EPHEMERAL"].map { label in
            var spec = Machine_ResetPartitionSpec()
            spec.label = label
            spec.wipe = true
            return spec
        }
        let decoded = try await python("""
            import sys
            from talos_linux_api.v1_6_0.machine import ResetRequest
            m = ResetRequest().parse(open(sys.argv[1], "rb").read())
            print(m.graceful, m.reboot, ",".join(f"{p.label}:{p.wipe}" for p in m.system_partitions_to_wipe), int(m.mode), sep="|")
            """, input: try request.serializedBytes())
        #expect(decoded == "True|True|STATE:True,EPHEMERAL:True|0")
    }

    @Test func etcdMemberListFromTalosDecodesHere() async throws {
        let dir = temporaryDirectory()
        try Peer.write("""
            import sys
            from talos_linux_api.v1_6_0.machine import EtcdMemberListResponse, EtcdMembers, EtcdMember
            from talos_linux_api.v1_6_0.common import Metadata
            r = EtcdMemberListResponse(messages=[EtcdMembers(metadata=Metadata(hostname="cp1"), members=[
                EtcdMember(id=0xDEADBEEF01, hostname="cp1", peer_urls=["https://127.0.0.11:2380"], is_learner=False),
                EtcdMember(id=7, hostname="cp2", client_urls=["https://127.0.0.12:2379"], is_learner=True)])])
            open(sys.argv[1], "wb").write(bytes(r))
            """, dir + "/make.py")
        let made = try await Peer.run(["python3", dir + "/make.py", dir + "/out.bin"])
        #expect(made.status == 0, "\(made.stderr)")
        let response = try Machine_EtcdMemberListResponse(serializedBytes: Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/out.bin"))))
        let members = response.messages.first?.members ?? []
        #expect(response.messages.first?.metadata.hostname == "cp1")
        #expect(members.map(\.id) == [0xDEADBEEF01, 7])
        #expect(members.map(\.hostname) == ["cp1", "cp2"])
        #expect(members[0].peerUrls == ["https://127.0.0.11:2380"])
        #expect(members[1].isLearner)
    }
}
