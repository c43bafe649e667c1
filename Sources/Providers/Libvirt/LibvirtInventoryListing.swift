import CLibvirt
import Foundation

/// Everything a connection holds, as XML: what the test driver's state file is made of.
extension LibvirtConnection {
    /// Every domain's XML and state, defined or running.
    public func allDomains() throws -> [(xml: String, state: DomainState)] {
        try locked { connection in
            var list: UnsafeMutablePointer<virDomainPtr?>?
            let count = virConnectListAllDomains(connection, &list, 0)
            guard count >= 0 else { throw LibvirtError.last("list domains") }
            defer { free(list) }
            var result: [(String, DomainState)] = []
            for index in 0..<Int(count) {
                guard let domain = list?[index] else { continue }
                defer { virDomainFree(domain) }
                var state: Int32 = 0, reason: Int32 = 0
                virDomainGetState(domain, &state, &reason, 0)
                guard let text = virDomainGetXMLDesc(domain, UInt32(VIR_DOMAIN_XML_INACTIVE.rawValue)) else { throw LibvirtError.last("read domain XML") }
                defer { free(text) }
                result.append((String(cString: text), DomainState(rawValue: state) ?? .noState))
            }
            return result
        }
    }

    /// Every storage pool's XML with its volumes' XML.
    public func allPools() throws -> [(xml: String, volumes: [String])] {
        try locked { connection in
            var pools: UnsafeMutablePointer<virStoragePoolPtr?>?
            let count = virConnectListAllStoragePools(connection, &pools, 0)
            guard count >= 0 else { throw LibvirtError.last("list storage pools") }
            defer { free(pools) }
            var result: [(String, [String])] = []
            for index in 0..<Int(count) {
                guard let pool = pools?[index] else { continue }
                defer { virStoragePoolFree(pool) }
                guard let text = virStoragePoolGetXMLDesc(pool, 0) else { throw LibvirtError.last("read pool XML") }
                defer { free(text) }
                var volumes: UnsafeMutablePointer<virStorageVolPtr?>?
                let volumeCount = virStoragePoolListAllVolumes(pool, &volumes, 0)
                defer { free(volumes) }
                var volumeXML: [String] = []
                for volumeIndex in 0..<Int(max(0, volumeCount)) {
                    guard let volume = volumes?[volumeIndex] else { continue }
                    defer { virStorageVolFree(volume) }
                    if let description = virStorageVolGetXMLDesc(volume, 0) {
                        volumeXML.append(String(cString: description))
                        free(description)
                    }
                }
                result.append((String(cString: text), volumeXML))
            }
            return result
        }
    }

    /// Every virtual network's XML.
    public func allNetworks() throws -> [String] {
        try locked { connection in
            var networks: UnsafeMutablePointer<virNetworkPtr?>?
            let count = virConnectListAllNetworks(connection, &networks, 0)
            guard count >= 0 else { throw LibvirtError.last("list networks") }
            defer { free(networks) }
            var result: [String] = []
            for index in 0..<Int(count) {
                guard let network = networks?[index] else { continue }
                defer { virNetworkFree(network) }
                if let text = virNetworkGetXMLDesc(network, 0) {
                    result.append(String(cString: text))
                    free(text)
                }
            }
            return result
        }
    }

    /// The host's network interfaces (bridges among them) as name and XML, or nil when this libvirt
    /// cannot list them (no interface driver): the bridge check is then left to the VM's start.
    public func allInterfaces() -> [(name: String, xml: String)]? {
        locked { connection in
            var interfaces: UnsafeMutablePointer<virInterfacePtr?>?
            let count = virConnectListAllInterfaces(connection, &interfaces, 0)
            guard count >= 0 else {
                virResetLastError()
                return nil
            }
            defer { free(interfaces) }
            var result: [(String, String)] = []
            for index in 0..<Int(count) {
                guard let interface = interfaces?[index] else { continue }
                defer { virInterfaceFree(interface) }
                let name = virInterfaceGetName(interface).map { String(cString: $0) } ?? ""
                var xml = ""
                if let text = virInterfaceGetXMLDesc(interface, 0) {
                    xml = String(cString: text)
                    free(text)
                }
                result.append((name, xml))
            }
            return result
        }
    }
}
