import Foundation
import ProvisionCore

extension TalosConfig {
    /// Reads the current context's CA, certificate and key (PEM) from a talosconfig file.
    public static func credentials(path: String) throws(InputError) -> (ca: String, certificate: String, key: String) {
        let root = try YAMLLoader().load(path: path)
        let at = root.location
        guard let context = root["context"]?.scalar, let entry = root["contexts"]?[context] else {
            throw InputError("talosconfig.context", at: at, "the talosconfig has no current context", fix: "write it with `provision talosconfig` or `talosctl config`")
        }
        func field(_ key: String) throws(InputError) -> String {
            guard let value = entry[key]?.scalar, let data = Data(base64Encoded: value), let text = String(data: data, encoding: .utf8) else {
                throw InputError("talosconfig.field", at: entry[key]?.location ?? entry.location,
                                 "context `\(context)` has no usable `\(key)`", fix: "regenerate the talosconfig")
            }
            return text
        }
        return (try field("ca"), try field("crt"), try field("key"))
    }
}
