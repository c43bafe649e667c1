import Foundation
import Testing
@testable import Steps

/// Which cluster a backup set belongs to: a restore refuses another cluster's set, and a set taken
/// with only an etcd-backup talosconfig (no bundle, so no cluster ID) is known by its OS CA.
@Suite struct BackupManifestTests {
    static let ca = "-----BEGIN CERTIFICATE-----\nMIIBPzCB8qADAgECAhEA\nAAAA\n-----END CERTIFICATE-----\n"
    static let otherCA = "-----BEGIN CERTIFICATE-----\nMIIBPzCB8qADAgECAhEB\nBBBB\n-----END CERTIFICATE-----\n"

    func manifest(clusterID: String, osCA: String?) -> BackupManifest {
        BackupManifest(set: "20261206T030000Z", cluster: "demo", clusterID: clusterID, osCA: osCA,
                       createdAt: Date(timeIntervalSince1970: 0), source: "cp1", etcdRevision: 7, etcdMembers: 3,
                       snapshotBytes: 10, talosVersion: "v1.13.9", kubernetesVersion: "1.34.1", recipients: [], objects: [])
    }

    @Test func aSetWithTheBundleIsKnownByItsClusterID() {
        let set = manifest(clusterID: "cluster-a", osCA: BackupManifest.fingerprint(caPEM: Self.ca))
        #expect(set.belongs(clusterID: "cluster-a", caPEM: Self.otherCA), "the cluster ID decides when there is one")
        #expect(!set.belongs(clusterID: "cluster-b", caPEM: Self.ca), "another cluster's ID is refused even with the same CA")
    }

    @Test func aSnapshotOnlySetIsKnownByItsOSCA() {
        let set = manifest(clusterID: "", osCA: BackupManifest.fingerprint(caPEM: Self.ca))
        #expect(set.belongs(clusterID: "any", caPEM: Self.ca))
        let crlf = Self.ca.replacingOccurrences(of: "\n", with: "\r\n") + "  "
        #expect(set.belongs(clusterID: "any", caPEM: crlf), "line endings and trailing space do not change the fingerprint")
        #expect(!set.belongs(clusterID: "any", caPEM: Self.otherCA), "a different CA is another cluster")
        #expect(!manifest(clusterID: "", osCA: nil).belongs(clusterID: "any", caPEM: Self.ca), "no ID and no CA: nothing proves it")
    }

    @Test func theFingerprintIsTheSHA256OfTheCertificateWithoutWhitespace() {
        let fingerprint = BackupManifest.fingerprint(caPEM: Self.ca)
        #expect(fingerprint.count == 64 && fingerprint.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        #expect(fingerprint != BackupManifest.fingerprint(caPEM: Self.otherCA))
    }
}
