import CLibvirt
import Foundation
import ProvisionCore

/// A libvirt error, mapped from `virGetLastError()` into what a step acts on.
public struct LibvirtError: ClassifiedError, CustomStringConvertible, Sendable {
    public let code: Int32
    public let message: String
    public let operation: String

    static let noSupport: Int32 = 3, invalidArg: Int32 = 8, operationFailed: Int32 = 9, systemError: Int32 = 38
    static let noDomain: Int32 = 42, operationInvalid: Int32 = 55, agentUnresponsive: Int32 = 86

    public var isTransient: Bool { code == Self.systemError || code == Self.agentUnresponsive || code == 1 }
    public var isMissingDomain: Bool { code == Self.noDomain }
    public var description: String { "libvirt \(operation) failed (code \(code)): \(message)" }

    static func last(_ operation: String) -> LibvirtError {
        guard let error = virGetLastError() else { return LibvirtError(code: -1, message: "unknown error", operation: operation) }
        let message = error.pointee.message.map { String(cString: $0) } ?? "no message"
        return LibvirtError(code: error.pointee.code, message: message, operation: operation)
    }
}

/// One connection to a libvirt daemon (qemu+ssh://root@tower/system, qemu:///system) or to the
/// test driver (test:///default, or test:///path/to/state.xml for the lab). libvirt connections
/// are thread-safe, but errors are per thread, so each call runs under one lock and reads its own
/// error at once.
public final class LibvirtConnection: @unchecked Sendable {
    // @unchecked: the raw pointer is only used under `lock`, and freed once in deinit.
    private let pointer: virConnectPtr
    private let lock = NSLock()
    public let uri: String

    public init(uri: String) throws {
        // libvirt prints every error to stderr by default; we report them ourselves.
        virSetErrorFunc(nil) { _, _ in }
        // qemu:///system and test:/// are local sockets or in-process; a host means the network.
        if let host = URLComponents(string: uri)?.host, !host.isEmpty {
            try NetworkPolicy.check(host: host, for: "libvirt \(uri)")
        }
        guard let pointer = virConnectOpen(uri) else { throw LibvirtSSHAccess.explain(LibvirtError.last("connect to \(uri)"), uri: uri) }
        self.pointer = pointer
        self.uri = uri
    }

    deinit { virConnectClose(pointer) }

    func locked<T>(_ body: (virConnectPtr) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(pointer)
    }

    public enum DomainState: Int32, Sendable {
        case noState = 0, running, blocked, paused, shuttingDown, shutOff, crashed, suspended
    }

    /// The domain's state, or nil when no domain has that name.
    public func state(of name: String) throws -> DomainState? {
        try locked { connection in
            guard let domain = virDomainLookupByName(connection, name) else {
                let error = LibvirtError.last("look up \(name)")
                if error.isMissingDomain { return nil }
                throw error
            }
            defer { virDomainFree(domain) }
            var state: Int32 = 0, reason: Int32 = 0
            guard virDomainGetState(domain, &state, &reason, 0) == 0 else { throw LibvirtError.last("get state of \(name)") }
            return DomainState(rawValue: state) ?? .noState
        }
    }

    /// Defines (or redefines, keeping the existing UUID) a domain from XML.
    public func define(name: String, xml: String) throws {
        try locked { connection in
            var document = xml
            if let existing = virDomainLookupByName(connection, name) {
                var buffer = [CChar](repeating: 0, count: 64)
                virDomainGetUUIDString(existing, &buffer)
                virDomainFree(existing)
                let uuid = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if !document.contains("<uuid>") { document = document.replacingOccurrences(of: "<name>\(name)</name>", with: "<name>\(name)</name>\n  <uuid>\(uuid)</uuid>") }
            } else {
                _ = virGetLastError()
                virResetLastError()
            }
            guard let domain = virDomainDefineXML(connection, document) else { throw LibvirtError.last("define \(name)") }
            virDomainFree(domain)
        }
    }

    public func xml(of name: String) throws -> String {
        try withDomain(name, "read XML of") { domain in
            guard let text = virDomainGetXMLDesc(domain, 0) else { throw LibvirtError.last("read XML of \(name)") }
            defer { free(text) }
            return String(cString: text)
        }
    }

    public func start(_ name: String) throws {
        try withDomain(name, "start") { domain in
            guard virDomainCreate(domain) == 0 else { throw LibvirtError.last("start \(name)") }
        }
    }

    /// ACPI shutdown request; returns at once (the guest may ignore it).
    public func shutdown(_ name: String) throws {
        try withDomain(name, "shut down") { domain in
            guard virDomainShutdown(domain) == 0 else { throw LibvirtError.last("shut down \(name)") }
        }
    }

    public func destroy(_ name: String) throws {
        try withDomain(name, "power off") { domain in
            guard virDomainDestroy(domain) == 0 else { throw LibvirtError.last("power off \(name)") }
        }
    }

    /// Undefines with its NVRAM (UEFI domains need it on real QEMU); the test driver rejects that
    /// flag, so a plain undefine follows.
    public func undefine(_ name: String) throws {
        try withDomain(name, "undefine") { domain in
            if virDomainUndefineFlags(domain, UInt32(VIR_DOMAIN_UNDEFINE_NVRAM.rawValue)) == 0 { return }
            let error = LibvirtError.last("undefine \(name)")
            guard error.code == LibvirtError.invalidArg || error.code == LibvirtError.noSupport else { throw error }
            guard virDomainUndefineFlags(domain, 0) == 0 else { throw LibvirtError.last("undefine \(name)") }
        }
    }

    /// IPv4 addresses libvirt knows for the domain (leases, or the guest agent).
    public func addresses(of name: String, source: UInt32 = 0) throws -> [(mac: String, address: String)] {
        try withDomain(name, "list addresses of") { domain in
            var interfaces: UnsafeMutablePointer<virDomainInterfacePtr?>?
            let count = virDomainInterfaceAddresses(domain, &interfaces, source, 0)
            guard count >= 0 else { throw LibvirtError.last("list addresses of \(name)") }
            defer { free(interfaces) }
            var found: [(String, String)] = []
            for index in 0..<Int(count) {
                guard let interface = interfaces?[index] else { continue }
                let mac = interface.pointee.hwaddr.map { String(cString: $0) } ?? ""
                for a in 0..<Int(interface.pointee.naddrs) {
                    let entry = interface.pointee.addrs[a]
                    if entry.type == Int32(VIR_IP_ADDR_TYPE_IPV4.rawValue), let text = entry.addr { found.append((mac, String(cString: text))) }
                }
                virDomainInterfaceFree(interface)
            }
            return found
        }
    }

    /// Where libvirt sees the VM: its DHCP lease on a libvirt network, else the host's ARP table
    /// (a bridged VM on the LAN's router), for a NIC with one of `macs`; only an address on
    /// `network` counts (libvirt's test driver makes addresses up).
    public func reportedAddress(of name: String, macs: [String], in network: IPv4Network) -> IPv4Address? {
        let wanted = Set(macs.map { $0.lowercased() })
        // VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE (0) and _ARP (2), libvirt-domain.h.
        for source: UInt32 in [0, 2] {
            guard let found = try? addresses(of: name, source: source) else { continue }
            for entry in found where wanted.contains(entry.mac.lowercased()) {
                if let address = IPv4Address(entry.address), network.contains(address) { return address }
            }
        }
        return nil
    }

    /// Creates a volume in a pool unless one of that name exists; returns its path.
    public func ensureVolume(pool: String, name: String, bytes: Int64, format: String = "raw") throws -> String {
        try withPool(pool) { poolPointer in
            var volume = virStorageVolLookupByName(poolPointer, name)
            if volume == nil {
                virResetLastError()
                let xml = "<volume><name>\(XMLText.escape(name))</name><capacity unit='bytes'>\(bytes)</capacity><target><format type='\(format)'/></target></volume>"
                volume = virStorageVolCreateXML(poolPointer, xml, 0)
                guard volume != nil else { throw LibvirtError.last("create volume \(name) in \(pool)") }
            }
            defer { virStorageVolFree(volume) }
            guard let path = virStorageVolGetPath(volume) else { throw LibvirtError.last("path of volume \(name)") }
            defer { free(path) }
            return String(cString: path)
        }
    }

    /// A pool's free bytes, or nil when the host has no pool of that name.
    public func poolAvailable(_ pool: String) throws -> Int64? {
        try locked { connection in
            guard let poolPointer = virStoragePoolLookupByName(connection, pool) else {
                virResetLastError()
                return nil
            }
            defer { virStoragePoolFree(poolPointer) }
            var info = virStoragePoolInfo()
            guard virStoragePoolGetInfo(poolPointer, &info) == 0 else { throw LibvirtError.last("read storage pool \(pool)") }
            return Int64(info.available)
        }
    }

    /// A volume's capacity in bytes, or nil when there is none.
    public func volumeCapacity(pool: String, name: String) throws -> Int64? {
        // No pool, no volume: a host whose pool is still to be defined holds none of our disks.
        guard try poolAvailable(pool) != nil else { return nil }
        return try withPool(pool) { poolPointer in
            guard let volume = virStorageVolLookupByName(poolPointer, name) else {
                virResetLastError()
                return nil
            }
            defer { virStorageVolFree(volume) }
            var info = virStorageVolInfo()
            guard virStorageVolGetInfo(volume, &info) == 0 else { throw LibvirtError.last("read volume \(name)") }
            return Int64(info.capacity)
        }
    }

    /// Deletes a volume if it exists (a deleted VM's disk); false when there was none.
    @discardableResult
    public func deleteVolume(pool: String, name: String) throws -> Bool {
        try withPool(pool) { poolPointer in
            guard let volume = virStorageVolLookupByName(poolPointer, name) else {
                virResetLastError()
                return false
            }
            defer { virStorageVolFree(volume) }
            guard virStorageVolDelete(volume, 0) == 0 else { throw LibvirtError.last("delete volume \(name) in \(pool)") }
            return true
        }
    }

    func withDomain<T>(_ name: String, _ operation: String, _ body: (virDomainPtr) throws -> T) throws -> T {
        try locked { connection in
            guard let domain = virDomainLookupByName(connection, name) else { throw LibvirtError.last("\(operation) \(name)") }
            defer { virDomainFree(domain) }
            return try body(domain)
        }
    }
}
