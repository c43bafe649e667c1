import Foundation
import Testing
@testable import TalosKit

/// The release tables an upgrade plans from (reference/day2.md 2.3 to 2.5).
@Suite struct ReleaseTests {
    @Test func aTalosPathGoesThroughTheLatestPatchOfEveryMinor() throws {
        // To another minor: first the latest patch of the node's own minor (the v1.13 upgrade guide).
        #expect(try TalosReleases.path(from: "v1.12.6", to: "v1.13.9", kubernetes: "v1.34.2") == ["v1.12.11", "v1.13.9"])
        #expect(try TalosReleases.path(from: "v1.12.11", to: "v1.13.9", kubernetes: "v1.34.2") == ["v1.13.9"])
        #expect(try TalosReleases.path(from: "v1.12.6", to: "v1.12.11", kubernetes: "v1.34.2") == ["v1.12.11"])
        #expect(try TalosReleases.path(from: "v1.13.2", to: "v1.13.9", kubernetes: "v1.34.2") == ["v1.13.9"])
        #expect(try TalosReleases.path(from: "v1.13.9", to: "v1.13.9", kubernetes: "v1.34.2").isEmpty)
        // 1.11 -> 1.13 goes through 1.12's latest patch, which this build knows; 1.11 itself it does not.
        #expect(throws: TalosReleases.PathError.unknown("v1.11.x")) { try TalosReleases.path(from: "v1.10.3", to: "v1.13.9", kubernetes: "v1.34.2") }
    }

    @Test func unknownTargetsDowngradesAndKubernetesWindowsAreRefused() {
        #expect(throws: TalosReleases.PathError.unknown("v1.13.99")) { try TalosReleases.path(from: "v1.13.2", to: "v1.13.99", kubernetes: "v1.34.2") }
        #expect(throws: TalosReleases.PathError.downgrade(from: "v1.13.2", to: "v1.13.1")) {
            try TalosReleases.path(from: "v1.13.2", to: "v1.13.1", kubernetes: "v1.34.2")
        }
        #expect((try? TalosReleases.path(from: "v1.13.2", to: "v1.13.1", kubernetes: "v1.34.2", allowDowngrade: true)) == ["v1.13.1"])
        // Talos 1.12 runs Kubernetes 1.30 to 1.35: a cluster on 1.36 cannot go there.
        #expect(throws: TalosReleases.PathError.kubernetes(talos: "v1.12.11", kubernetes: "v1.36.0", window: "1.30 to 1.35")) {
            try TalosReleases.path(from: "v1.12.6", to: "v1.12.11", kubernetes: "v1.36.0")
        }
    }

    @Test func kubernetesGoesOneMinorAtATime() throws {
        try KubernetesReleases.check(from: "v1.34.2", to: "v1.35.0")
        try KubernetesReleases.check(from: "v1.34.2", to: "v1.34.5")
        try KubernetesReleases.check(from: "v1.34.2", to: "v1.34.2")
        let skip = #expect(throws: KubernetesReleases.PathError.self) { try KubernetesReleases.check(from: "v1.34.2", to: "v1.36.1") }
        #expect(skip?.description.contains("skips v1.35") == true && skip?.description.contains("v1.34.2 -> v1.35.x -> v1.36.1") == true, "\(String(describing: skip))")
        #expect(throws: KubernetesReleases.PathError.downgrade(from: "v1.34.2", to: "v1.33.9")) { try KubernetesReleases.check(from: "v1.34.2", to: "v1.33.9") }
        #expect(throws: KubernetesReleases.PathError.notAVersion("1.35")) { try KubernetesReleases.check(from: "v1.34.2", to: "1.35") }
        #expect(throws: KubernetesReleases.PathError.unknownMinor("v1.38.0")) { try KubernetesReleases.check(from: "v1.37.0", to: "v1.38.0") }
    }

    @Test func removedAPIsAreThoseOfTheMinorsCrossed() {
        #expect(KubernetesReleases.removedBetween("v1.31.4", "v1.32.0").map(\.groupVersion) == ["flowcontrol.apiserver.k8s.io/v1beta3"])
        #expect(KubernetesReleases.removedBetween("v1.34.2", "v1.35.0").isEmpty)
        #expect(KubernetesReleases.removedBetween("v1.32.0", "v1.32.3").isEmpty)
    }

    @Test func recordedVersionsRenderPerNodeAndSurviveAReload() throws {
        let dir = FileManager.default.temporaryDirectory.path + "/k8s-\(UUID())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var versions = try KubernetesVersions.recorded(stateDirectory: dir, version: "v1.34.2")
        #expect(try KubernetesVersions.recorded(stateDirectory: dir, version: "v1.35.0").version == "v1.34.2", "recorded once, never from a later inventory")
        versions.target = "v1.35.0"
        versions.nodes["cp1"] = [.apiServer: "v1.35.0"]
        try versions.save(stateDirectory: dir)
        let loaded = try #require(KubernetesVersions.load(stateDirectory: dir))
        #expect(loaded == versions)
        #expect(loaded.version(of: .apiServer, node: "cp1") == "v1.35.0" && loaded.version(of: .scheduler, node: "cp1") == "v1.34.2")
        #expect(loaded.version(of: .apiServer, node: "cp2") == "v1.34.2")
        let mode = try FileManager.default.attributesOfItem(atPath: KubernetesVersions.path(dir))[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }
}
