import Foundation
import Testing
@testable import Providers

/// Our libvirt binding against libvirt itself: the test driver, in-process.
@Suite(.serialized) struct LibvirtTests {
    func domain(_ name: String) -> TalosDomainXML {
        var spec = TalosDomainXML(name: name, memoryMiB: 4096, vcpus: 2, mac: "52:54:00:00:00:21", diskPath: "/mnt/user/domains/\(name)/vdisk1.img", owner: "demo/\(name)")
        spec.isoPath = "/mnt/user/isos/talos-metal-amd64.iso"
        spec.guestAgent = true
        return spec
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
        #expect(try !libvirt.addresses(of: name).isEmpty, "the test driver reports a fabricated address")
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
