import Crypto
import Foundation

/// age for files too big to hold: an etcd snapshot is encrypted and decrypted one 64 KiB chunk at a
/// time, so memory stays constant whatever its size. Same format as `encrypt`/`decrypt` (the real
/// `age` reads and writes both).
extension AgeFile {
    /// Encrypts `source` into `destination` (0600, written whole or not at all); the bytes written.
    @discardableResult
    public static func encrypt(file source: String, to destination: String, recipients: [String]) throws -> Int {
        guard let input = FileHandle(forReadingAtPath: source) else { throw AgeError.corrupt("cannot read \(source)") }
        defer { try? input.close() }
        let partial = destination + ".part"
        guard FileManager.default.createFile(atPath: partial, contents: nil, attributes: [.posixPermissions: 0o600]),
              let output = FileHandle(forWritingAtPath: partial) else { throw AgeError.corrupt("cannot write \(partial)") }
        do {
            let (header, key) = try header(to: recipients)
            try output.write(contentsOf: header)
            var written = header.count
            var counter: UInt64 = 0
            // One chunk of read-ahead: only the last chunk is sealed with the final flag.
            var current = try input.read(upToCount: chunkSize) ?? Data()
            while true {
                let next = current.count == chunkSize ? (try input.read(upToCount: chunkSize) ?? Data()) : Data()
                let box = try ChaChaPoly.seal(current, using: key, nonce: try chunkNonce(counter, last: next.isEmpty))
                try output.write(contentsOf: box.ciphertext + box.tag)
                written += current.count + 16
                counter += 1
                if next.isEmpty { break }
                current = next
            }
            try output.synchronize()
            try output.close()
            _ = try? FileManager.default.removeItem(atPath: destination)
            try FileManager.default.moveItem(atPath: partial, toPath: destination)
            return written
        } catch {
            try? output.close()
            try? FileManager.default.removeItem(atPath: partial)
            throw error
        }
    }

    /// Decrypts `source` chunk by chunk into `sink`; every chunk is authenticated before it is
    /// handed on, and a file cut short (no final chunk) is an error, never a shorter plaintext.
    public static func decrypt(file source: String, identity: Curve25519.KeyAgreement.PrivateKey, into sink: (Data) throws -> Void) throws {
        guard let input = FileHandle(forReadingAtPath: source) else { throw AgeError.corrupt("cannot read \(source)") }
        defer { try? input.close() }
        let start = Array(try input.read(upToCount: 1 << 20) ?? Data())
        guard !start.isEmpty else { throw AgeError.notAnAgeFile }
        let (key, offset) = try openHeader(start, identity: identity)
        try input.seek(toOffset: UInt64(offset))
        let sealedChunk = chunkSize + 16
        var counter: UInt64 = 0
        var current = try input.read(upToCount: sealedChunk) ?? Data()
        while true {
            let next = current.count == sealedChunk ? (try input.read(upToCount: sealedChunk) ?? Data()) : Data()
            let last = next.isEmpty
            guard current.count >= 16,
                  let box = try? ChaChaPoly.SealedBox(nonce: try chunkNonce(counter, last: last), ciphertext: current.dropLast(16), tag: current.suffix(16)),
                  let plain = try? ChaChaPoly.open(box, using: key) else { throw AgeError.corrupt("payload chunk \(counter)") }
            try sink(plain)
            counter += 1
            if last { return }
            current = next
        }
    }
}
