import ArgumentParser
import Foundation
import ProvisionCore
import TalosKit

struct Probe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Ask a node's Talos API which state it is in: the first thing to run when a node does not come up.",
        discussion: """
            Says whether the node is in maintenance mode, configured by this cluster, configured by another one (or not a Talos node at all), unreachable, or failing TLS (with the reason); its Talos version, hostname, the disks an install could use (USB and read-only disks flagged), its NICs' kernel link names and MACs (what a Mac mini's `machine.link` takes), and on control planes the etcd members. For INVENTORY/NODE the cluster's own CA and a short-lived reader certificate are used; with an address, pass --talosconfig to check a configured node.

            The node is identified by its first TLS handshake alone: Talos in maintenance presents its maintenance certificate (CN maintenance-service.talos.dev) and asks for no client certificate; a node of this cluster presents a certificate from its OS CA. Anything else is refused inside that handshake, so no call, let alone a machine config, ever reaches it, and there is no second, weaker attempt.

            Examples:
              provision probe homelab/mini02
              provision probe 192.168.30.62 --json
              provision probe 10.0.0.5:50000 --talosconfig ~/.talos/config

            Exit 0 when the node answers, 1 when it does not, 3 when it is not this cluster's (wrong-cluster: nothing was sent to it).

            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "INVENTORY/NODE, or an address (optionally with :port).")
    var target: String

    @Option(help: ArgumentHelp("A talosconfig whose current context's credentials to use.", valueName: "file"))
    var talosconfig: String?

    func run() async throws {
        try await runCommand { () throws(Exit) in
            let output = Output(json: global.json)
            let loader = Loader(output: output)
            var host = target, port = 50000
            var credentials: (ca: String, certificate: String, key: String)?
            if let path = talosconfig {
                credentials = try loader.checked { () throws(InputError) in try TalosConfig.credentials(path: path) }
            }
            if let colon = target.lastIndex(of: ":"), let number = Int(target[target.index(after: colon)...]), IPv4Address(String(target[..<colon])) != nil {
                host = String(target[..<colon])
                port = number
            } else if IPv4Address(target) == nil {
                let session = try SecretsSession(global: global, inventory: String(target.split(separator: "/").first ?? ""))
                let (inventory, name) = try loader.member(target, pools: false)
                host = inventory.node(named: name)!.address.value.description
                // The cluster's own CA and a one-hour reader certificate: probing needs no more.
                if credentials == nil, session.store.exists, let bundle = try? await session.store.load() {
                    credentials = try? TalosConfig.credentials(bundle: bundle, roles: ["os:reader"], validity: 3600)
                }
            }
            let result = await TalosProbe(host: host, port: port, credentials: credentials).run()
            Self.report(result, target: "\(host):\(port)", output: output)
            if result.mode == .wrongCluster { throw Exit(status: .refused) }
            if !result.reachable { throw Exit(status: .failed) }
        }
    }

    static func report(_ result: TalosProbe.Result, target: String, output: Output) {
        let disks = (result.disks ?? []).map { disk -> [String: Any] in
            let usb = disk.busPath.lowercased().contains("usb")
            return ["device": disk.deviceName, "sizeBytes": disk.size, "model": disk.model, "serial": disk.serial,
                    "type": "\(disk.type)", "busPath": disk.busPath, "usb": usb, "readonly": disk.readonly, "systemDisk": disk.systemDisk]
        }
        if output.json {
            var object: [String: Any] = ["target": target, "mode": result.mode.rawValue, "reachable": result.reachable, "disks": disks]
            object["reason"] = result.reason ?? NSNull()
            object["disksError"] = result.disksError ?? NSNull()
            object["version"] = result.version ?? NSNull()
            object["platform"] = result.platform ?? NSNull()
            object["hostname"] = result.hostname ?? NSNull()
            object["stage"] = result.stage ?? NSNull()
            object["links"] = result.links.map { $0.filter(\.isPhysical).map { ["name": $0.name, "mac": $0.mac] } } ?? NSNull()
            object["etcdMembers"] = result.etcdMembers.map { $0.map { ["id": $0.id, "hostname": $0.hostname, "learner": $0.isLearner] } } ?? NSNull()
            output.document(object)
            return
        }
        var line = "\(target): \(result.mode.rawValue)"
        if let version = result.version { line += " (Talos \(version)\(result.platform.map { ", \($0)" } ?? ""))" }
        if let hostname = result.hostname { line += ", hostname \(hostname)" }
        if let stage = result.stage { line += ", stage \(stage)" }
        output.result(line)
        if let reason = result.reason { output.result("  \(reason)") }
        if let error = result.disksError { output.result("  disks: could not be read (\(error))") }
        if let list = result.disks, !list.isEmpty {
            output.result("  disks:")
            for disk in list {
                let flags = [disk.busPath.lowercased().contains("usb") ? "USB: never an install target" : nil, disk.readonly ? "read-only" : nil,
                             disk.systemDisk ? "system disk" : nil].compactMap { $0 }
                output.result("    \(disk.deviceName)  \(disk.size / 1_000_000_000) GB  \(disk.type)  \(disk.model)\(disk.serial.isEmpty ? "" : "  serial \(disk.serial)")\(flags.isEmpty ? "" : "  (\(flags.joined(separator: ", ")))")")
            }
        }
        if let links = result.links?.filter(\.isPhysical), !links.isEmpty {
            // The kernel names: what `machine.link` takes (Wake-on-LAN is armed by that name alone).
            output.result("  links (machine.link takes the name):")
            for link in links { output.result("    \(link.name)  \(link.mac)") }
        }
        if let members = result.etcdMembers {
            output.result("  etcd members: " + members.map { "\($0.hostname.isEmpty ? "(not started)" : $0.hostname)\($0.isLearner ? " (learner)" : "")" }.joined(separator: ", "))
        }
    }
}
