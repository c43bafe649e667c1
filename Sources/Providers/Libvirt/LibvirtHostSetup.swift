import CLibvirt
import Foundation
import ProvisionCore

/// What a libvirt host needs before a VM can be made on it, and the VMs' autostart flag. Unraid's
/// VM manager uses no storage pools (disks are files under its `domains` share, ISOs under `isos`:
/// unraid/webgui `libvirt.php`, `scripts/libvirtconfig`) and libvirt defines none by itself, so the
/// provider defines its own; and Unraid brings a VM back after a reboot or an array start only when
/// libvirt's autostart flag is set (`rc.libvirt`).
extension LibvirtConnection {
    /// Defines a persistent directory pool at `path` (creating the directory when missing), marks it
    /// autostarted and starts it: what `virsh pool-define-as NAME dir --target PATH`,
    /// `pool-build`, `pool-autostart` and `pool-start` do.
    public func defineDirectoryPool(name: String, path: String) throws {
        let xml = "<pool type='dir'>\n  <name>\(XMLText.escape(name))</name>\n  <target>\n    <path>\(XMLText.escape(path))</path>\n  </target>\n</pool>\n"
        try locked { connection in
            guard let pool = virStoragePoolDefineXML(connection, xml, 0) else { throw LibvirtError.last("define storage pool \(name) at \(path)") }
            defer { virStoragePoolFree(pool) }
            // Builds the directory; one that exists already is fine (Unraid's shares exist).
            guard virStoragePoolBuild(pool, 0) == 0 else {
                let error = LibvirtError.last("create the directory \(path) of storage pool \(name)")
                virStoragePoolUndefine(pool)
                throw error
            }
            guard virStoragePoolSetAutostart(pool, 1) == 0 else { throw LibvirtError.last("mark storage pool \(name) autostarted") }
            guard virStoragePoolCreate(pool, 0) == 0 else { throw LibvirtError.last("start storage pool \(name)") }
        }
    }

    /// Whether libvirt starts the domain when its host (libvirtd) starts.
    public func autostart(of name: String) throws -> Bool {
        try withDomain(name, "read autostart of") { domain in
            var flag: Int32 = 0
            guard virDomainGetAutostart(domain, &flag) == 0 else { throw LibvirtError.last("read autostart of \(name)") }
            return flag != 0
        }
    }

    public func setAutostart(_ name: String, _ on: Bool) throws {
        try withDomain(name, "set autostart of") { domain in
            guard virDomainSetAutostart(domain, on ? 1 : 0) == 0 else { throw LibvirtError.last("set autostart of \(name)") }
        }
    }
}
