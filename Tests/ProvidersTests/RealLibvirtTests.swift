import Foundation
import Testing
import TestSupport
@testable import Providers
@testable import ProvisionCore

/// The product's domains on a real libvirtd with QEMU (TCG: nested KVM fails on these machines)
/// and OVMF, not the test driver that "boots" anything: boot media downloaded from a stand-in Image
/// Factory on loopback, uploaded through virStorageVolUpload into a real pool, then booted. The
/// "Talos" is a GRUB ISO that prints a marker on the serial console, read from the VM's pty. The
/// VMs' NICs sit on a bridge with no uplink: nothing leaves the machine. In CI a missing libvirtd
/// is a failure, not a skip.
@Suite(.serialized) struct RealLibvirtTests {
    static let schematic = String(repeating: "ab", count: 32)

    func inventory(_ dir: String, pool: String, factory: String, bridge: String, poolPath: String = "/var/lib/libvirt/images/unused") throws -> Inventory {
        try FileManager.default.createDirectory(atPath: dir + "/images", withIntermediateDirectories: true)
        try "customization: {}\n".write(toFile: dir + "/images/vm.yaml", atomically: true, encoding: .utf8)
        try """
            apiVersion: provision/v1
            kind: Inventory
            cluster:
              name: realvirt
              talosVersion: v1.13.9
              kubernetesVersion: v1.34.2
              endpoint: https://127.1.0.10:6443
              nodeCIDR: 127.1.0.0/24
              gateway: 127.1.0.1
              podCIDR: 10.244.0.0/16
              serviceCIDR: 10.96.0.0/12
            secrets:
              encryption: plaintext
            providers:
              host:
                kind: libvirt
                uri: \(RealLibvirtd.uri)
                storagePool: \(pool)
                domainsPath: \(poolPath)
                isoPool: \(pool)-isos
                isosPath: \(poolPath)-isos
                imageFactory: \(factory)
                domainType: qemu
            images:
              iso:
                schematic: images/vm.yaml
                platform: metal
              disk:
                schematic: images/vm.yaml
                platform: nocloud
            nodes:
              - name: cp1
                role: controlplane
                image: iso
                address: 127.1.0.11
                machine: {provider: host, id: provtest-iso-\(pool.suffix(6)), cpus: 1, memory: 512MiB, disk: 1GiB, mac: "52:54:00:77:00:11", bridge: \(bridge)}
                install: {disk: /dev/vda}
              - name: w1
                role: worker
                image: disk
                address: 127.1.0.21
                machine: {provider: host, id: provtest-disk-\(pool.suffix(6)), cpus: 1, memory: 512MiB, disk: 1GiB, mac: "52:54:00:77:00:21", bridge: \(bridge)}
                install: {disk: /dev/vda}
            """.write(toFile: dir + "/inventory.yaml", atomically: true, encoding: .utf8)
        return try InventoryParser.load(path: dir + "/inventory.yaml").0
    }

    /// A metal node boots the ISO from its CD-ROM after its blank disk; a nocloud node boots the disk
    /// made from the (gzip'd) disk image. Both reach the marker on their serial console.
    @Test(.timeLimit(.minutes(12))) func theProductsDomainsBootTheirMediaOnARealLibvirtd() async throws {
        try await QuietMachine.exclusive { try await bootBothDomains() }
    }

    func bootBothDomains() async throws {
        if let missing = RealLibvirtd.missing {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("\(missing)") }
            return
        }
        let daemon = try await RealLibvirtd()
        let dir = temporaryDirectory()
        let id = UUID().uuidString.prefix(8).lowercased()
        let pool = "provtest-\(id)", bridge = "pvt\(id.prefix(6))", poolPath = "/var/lib/libvirt/images/\(pool)"
        var cleanup: [() async -> Void] = [{ await daemon.stop() }]
        do {
            // The bridge the VMs' NICs sit on: no uplink, so nothing they send leaves the machine.
            _ = try await Subprocess.run(["ip", "link", "add", "name", bridge, "type", "bridge"])
            _ = try await Subprocess.run(["ip", "link", "set", bridge, "up"])
            cleanup.append { _ = try? await Subprocess.run(["ip", "link", "del", bridge]) }
            // No pools: the provider defines them (Unraid has none).
            for (name, path) in [(pool, poolPath), (pool + "-isos", poolPath + "-isos")] {
                cleanup.append {
                    _ = try? await daemon.virsh(["pool-destroy", name])
                    _ = try? await daemon.virsh(["pool-undefine", name])
                    try? FileManager.default.removeItem(atPath: path)
                }
            }

            // The stand-in Image Factory: the marker ISO as the metal ISO, and gzip'd as the nocloud disk image.
            let marker = "PROVISION-REAL-LIBVIRT-\(id)"
            let iso = try await RealLibvirtd.markerISO(marker, in: dir)
            let served = dir + "/factory/image/\(Self.schematic)/v1.13.9"
            try FileManager.default.createDirectory(atPath: served, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: iso, toPath: served + "/metal-amd64.iso")
            try Gzip.compress(try Data(contentsOf: URL(fileURLWithPath: iso))).write(to: URL(fileURLWithPath: served + "/nocloud-amd64.raw.gz"))
            let host = Loopback.address()
            let server = try await BackgroundProcess(["python3", "-m", "http.server", "8080", "--bind", host, "--directory", dir + "/factory"])
            cleanup.append { await server.stop() }
            try await Task.sleep(for: .seconds(1))

            let inventory = try inventory(dir, pool: pool, factory: "http://\(host):8080", bridge: bridge, poolPath: poolPath)
            let spec = try #require(inventory.provider(named: "host"))
            let provider = try LibvirtMachineProvider(provider: spec) { node in
                let metal = node.image.value == "iso"
                return LibvirtBootMedia(kind: metal ? .iso : .disk,
                                        url: "http://\(host):8080/image/\(Self.schematic)/v1.13.9/" + (metal ? "metal-amd64.iso" : "nocloud-amd64.raw.gz"),
                                        volume: "talos-v1.13.9-\(Self.schematic.prefix(12))-" + (metal ? "metal-amd64.iso" : "nocloud-amd64.raw"), agent: false)
            }
            let changes = try await provider.hostChanges(inventory.nodes, in: inventory)
            #expect(changes.count == 2 && changes[0].contains("define storage pool \(pool)") && changes[1].contains("\(pool)-isos") && changes[1].contains("cp1"), "\(changes)")
            try await provider.prepareHost(inventory.nodes, in: inventory)
            for name in [pool, pool + "-isos"] {
                let info = try await daemon.virsh(["pool-info", name])
                #expect(info.contains("running") && info.range(of: #"Persistent:\s+yes"#, options: .regularExpression) != nil
                        && info.range(of: #"Autostart:\s+yes"#, options: .regularExpression) != nil, "\(name): \(info)")
            }
            #expect(try await provider.hostChanges(inventory.nodes, in: inventory).isEmpty, "defined once")
            for name in ["cp1", "w1"] {
                let node = try #require(inventory.node(named: name))
                cleanup.append { try? await provider.delete(node, in: inventory) }
                let state = try await provider.ensureRunning(node, in: inventory)
                #expect(state.power == .running, "\(name): \(state)")
                // An emulated CPU runs flat out: keep it from starving the tests running beside this one.
                // Linux nices a thread at a time: every thread of QEMU's, its vCPUs included.
                if let pid = (try? String(contentsOfFile: "/run/libvirt/qemu/\(provider.name(node)).pid", encoding: .utf8)).flatMap({ Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) {
                    for thread in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [] {
                        if let id = id_t(thread) { setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id, 19) }
                    }
                }
                let dominfo = try await daemon.virsh(["dominfo", provider.name(node)])
                #expect(dominfo.range(of: #"Autostart:\s+enable"#, options: .regularExpression) != nil, "Unraid starts it with the array: \(dominfo)")
                let xml = try provider.connection.xml(of: provider.name(node))
                #expect(xml.contains("type='qemu'") && xml.contains("mode='maximum'"), "TCG, and the CPU that goes with it: \(xml)")
                if name == "cp1" {
                    #expect(xml.contains("device='cdrom'") && xml.contains("metal-amd64.iso"), "the ISO on the CD-ROM: \(xml)")
                    // libvirt's automatic EFI with Secure Boot off: Debian's plain OVMF, not the MS-keys build.
                    #expect(xml.contains("OVMF_CODE_4M.fd") && !xml.contains("OVMF_CODE_4M.ms.fd"), "\(xml)")
                } else {
                    #expect(!xml.contains("device='cdrom'"), "\(xml)")
                }
                guard let start = xml.range(of: "<serial type='pty'>"), let path = xml[start.upperBound...].range(of: "path='") else {
                    Issue.record("\(name): no serial pty in \(xml)")
                    continue
                }
                let pty = String(xml[path.upperBound...].prefix { $0 != "'" })
                let text = try await RealLibvirtd.console(pty: pty, until: marker, timeout: .seconds(240))
                #expect(text.contains(marker), "\(name) booted its medium to the marker; its console said: \(text.suffix(2000))")
                try await provider.delete(node, in: inventory)
            }
            // Uploaded once each, checked, named by version and schematic; no half upload left behind.
            let volumes = try await daemon.virsh(["vol-list", pool]), isos = try await daemon.virsh(["vol-list", pool + "-isos"])
            #expect(isos.contains("talos-v1.13.9-abababababab-metal-amd64.iso") && volumes.contains("talos-v1.13.9-abababababab-nocloud-amd64.raw"), "\(volumes)\(isos)")
            #expect(!volumes.contains(".part") && !isos.contains(".part"), "\(volumes)\(isos)")

            // A bridge the host lacks is named before anything is made (libvirt's interface driver lists the host's links).
            let elsewhere = try self.inventory(dir, pool: pool, factory: "http://\(host):8080", bridge: "pvtno\(id.prefix(6))", poolPath: poolPath)
            #expect(try await provider.preflight(inventory.nodes, in: inventory).isEmpty, "its own bridge is there")
            let noBridge = try await provider.preflight(elsewhere.nodes, in: elsewhere)
            #expect(noBridge.count == 1 && noBridge[0].contains("bridge pvtno\(id.prefix(6)) does not exist") && noBridge[0].contains(bridge), "\(noBridge)")

            // A pool provision may not create names what to do by hand.
            let denied = try self.inventory(dir, pool: pool + "-denied", factory: "http://\(host):8080", bridge: bridge, poolPath: "/proc/provtest-\(id)")
            let deniedProvider = try LibvirtMachineProvider(provider: try #require(denied.provider(named: "host")))
            do {
                try await deniedProvider.prepareHost(denied.nodes, in: denied)
                Issue.record("a pool under /proc was defined")
            } catch {
                #expect("\(error)".contains("pool-define-as \(pool)-denied dir --target /proc/provtest-\(id)") && "\(error)".contains("storagePool"), "\(error)")
            }
            #expect(try await daemon.virsh(["pool-list", "--all"]).contains("-denied") == false, "nothing half-defined is left")
        } catch {
            Issue.record("\(error)")
        }
        for step in cleanup.reversed() { await step() }
    }
}
