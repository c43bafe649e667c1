import Foundation
import ProvisionCore
import Testing
import TestSupport
@testable import TalosKit

/// Talos' Kubeconfig payload: gzip'd tar with no padding and no end blocks. Our writer makes it so
/// (GNU tar lists the file, then stops at the missing padding, as it does on Talos' own archive); our
/// reader takes the content and refuses what is broken.
@Suite struct ArchiveTests {
    static let kubeconfig = "apiVersion: v1\nkind: Config\ncurrent-context: admin@demo\n"

    @Test func roundTripAndTheSystemTarAgrees() async throws {
        let archive = try KubeconfigArchive.make(Self.kubeconfig)
        #expect(try KubeconfigArchive.extract(archive) == Self.kubeconfig)
        let dir = temporaryDirectory()
        try archive.write(to: URL(fileURLWithPath: "\(dir)/k.tar.gz"))
        let listed = try await Peer.run(["sh", "-c", "gzip -dc '\(dir)/k.tar.gz' | tar -tvf - 2>&1"])
        #expect(listed.stdout.contains(" \(Self.kubeconfig.utf8.count) "), "\(listed.stdout)")
        #expect(listed.stdout.contains("kubeconfig"))
        #expect(listed.stdout.contains("Unexpected EOF"), "no padding, no end-of-archive blocks: Talos' quirk")
    }

    @Test func brokenInputIsAClearError() throws {
        let archive = try KubeconfigArchive.make(Self.kubeconfig)
        #expect(throws: KubeconfigArchive.Failure.self) { try KubeconfigArchive.extract(Data("not gzip".utf8)) }
        #expect(throws: KubeconfigArchive.Failure.self) { try KubeconfigArchive.extract(archive.prefix(archive.count / 2)) }
        #expect(throws: KubeconfigArchive.Failure.self) { try KubeconfigArchive.extract(try Gzip.compress(Data(repeating: 0, count: 100))) }
        #expect(throws: Gzip.Failure.self) { try Gzip.decompress(try Gzip.compress(Data(repeating: 7, count: 1 << 20)), limit: 1000) }
    }
}
