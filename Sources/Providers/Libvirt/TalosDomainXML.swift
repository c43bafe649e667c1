import Foundation
import ProvisionCore

/// Domain XML for a Talos VM on libvirt (Unraid): q35 + UEFI without Secure Boot keys (a plain Talos
/// ISO would not boot under the MS-keys firmware libvirt picks by default), virtio disk and NIC on the
/// inventory's bridge with the inventory's MAC, serial console, host CPU, no balloon. Its metadata
/// carries provision's owner mark and Unraid's template (Linux), so Unraid's VM form opens it as a
/// Linux VM rather than its default Windows 10 (unraid/webgui `VMedit.php`); saving that form
/// rebuilds the metadata from the template alone (`libvirt.php`) and drops the mark.
public struct TalosDomainXML: Sendable {
    public var name: String
    public var memoryMiB: Int
    public var vcpus: Int
    public var mac: String
    public var bridge: String = "br0"
    public var diskPath: String
    public var isoPath: String?
    /// `kvm`, or `qemu` (TCG) on a host without KVM; the CPU element follows it: libvirt refuses
    /// host-passthrough under TCG ("not supported by hypervisor").
    public var domainType = "kvm"
    /// Explicit firmware (Unraid's own VM manager names its OVMF this way); nil = libvirt's
    /// automatic EFI with Secure Boot off.
    public var loader: String?
    public var nvramTemplate: String?
    public var guestAgent = false
    public var owner: String

    public init(name: String, memoryMiB: Int, vcpus: Int, mac: String, diskPath: String, owner: String) {
        self.name = name
        self.memoryMiB = memoryMiB
        self.vcpus = vcpus
        self.mac = mac
        self.diskPath = diskPath
        self.owner = owner
    }

    static func escape(_ text: String) -> String { XMLText.escape(text) }

    public var xml: String {
        let e = Self.escape
        let firmware: String
        if let loader {
            firmware = """
                    <loader readonly='yes' type='pflash'>\(e(loader))</loader>
                    \(nvramTemplate.map { "<nvram template='\(e($0))'/>" } ?? "")
                """
        } else {
            firmware = """
                    <firmware>
                      <feature enabled='no' name='secure-boot'/>
                      <feature enabled='no' name='enrolled-keys'/>
                    </firmware>
                """
        }
        let cdrom = isoPath.map { """
                <disk type='file' device='cdrom'>
                  <driver name='qemu' type='raw'/>
                  <source file='\(e($0))'/>
                  <target dev='sda' bus='sata'/>
                  <readonly/>
                  <boot order='2'/>
                </disk>
            """ } ?? ""
        let agent = guestAgent ? "    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>\n" : ""
        return """
            <domain type='\(e(domainType))'>
              <name>\(e(name))</name>
              <metadata>
                <provision:node xmlns:provision='https://provision.dev/libvirt/1'>\(e(owner))</provision:node>
                <vmtemplate xmlns='http://unraid' name='Linux' os='linux' icon='linux.png'/>
              </metadata>
              <memory unit='MiB'>\(memoryMiB)</memory>
              <vcpu>\(vcpus)</vcpu>
              <os\(loader == nil ? " firmware='efi'" : "")>
                <type arch='x86_64' machine='q35'>hvm</type>
            \(firmware)
              </os>
              <features><acpi/><apic/></features>
              \(domainType == "kvm" ? "<cpu mode='host-passthrough' check='none' migratable='on'/>" : "<cpu mode='maximum' check='none'/>")
              <clock offset='utc'/>
              <on_poweroff>destroy</on_poweroff>
              <on_reboot>restart</on_reboot>
              <devices>
                <disk type='file' device='disk'>
                  <driver name='qemu' type='raw' cache='writeback' discard='unmap'/>
                  <source file='\(e(diskPath))'/>
                  <target dev='vda' bus='virtio'/>
                  <boot order='1'/>
                </disk>
            \(cdrom)
                <interface type='bridge'>
                  <mac address='\(e(mac))'/>
                  <source bridge='\(e(bridge))'/>
                  <model type='virtio'/>
                  <rom bar='off'/>
                </interface>
                <serial type='pty'><target port='0'/></serial>
                <console type='pty'><target type='serial' port='0'/></console>
            \(agent)    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
                <memballoon model='none'/>
              </devices>
            </domain>
            """
    }
}
