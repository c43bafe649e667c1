import Foundation
import Testing
@testable import ProvisionCore

/// The loopback guard every client asks before opening a socket.
@Suite struct NetworkPolicyTests {
    @Test func onlyAllowedNetworksAndNoNamesUnderARestriction() throws {
        // Only loopback addresses appear here, even as data: narrow ranges of 127/8 stand in for networks.
        let policy = try #require(NetworkPolicy.parse("127.1.0.0/16, 127.20.0.0/16"))
        #expect(policy.permits(host: "127.1.0.11"))
        #expect(policy.permits(host: "127.20.3.4"))
        #expect(!policy.permits(host: "127.21.0.1"))
        #expect(!policy.permits(host: "127.0.0.62"))
        #expect(!policy.permits(host: "localhost"), "localhost is 127.0.0.1, outside both ranges")
        #expect(NetworkPolicy.loopback.permits(host: "localhost"))
        #expect(!policy.permits(host: "pve.example.com"), "resolving a name could leave the machine")
        #expect(NetworkPolicy(allowed: nil).permits(host: "pve.example.com"), "unrestricted by default")
        #expect(NetworkPolicy.parse("127.0.0.0/8,nonsense") == nil, "a malformed list is not silently half-used")

        do {
            try policy.check(host: "127.0.0.62", for: "Wake-on-LAN broadcast")
            Issue.record("an address outside the allowed ranges passed")
        } catch {
            #expect(error.description.contains("127.0.0.62"))
            #expect(error.description.contains("Wake-on-LAN"))
            #expect(error.description.contains("127.1.0.0/16"))
        }
    }

    @Test func theTestRunItselfIsLoopbackOnlyInCI() {
        guard ProcessInfo.processInfo.environment["CI"] == "true" else { return }
        #expect(NetworkPolicy.current == .loopback, "scripts/test sets PROVISION_ALLOWED_NETWORKS=127.0.0.0/8 for every test")
    }
}
