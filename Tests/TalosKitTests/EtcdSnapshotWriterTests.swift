import Foundation
import ProvisionCore
import Testing
import TestSupport
@testable import TalosKit

/// A snapshot is kept only whole: size modulo 512 is 32 and the appended SHA-256 matches, however
/// the stream was chunked; anything else is refused and leaves no file behind.
@Suite struct EtcdSnapshotWriterTests {
    /// 2 bbolt pages and their SHA-256, made by openssl (independent of our hashing).
    func snapshot() async throws -> Data {
        let dir = temporaryDirectory()
        let pages = Data((0..<8192).map { UInt8($0 % 251) })
        try pages.write(to: URL(fileURLWithPath: dir + "/pages"))
        let digest = try await Subprocess.run(["openssl", "dgst", "-sha256", "-binary", "-out", dir + "/hash", dir + "/pages"])
        #expect(digest.status == 0, "\(digest.stderr)")
        return pages + (try Data(contentsOf: URL(fileURLWithPath: dir + "/hash")))
    }

    func stream(_ data: Data, chunk: Int, to path: String) throws -> Int {
        var writer = try EtcdSnapshotWriter(path: path)
        do {
            for start in stride(from: 0, to: data.count, by: chunk) { try writer.append(data.subdata(in: start..<min(data.count, start + chunk))) }
            return try writer.finish()
        } catch {
            writer.abandon()
            throw error
        }
    }

    @Test func aWholeSnapshotIsKeptHoweverItIsChunked() async throws {
        let data = try await snapshot()
        for chunk in [1, 31, 32, 33, 4096, 100_000] {
            let path = temporaryDirectory() + "/etcd.snapshot"
            #expect(try stream(data, chunk: chunk, to: path) == data.count)
            #expect(FileManager.default.contents(atPath: path) == data, "chunks of \(chunk)")
            #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o600)
            #expect(!FileManager.default.fileExists(atPath: path + ".part"))
        }
    }

    @Test func aShortOrDamagedSnapshotIsRefusedAndLeavesNothing() async throws {
        let data = try await snapshot()
        var damaged = data
        damaged[100] ^= 0xff
        // Cut by a multiple of 512 the size still looks right: the hash is what catches it.
        for (bad, words) in [(data.prefix(data.count - 100), "cut short"), (data.prefix(data.count - 512), "damaged"), (damaged, "damaged"), (Data(), "cut short")] {
            let path = temporaryDirectory() + "/etcd.snapshot"
            let error = #expect(throws: TalosError.self) { try stream(bad, chunk: 4096, to: path) }
            #expect("\(error.map { "\($0)" } ?? "")".contains(words), "\(String(describing: error))")
            #expect(!FileManager.default.fileExists(atPath: path) && !FileManager.default.fileExists(atPath: path + ".part"))
        }
    }
}
