import Foundation
import Testing
import ProvisionCore
@testable import Providers

/// Our libvirt binding against libvirt itself: the test driver, in-process.
@Suite(.serialized) struct LibvirtTests {
    func domain(_ name: String) -> TalosDomainXML {
        var spec = TalosDomainXML(name: name, memoryMiB: 4096, vcpus: 2, mac: "52:54:00:00:00:21", diskPath: "/mnt/user/domains/\(name)/vdisk1.img", owner: "demo/\(name)")
        spec.isoPath = "/mnt/user/isos/talos-metal-amd64.iso"
        spec.guestAgent = true
        return spec
    }

    /// Every shape of domain the product renders passes libvirt's own schema (virt-xml-validate,
    /// from libxml2-utils): metal with its ISO and nocloud without, libvirt's automatic firmware and
    /// Unraid's explicit OVMF, KVM and TCG, with and without the guest agent's channel.
    @Test func everyRenderedDomainPassesVirtXMLValidate() async throws {
        guard FileManager.default.fileExists(atPath: "/usr/bin/virt-xml-validate") else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("virt-xml-validate is missing (scripts/bootstrap installs libxml2-utils)") }
            return
        }
        var shapes: [(String, TalosDomainXML)] = []
        for type in ["kvm", "qemu"] {
            for iso in [true, false] {
                for unraid in [true, false] {
                    var xml = domain("shape-\(type)-\(iso)-\(unraid)")
                    xml.domainType = type
                    xml.isoPath = iso ? "/mnt/user/isos/talos-v1.13.9-ce4c980550dd-metal-amd64.iso" : nil
                    xml.guestAgent = !iso
                    if unraid {
                        xml.loader = LibvirtMachineProvider.unraidLoader
                        xml.nvramTemplate = LibvirtMachineProvider.unraidVars
                    }
                    shapes.append((xml.name, xml))
                }
            }
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("domains-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, xml) in shapes {
            try xml.xml.write(toFile: "\(dir)/\(name).xml", atomically: true, encoding: .utf8)
            let result = try await Subprocess.run(["virt-xml-validate", "\(dir)/\(name).xml", "domain"])
            #expect(result.status == 0, "\(name): \(result.stdout)\(result.stderr)\n\(xml.xml)")
        }
    }

    @Test func defineStartStopUndefineAndReadBack() throws {
        let libvirt = try LibvirtConnection(uri: "test:///default")
        let name = "talos-\(UUID().uuidString.prefix(8).lowercased())"
        #expect(try libvirt.state(of: name) == nil, "absent before")
        try libvirt.define(name: name, xml: domain(name).xml)
        #expect(try libvirt.state(of: name) == .shutOff)
        // Defining again (a re-run) keeps the same domain.
        let uuidBefore = try libvirt.xml(of: name).components(separatedBy: "<uuid>")[1].prefix(36)
        try libvirt.define(name: name, xml: domain(name).xml)
        #expect(try libvirt.xml(of: name).components(separatedBy: "<uuid>")[1].prefix(36) == uuidBefore)

        let xml = try libvirt.xml(of: name)
        #expect(xml.contains("machine='q35'"))
        #expect(xml.contains("<mac address='52:54:00:00:00:21'/>"))
        #expect(xml.contains("<source bridge='br0'/>"))
        #expect(xml.contains("<target dev='vda' bus='virtio'/>"))
        #expect(xml.contains("org.qemu.guest_agent.0"))

        try libvirt.start(name)
        #expect(try libvirt.state(of: name) == .running)
        let fabricated = try #require(try libvirt.addresses(of: name).first { $0.mac == "52:54:00:00:00:21" }?.address)
        // Where the provider says the VM is: only its own MAC's address, only on the node network.
        let around = try #require(IPv4Network("\(fabricated)/24"))
        #expect(libvirt.reportedAddress(of: name, macs: ["52:54:00:00:00:21"], in: around) == IPv4Address(fabricated))
        #expect(libvirt.reportedAddress(of: name, macs: ["52:54:00:00:00:21"], in: IPv4Network("127.0.0.0/24")!) == nil, "outside the node network")
        #expect(libvirt.reportedAddress(of: name, macs: ["52:54:00:00:00:99"], in: around) == nil, "another NIC's")
        try libvirt.destroy(name)
        #expect(try libvirt.state(of: name) == .shutOff)
        try libvirt.undefine(name)
        #expect(try libvirt.state(of: name) == nil)
    }

    /// What the lab's hypervisor file keeps of a domain: the XML between `<domain ` and its
    /// closing tag, as libvirt wrote it (spliced, after every change, for every domain).
    @Test func theSavedStateKeepsEachDomainsXML() throws {
        let connection = try LibvirtConnection(uri: "test:///default")
        try connection.define(name: "saved", xml: domain("saved").xml)
        let xml = try connection.xml(of: "saved")
        let inside = try #require(TestDriverState.inside(domain: xml))
        #expect("<domain " + inside + "</domain>\n" == xml)
        #expect(TestDriverState.inside(domain: "<network>x</network>") == nil)
        #expect(TestDriverState.inside(domain: "<domain type='test'>") == nil)
        try connection.undefine("saved")
    }

    @Test func errorsAreTyped() throws {
        let libvirt = try LibvirtConnection(uri: "test:///default")
        do {
            try libvirt.start("no-such-domain")
            Issue.record("started a missing domain")
        } catch let error as LibvirtError {
            #expect(error.isMissingDomain)
            #expect("\(error)".contains("no-such-domain") || error.message.localizedCaseInsensitiveContains("not found"))
        }
        #expect(throws: LibvirtError.self) { try LibvirtConnection(uri: "nosuchdriver:///x") }
    }

    /// test:///default is one shared instance per process (100 GiB pool), so the volume is small.
    @Test func volumesAreCreatedOnce() throws {
        let libvirt = try LibvirtConnection(uri: "test:///default")
        let name = "vol-\(UUID().uuidString.prefix(8).lowercased()).raw"
        let path = try libvirt.ensureVolume(pool: "default-pool", name: name, bytes: 1 << 30)
        #expect(path.hasSuffix(name))
        #expect(try libvirt.ensureVolume(pool: "default-pool", name: name, bytes: 1 << 30) == path)
    }
}
