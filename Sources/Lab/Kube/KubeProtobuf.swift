import Foundation
import KubeKit

/// The Kubernetes protobuf encoding kubectl's typed commands send (`kubectl create configmap`,
/// `create secret generic`, `create namespace` post `application/vnd.kubernetes.protobuf`): the
/// `k8s\0` magic, a runtime.Unknown envelope (typeMeta 1, raw 2), and in `raw` the object in
/// k8s.io/api's generated.proto field numbers. Decoded to JSON for the kinds those commands make;
/// any other kind is refused with 415, as an API server without that type's protobuf would.
enum KubeProtobuf {
    static let contentType = "application/vnd.kubernetes.protobuf"
    static let magic = Data([0x6b, 0x38, 0x73, 0x00])

    struct Unsupported: Error { let message: String }

    static func decode(_ body: Data) throws(Unsupported) -> JSON {
        guard body.starts(with: magic) else { throw Unsupported(message: "a protobuf body starts with the k8s\\0 magic") }
        let envelope = fields(body.dropFirst(4))
        let typeMeta = fields(envelope[1]?.first ?? Data())
        let apiVersion = string(typeMeta[1]), kind = string(typeMeta[2])
        let raw = fields(envelope[2]?.first ?? Data())
        var object: [String: JSON] = ["apiVersion": .string(apiVersion), "kind": .string(kind), "metadata": metadata(raw[1]?.first ?? Data())]
        switch (apiVersion, kind) {
        case ("v1", "ConfigMap"):
            if let data = raw[2] { object["data"] = .object(stringMap(data)) }
            if let binary = raw[3] { object["binaryData"] = .object(stringMap(binary, base64: true)) }
        case ("v1", "Secret"):
            if let data = raw[2] { object["data"] = .object(stringMap(data, base64: true)) }
            if let type = raw[3] { object["type"] = .string(string(type)) }
            if let stringData = raw[4] { object["stringData"] = .object(stringMap(stringData)) }
        case ("v1", "Namespace"):
            break
        default:
            throw Unsupported(message: "the lab reads \(contentType) for ConfigMap, Secret and Namespace only, not \(apiVersion) \(kind); send JSON")
        }
        return .object(object)
    }

    /// ObjectMeta: name 1, generateName 2, namespace 3, labels 11, annotations 12 (empty strings are unset).
    static func metadata(_ data: Data) -> JSON {
        let meta = fields(data)
        var out: [String: JSON] = [:]
        for (number, key) in [(1, "name"), (2, "generateName"), (3, "namespace")] {
            let value = string(meta[number])
            if !value.isEmpty { out[key] = .string(value) }
        }
        if let labels = meta[11] { out["labels"] = .object(stringMap(labels)) }
        if let annotations = meta[12] { out["annotations"] = .object(stringMap(annotations)) }
        return .object(out)
    }

    /// A proto3 map<string, string|bytes>: repeated entries of key 1, value 2.
    static func stringMap(_ entries: [Data], base64: Bool = false) -> [String: JSON] {
        var out: [String: JSON] = [:]
        for entry in entries {
            let pair = fields(entry)
            let value = pair[2]?.first ?? Data()
            out[string(pair[1])] = .string(base64 ? value.base64EncodedString() : String(decoding: value, as: UTF8.self))
        }
        return out
    }

    static func string(_ values: [Data]?) -> String { values?.last.map { String(decoding: $0, as: UTF8.self) } ?? "" }

    /// The length-delimited fields of a message by number (varints and fixed fields are skipped).
    static func fields(_ data: Data) -> [Int: [Data]] {
        var out: [Int: [Data]] = [:]
        var bytes = Array(data)[...]
        while let key = varint(&bytes) {
            let number = Int(key >> 3)
            switch key & 7 {
            case 0: _ = varint(&bytes)
            case 1: bytes = bytes.dropFirst(8)
            case 5: bytes = bytes.dropFirst(4)
            case 2:
                guard let length = varint(&bytes), length <= UInt64(bytes.count) else { return out }
                out[number, default: []].append(Data(bytes.prefix(Int(length))))
                bytes = bytes.dropFirst(Int(length))
            default: return out
            }
        }
        return out
    }

    static func varint(_ bytes: inout ArraySlice<UInt8>) -> UInt64? {
        var value: UInt64 = 0, shift: UInt64 = 0
        while let byte = bytes.first {
            bytes = bytes.dropFirst()
            value |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
            if shift > 63 { return nil }
        }
        return nil
    }
}
