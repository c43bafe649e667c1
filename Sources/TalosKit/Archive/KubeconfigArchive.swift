import Foundation
import ProvisionCore

/// The payload of Talos' Kubeconfig call: a gzip'd tar with one file, `kubeconfig`. Talos closes
/// the gzip stream without closing the tar writer, so there is no padding after the data and no
/// end-of-archive blocks: we read the header and `size` bytes and stop, as talosctl does.
public enum KubeconfigArchive {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public static func extract(_ tarGz: Data) throws -> String {
        let tar: Data
        do { tar = try Gzip.decompress(tarGz, limit: 16 << 20) } catch { throw Failure(description: "kubeconfig archive: \(error)") }
        let bytes = [UInt8](tar)
        guard bytes.count >= 512 else { throw Failure(description: "kubeconfig archive: \(bytes.count) bytes, shorter than one tar header") }
        let name = String(decoding: bytes[0..<100].prefix { $0 != 0 }, as: UTF8.self)
        let sizeText = String(decoding: bytes[124..<136].prefix { $0 != 0 && $0 != 0x20 }, as: UTF8.self)
        guard let size = Int(sizeText, radix: 8) else { throw Failure(description: "kubeconfig archive: tar size field '\(sizeText)' is not octal") }
        guard name == "kubeconfig" else { throw Failure(description: "kubeconfig archive: expected a file named kubeconfig, found '\(name)'") }
        guard bytes.count >= 512 + size else { throw Failure(description: "kubeconfig archive: truncated (\(bytes.count - 512) of \(size) bytes)") }
        return String(decoding: bytes[512..<(512 + size)], as: UTF8.self)
    }

    /// Builds the archive exactly as Talos does, quirk included (used by the lab's simulated nodes).
    public static func make(_ kubeconfig: String, modified: Date = Date()) throws -> Data {
        let content = [UInt8](kubeconfig.utf8)
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int) {
            for (index, byte) in text.utf8.enumerated() { header[offset + index] = byte }
        }
        put("kubeconfig", at: 0)
        put("0000600\0", at: 100)
        put("0000000\0", at: 108)
        put("0000000\0", at: 116)
        put(String(format: "%011o\0", content.count), at: 124)
        put(String(format: "%011o\0", Int(modified.timeIntervalSince1970)), at: 136)
        put("        ", at: 148)
        header[156] = UInt8(ascii: "0")
        put("ustar\0" + "00", at: 257)
        let checksum = header.reduce(0) { $0 + Int($1) }
        put(String(format: "%06o\0 ", checksum), at: 148)
        return try Gzip.compress(Data(header + content))
    }
}
