import Foundation
import ProvisionCore
import TalosKit

/// The parts of a machine config a simulated node acts on, read from what a client applied. The
/// config is checked against Talos' own schema first, so unknown keys are refused as Talos does.
struct AppliedConfig: Sendable {
    var text: String
    /// The documents as parsed, and as Talos compares and diffs them (YAML re-emitted, comments gone).
    var documents: [ConfigValue]
    var canonical: String { ConfigDocuments(documents: documents).yaml }
    /// The v1alpha1 document: what `CanApplyImmediate` compares.
    var main: ConfigValue? { documents.first { $0["version"]?.stringValue == "v1alpha1" } }
    var controlPlane: Bool
    /// Workers get the OS CA certificate only; their API certificate comes from a control plane's trustd.
    var osCA: (certificate: String, key: String?)
    var kubernetesCA: (certificate: String, key: String)?
    var clusterName: String
    var endpoint: String
    var hostname: String?
    var installDisk: String?
    /// `machine.install.diskSelector.type` (`nvme`, `ssd`, `hdd`) and `.model` (a glob, as Talos'
    /// `glob(pattern, disk.model)`): the selector fields the lab matches.
    var installDiskType: String?
    var installDiskModel: String? = nil
    /// `machine.install.wipe`: the installer zeroes the disk instead of refusing a non-empty one.
    var installWipe: Bool
    var certSANs: [String]
    /// `machine.nodeLabels`: Talos keeps these on the machine's Node.
    var nodeLabels: [String: String]
    /// The link, address and VIP documents, as Talos resolves them: read once, at parse (the
    /// node's address and the VIP election ask for them on every look).
    var network: ConfiguredNetwork

    /// The Kubernetes components the node itself runs, by process name (`kube-apiserver`,
    /// `kubelet`), at the version of their image tag: what a config change restarts. kube-proxy
    /// is a DaemonSet, not the node's own.
    var components: [String: String] {
        var found: [String: String] = [:]
        for (component, version) in ConfigDocuments(documents: documents).kubernetesComponents where component != .proxy {
            found[component.processName] = version
        }
        return found
    }

    struct Rejection: Error, CustomStringConvertible {
        let description: String
    }

    /// `validate: false` for a config the node accepted before (restored from disk): a Talos
    /// upgraded since keeps running the config of its older version, as the real one does.
    static func parse(_ text: String, talosVersion: String, validate: Bool = true) throws(Rejection) -> AppliedConfig {
        let values: [ConfigValue]
        do { values = try ConfigDocuments(yaml: text, file: "config").documents } catch {
            throw Rejection(description: "failed to parse config: \(error)")
        }
        guard !values.isEmpty else { throw Rejection(description: "configuration is empty") }
        let schema: ConfigSchema
        do { schema = try ConfigSchema.forVersion(talosVersion, asNodeDecoder: true) } catch { throw Rejection(description: "\(error)") }
        for value in values where validate {
            let problems = schema.problems(in: value)
            if !problems.isEmpty { throw Rejection(description: "configuration validation failed: " + problems.joined(separator: "; ")) }
        }
        guard let main = values.first(where: { $0["version"]?.stringValue == "v1alpha1" }) else {
            throw Rejection(description: "config is not complete for boot: no v1alpha1 document")
        }
        let machine = main["machine"]
        let cluster = main["cluster"]
        let type = machine?["type"]?.stringValue ?? ""
        guard type == "controlplane" || type == "worker" || type == "init" else {
            throw Rejection(description: "machine.type must be controlplane or worker, got '\(type)'")
        }
        func pair(_ value: ConfigValue?) -> (String, String)? {
            guard let crt = value?["crt"]?.stringValue.flatMap(decode), let key = value?["key"]?.stringValue.flatMap(decode) else { return nil }
            return (crt, key)
        }
        guard let osCertificate = machine?["ca"]?["crt"]?.stringValue.flatMap(decode), osCertificate.contains("BEGIN CERTIFICATE") else {
            throw Rejection(description: "machine.ca.crt must hold the OS CA certificate")
        }
        let osKey = machine?["ca"]?["key"]?.stringValue.flatMap(decode).flatMap { $0.isEmpty ? nil : $0 }
        let hostnameDocument = values.first { $0["kind"]?.stringValue == "HostnameConfig" }
        let sans = machine?["certSANs"].flatMap { value -> [String]? in
            guard case let .list(items) = value else { return nil }
            return items.compactMap(\.stringValue)
        } ?? []
        var labels: [String: String] = [:]
        if case let .map(entries)? = machine?["nodeLabels"] { for entry in entries { labels[entry.key] = entry.value.stringValue ?? "" } }
        return AppliedConfig(
            text: text, documents: values, controlPlane: type != "worker", osCA: (osCertificate, osKey), kubernetesCA: pair(cluster?["ca"]),
            clusterName: cluster?["clusterName"]?.stringValue ?? "talos",
            endpoint: cluster?["controlPlane"]?["endpoint"]?.stringValue ?? "",
            hostname: hostnameDocument?["hostname"]?.stringValue ?? machine?["network"]?["hostname"]?.stringValue,
            installDisk: machine?["install"]?["disk"]?.stringValue, installDiskType: machine?["install"]?["diskSelector"]?["type"]?.stringValue,
            installDiskModel: machine?["install"]?["diskSelector"]?["model"]?.stringValue,
            installWipe: machine?["install"]?["wipe"] == .bool(true), certSANs: sans, nodeLabels: labels,
            network: ConfiguredNetwork(documents: values))
    }

    private static func decode(_ base64: String) -> String? {
        Data(base64Encoded: base64).flatMap { String(data: $0, encoding: .utf8) }
    }
}
