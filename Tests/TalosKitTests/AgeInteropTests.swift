import Crypto
import Foundation
import Testing
import TestSupport
@testable import TalosKit

/// Our age implementation against the real `age` CLI, both directions.
@Suite struct AgeInteropTests {
    func keygen(_ dir: String, _ name: String = "key.txt") async throws -> (path: String, recipient: String) {
        let path = "\(dir)/\(name)"
        let result = try await Peer.run(["age-keygen", "-o", path])
        #expect(result.status == 0, "age-keygen must be installed (scripts/bootstrap): \(result.stderr)")
        let recipient = try await Peer.run(["age-keygen", "-y", path]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return (path, recipient)
    }

    @Test(arguments: [0, 1, 100, 64 * 1024, 64 * 1024 + 1, 200_000])
    func ageDecryptsWhatWeEncrypt(size: Int) async throws {
        let dir = temporaryDirectory()
        let (key, recipient) = try await keygen(dir)
        let plaintext = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let other = Curve25519.KeyAgreement.PrivateKey()
        let sealed = try AgeFile.encrypt(plaintext, to: [AgeFile.recipient(of: other), recipient])
        try Data(sealed).write(to: URL(fileURLWithPath: "\(dir)/file.age"))
        let result = try await Peer.run(["sh", "-c", "age -d -i '\(key)' '\(dir)/file.age' > '\(dir)/out'"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/out"))) == plaintext)
    }

    @Test(arguments: [0, 5000, 64 * 1024, 150_000])
    func weDecryptWhatAgeEncrypts(size: Int) async throws {
        let dir = temporaryDirectory()
        let (key, recipient) = try await keygen(dir)
        let plaintext = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        try Data(plaintext).write(to: URL(fileURLWithPath: "\(dir)/plain"))
        let result = try await Peer.run(["age", "-e", "-r", recipient, "-o", "\(dir)/file.age", "\(dir)/plain"])
        #expect(result.status == 0, "\(result.stderr)")
        let identity = try AgeFile.identity(try String(contentsOfFile: key, encoding: .utf8))
        let opened = try AgeFile.decrypt(Array(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/file.age"))), identity: identity)
        #expect(opened == plaintext)
        #expect(AgeFile.recipient(of: identity) == recipient)
    }

    /// Files streamed a chunk at a time (etcd snapshots): the real `age` decrypts ours and we
    /// decrypt its, at sizes around the 64 KiB chunk boundary; a file cut at a chunk boundary is
    /// an error, never a shorter plaintext.
    @Test(arguments: [0, 64 * 1024, 3 * 64 * 1024 + 17])
    func streamedFilesInteroperate(size: Int) async throws {
        let dir = temporaryDirectory()
        let (key, recipient) = try await keygen(dir)
        let plaintext = Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) })
        try plaintext.write(to: URL(fileURLWithPath: "\(dir)/plain"))
        try AgeFile.encrypt(file: "\(dir)/plain", to: "\(dir)/ours.age", recipients: [recipient])
        let mode = try FileManager.default.attributesOfItem(atPath: "\(dir)/ours.age")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let decrypted = try await Peer.run(["sh", "-c", "age -d -i '\(key)' '\(dir)/ours.age' > '\(dir)/out'"])
        #expect(decrypted.status == 0, "\(decrypted.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/out")) == plaintext)

        let encrypted = try await Peer.run(["age", "-e", "-r", recipient, "-o", "\(dir)/theirs.age", "\(dir)/plain"])
        #expect(encrypted.status == 0, "\(encrypted.stderr)")
        let identity = try AgeFile.identity(try String(contentsOfFile: key, encoding: .utf8))
        var opened = Data()
        try AgeFile.decrypt(file: "\(dir)/theirs.age", identity: identity) { opened.append($0) }
        #expect(opened == plaintext)

        if size > 64 * 1024 {
            // Drop the final chunk: what is left ends on a whole, non-final chunk.
            let whole = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/theirs.age"))
            let cut = whole.prefix(whole.count - (size % (64 * 1024)) - 16)
            try cut.write(to: URL(fileURLWithPath: "\(dir)/cut.age"))
            #expect(throws: AgeFile.AgeError.self) { try AgeFile.decrypt(file: "\(dir)/cut.age", identity: identity) { _ in } }
        }
    }

    @Test func wrongIdentityAndDamageAreClearErrors() async throws {
        let dir = temporaryDirectory()
        let (_, recipient) = try await keygen(dir)
        let sealed = try AgeFile.encrypt(Array("secret".utf8), to: [recipient])
        #expect(throws: AgeFile.AgeError.noMatchingIdentity) { try AgeFile.decrypt(sealed, identity: .init()) }
        let (key, _) = try await keygen(dir, "other.txt")
        _ = key
        let identity = try AgeFile.identity(try String(contentsOfFile: "\(dir)/key.txt", encoding: .utf8))
        #expect(throws: AgeFile.AgeError.self) { try AgeFile.decrypt(Array(sealed.dropLast(5)), identity: identity) }
        var flipped = sealed
        flipped[flipped.count - 20] ^= 1
        #expect(throws: AgeFile.AgeError.self) { try AgeFile.decrypt(flipped, identity: identity) }
        #expect(throws: AgeFile.AgeError.notAnAgeFile) { try AgeFile.decrypt(Array("hello\nworld\n".utf8), identity: identity) }
        #expect(throws: AgeFile.AgeError.self) { try AgeFile.recipientKey("age1notarecipient") }
    }

    @Test func identityStringsRoundTripThroughBech32() {
        let key = Curve25519.KeyAgreement.PrivateKey()
        let text = AgeFile.identityString(key)
        #expect(text.hasPrefix("AGE-SECRET-KEY-1"))
        #expect((try? AgeFile.identity("# created: today\n" + text + "\n"))?.rawRepresentation == key.rawRepresentation)
    }
}
