import Crypto
import Foundation

/// The age v1 file format (age-encryption.org/v1) with X25519 recipients, so the secrets bundle at
/// rest can be read and written by the real `age` CLI.
public enum AgeFile {
    static let intro = "age-encryption.org/v1"
    static let x25519Label = "age-encryption.org/v1/X25519"
    static let chunkSize = 64 * 1024

    public enum AgeError: Error, Equatable, CustomStringConvertible {
        case invalidRecipient(String)
        case invalidIdentity
        case notAnAgeFile
        case noMatchingIdentity
        case corrupt(String)

        public var description: String {
            switch self {
            case let .invalidRecipient(text): return "`\(text.prefix(12))…` is not an age X25519 recipient (age1…)"
            case .invalidIdentity: return "the identity is not an age X25519 secret key (AGE-SECRET-KEY-1…)"
            case .notAnAgeFile: return "the file is not in the age format"
            case .noMatchingIdentity: return "none of the file's recipients matches this identity (wrong key?)"
            case let .corrupt(what): return "the age file is damaged or truncated (\(what))"
            }
        }
    }

    public static func recipientKey(_ text: String) throws -> Curve25519.KeyAgreement.PublicKey {
        guard let (hrp, data) = Bech32.decode(text), hrp == "age", data.count == 32,
              let key = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: data) else { throw AgeError.invalidRecipient(text) }
        return key
    }

    /// Reads the first `AGE-SECRET-KEY-1…` line of an identity file (comments allowed, as age-keygen writes).
    public static func identity(_ text: String) throws -> Curve25519.KeyAgreement.PrivateKey {
        for line in text.split(whereSeparator: \.isNewline) where line.hasPrefix("AGE-SECRET-KEY-1") {
            guard let (hrp, data) = Bech32.decode(String(line)), hrp == "age-secret-key-", data.count == 32,
                  let key = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: data) else { throw AgeError.invalidIdentity }
            return key
        }
        throw AgeError.invalidIdentity
    }

    public static func recipient(of identity: Curve25519.KeyAgreement.PrivateKey) -> String {
        Bech32.encode(hrp: "age", data: Array(identity.publicKey.rawRepresentation))
    }

    public static func identityString(_ key: Curve25519.KeyAgreement.PrivateKey) -> String {
        Bech32.encode(hrp: "age-secret-key-", data: Array(key.rawRepresentation)).uppercased()
    }

    // MARK: - Encrypt

    public static func encrypt(_ plaintext: [UInt8], to recipients: [String]) throws -> [UInt8] {
        let (header, payloadKey) = try header(to: recipients)
        return header + (try stream(seal: plaintext, key: payloadKey))
    }

    /// The header for a new file key wrapped to each recipient, then the payload nonce; and the
    /// payload key the chunks are sealed with.
    static func header(to recipients: [String]) throws -> (bytes: [UInt8], payloadKey: SymmetricKey) {
        let keys = try recipients.map(recipientKey)
        let fileKey = SymmetricKey(size: SymmetricKeySize(bitCount: 128))
        var header = intro + "\n"
        for recipient in keys {
            let ephemeral = Curve25519.KeyAgreement.PrivateKey()
            let share = Array(ephemeral.publicKey.rawRepresentation)
            let wrap = try wrappingKey(shared: try ephemeral.sharedSecretFromKeyAgreement(with: recipient),
                                       salt: share + Array(recipient.rawRepresentation))
            let body = try ChaChaPoly.seal(fileKey.withUnsafeBytes { Array($0) }, using: wrap, nonce: ChaChaPoly.Nonce(data: [UInt8](repeating: 0, count: 12)))
            header += "-> X25519 \(base64(share))\n" + wrapped(base64(Array(body.ciphertext) + Array(body.tag)))
        }
        header += "---"
        let mac = HMAC<SHA256>.authenticationCode(for: Array(header.utf8), using: derive(fileKey, salt: [], info: "header"))
        header += " \(base64(Array(mac)))\n"
        let nonce = SecureRandom.bytes(16)
        return (Array(header.utf8) + nonce, derive(fileKey, salt: nonce, info: "payload"))
    }

    // MARK: - Decrypt

    public static func decrypt(_ file: [UInt8], identity: Curve25519.KeyAgreement.PrivateKey) throws -> [UInt8] {
        let (payloadKey, offset) = try openHeader(file, identity: identity)
        return try stream(open: Array(file[offset...]), key: payloadKey)
    }

    /// Reads the header at the start of `file` (the whole file or just its first bytes): the payload
    /// key, and where the sealed chunks begin.
    static func openHeader(_ file: [UInt8], identity: Curve25519.KeyAgreement.PrivateKey) throws -> (payloadKey: SymmetricKey, payloadOffset: Int) {
        var lines: [String] = []
        var offset = 0
        // Header lines end with \n; the header ends at the "--- " line.
        while true {
            guard let newline = file[offset...].firstIndex(of: 0x0a) else { throw lines.isEmpty ? AgeError.notAnAgeFile : AgeError.corrupt("header") }
            guard let line = String(bytes: file[offset..<newline], encoding: .utf8) else { throw AgeError.notAnAgeFile }
            lines.append(line)
            if lines.count == 1, line != intro { throw AgeError.notAnAgeFile }
            offset = newline + 1
            if line.hasPrefix("---") { break }
            if lines.count > 1000 { throw AgeError.corrupt("header too long") }
        }
        guard lines.first == intro else { throw AgeError.notAnAgeFile }
        var fileKey: SymmetricKey?
        var index = 1
        let ownShare = Array(identity.publicKey.rawRepresentation)
        while index < lines.count - 1 {
            let stanza = lines[index].split(separator: " ").map(String.init)
            guard stanza.first == "->" else { throw AgeError.corrupt("stanza") }
            index += 1
            var body = ""
            while index < lines.count - 1 {
                let line = lines[index]
                index += 1
                body += line
                if line.count < 64 { break }
            }
            guard stanza.count == 3, stanza[1] == "X25519", fileKey == nil else { continue }
            guard let share = unbase64(stanza[2]), share.count == 32, let sealed = unbase64(body), sealed.count == 32,
                  let ephemeral = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: share) else { throw AgeError.corrupt("X25519 stanza") }
            let shared = try identity.sharedSecretFromKeyAgreement(with: ephemeral)
            let wrap = try wrappingKey(shared: shared, salt: share + ownShare)
            if let box = try? ChaChaPoly.SealedBox(nonce: ChaChaPoly.Nonce(data: [UInt8](repeating: 0, count: 12)),
                                                   ciphertext: sealed.prefix(16), tag: sealed.suffix(16)),
               let key = try? ChaChaPoly.open(box, using: wrap) {
                fileKey = SymmetricKey(data: key)
            }
        }
        guard let fileKey else { throw AgeError.noMatchingIdentity }
        let macLine = lines[lines.count - 1]
        guard macLine.hasPrefix("--- "), let mac = unbase64(String(macLine.dropFirst(4))) else { throw AgeError.corrupt("header MAC") }
        let headerText = lines.dropLast().joined(separator: "\n") + "\n---"
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Array(headerText.utf8), using: derive(fileKey, salt: [], info: "header")) else {
            throw AgeError.corrupt("header MAC mismatch")
        }
        guard file.count >= offset + 16 else { throw AgeError.corrupt("payload nonce") }
        let nonce = Array(file[offset..<(offset + 16)])
        return (derive(fileKey, salt: nonce, info: "payload"), offset + 16)
    }

    // MARK: - Pieces

    static func wrappingKey(shared: SharedSecret, salt: [UInt8]) throws -> SymmetricKey {
        let bytes = shared.withUnsafeBytes { Array($0) }
        guard bytes.contains(where: { $0 != 0 }) else { throw AgeError.corrupt("low-order X25519 share") }
        return HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: bytes), salt: salt, info: Array(x25519Label.utf8), outputByteCount: 32)
    }

    static func derive(_ key: SymmetricKey, salt: [UInt8], info: String) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: key, salt: salt, info: Array(info.utf8), outputByteCount: 32)
    }

    /// STREAM: 64 KiB chunks, nonce = 11-byte big-endian counter + final flag.
    static func chunkNonce(_ counter: UInt64, last: Bool) throws -> ChaChaPoly.Nonce {
        var bytes = [UInt8](repeating: 0, count: 12)
        for i in 0..<8 { bytes[10 - i] = UInt8((counter >> (8 * UInt64(i))) & 0xff) }
        bytes[11] = last ? 1 : 0
        return try ChaChaPoly.Nonce(data: bytes)
    }

    static func stream(seal plaintext: [UInt8], key: SymmetricKey) throws -> [UInt8] {
        var out: [UInt8] = []
        var counter: UInt64 = 0
        var start = 0
        repeat {
            let end = min(start + chunkSize, plaintext.count)
            let last = end == plaintext.count
            let box = try ChaChaPoly.seal(plaintext[start..<end], using: key, nonce: try chunkNonce(counter, last: last))
            out += Array(box.ciphertext) + Array(box.tag)
            counter += 1
            start = end
            if last { break }
        } while true
        return out
    }

    static func stream(open payload: [UInt8], key: SymmetricKey) throws -> [UInt8] {
        var out: [UInt8] = []
        var counter: UInt64 = 0
        var start = 0
        let sealedChunk = chunkSize + 16
        while true {
            let end = min(start + sealedChunk, payload.count)
            let last = end == payload.count
            guard end - start >= 16 else { throw AgeError.corrupt("payload") }
            let chunk = payload[start..<end]
            guard let box = try? ChaChaPoly.SealedBox(nonce: try chunkNonce(counter, last: last), ciphertext: chunk.dropLast(16), tag: chunk.suffix(16)),
                  let plain = try? ChaChaPoly.open(box, using: key) else { throw AgeError.corrupt("payload chunk \(counter)") }
            out += plain
            counter += 1
            start = end
            if last { break }
        }
        return out
    }

    static func base64(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().filter { $0 != "=" }
    }

    static func unbase64(_ text: String) -> [UInt8]? {
        guard !text.contains("=") else { return nil }
        let padded = text + String(repeating: "=", count: (4 - text.count % 4) % 4)
        return Data(base64Encoded: padded).map(Array.init)
    }

    /// Stanza bodies are wrapped at 64 columns; a body whose length is a multiple of 64 ends with an empty line.
    static func wrapped(_ text: String) -> String {
        var out = ""
        var rest = Substring(text)
        while rest.count >= 64 {
            out += rest.prefix(64) + "\n"
            rest = rest.dropFirst(64)
        }
        return out + rest + "\n"
    }
}
