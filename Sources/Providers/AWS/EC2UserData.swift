import Foundation
import ProvisionCore

/// EC2 user data for a Talos worker: the machine config, gzip'd and base64'd. EC2 caps user data at
/// 16 KB before base64, so a config too large even compressed is refused here, before any launch.
public enum EC2UserData {
    public static let limit = 16 * 1024

    public struct TooLarge: Error, CustomStringConvertible, Sendable {
        public let bytes: Int
        public var description: String {
            "the worker config is \(bytes) bytes gzip'd, over EC2's 16 KB user-data limit; move large patches (extra manifests, files) out of the config"
        }
    }

    public static func encode(_ config: String) throws -> String {
        let compressed = try Gzip.compress(Data(config.utf8))
        guard compressed.count <= limit else { throw TooLarge(bytes: compressed.count) }
        return compressed.base64EncodedString()
    }

    /// What the instance sees: base64 decoded, gunzipped when it is gzip (magic 1f 8b).
    public static func decode(_ base64: String) -> String? {
        guard let raw = Data(base64Encoded: base64) else { return nil }
        if raw.starts(with: [0x1f, 0x8b]) {
            return (try? Gzip.decompress(raw, limit: 1 << 20)).map { String(decoding: $0, as: UTF8.self) }
        }
        return String(decoding: raw, as: UTF8.self)
    }
}
