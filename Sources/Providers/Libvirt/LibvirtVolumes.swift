import CLibvirt
import Foundation
import ProvisionCore

/// Boot media in a storage pool: uploaded once through libvirt's storage API (a stream, so it
/// works over qemu+ssh to an Unraid host as well as locally), then cloned into each VM's disk.
extension LibvirtConnection {
    /// The path of a volume, or nil when the pool has none of that name.
    public func volumePath(pool: String, name: String) throws -> String? {
        try withPool(pool) { poolPointer in
            guard let volume = virStorageVolLookupByName(poolPointer, name) else {
                virResetLastError()
                return nil
            }
            defer { virStorageVolFree(volume) }
            guard let path = virStorageVolGetPath(volume) else { throw LibvirtError.last("path of volume \(name)") }
            defer { free(path) }
            return String(cString: path)
        }
    }

    /// Creates `name` (raw, `capacity` bytes) and fills it with what `source` hands to its writer,
    /// through virStorageVolUpload; a failure aborts the stream and deletes the volume, so a half
    /// upload never stays behind under a name that looks whole.
    public func upload(pool: String, name: String, capacity: Int64,
                       from source: (_ write: (UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        try withPool(pool) { poolPointer in
            let xml = "<volume><name>\(XMLText.escape(name))</name><capacity unit='bytes'>\(capacity)</capacity><target><format type='raw'/></target></volume>"
            guard let volume = virStorageVolCreateXML(poolPointer, xml, 0) else { throw LibvirtError.last("create volume \(name) in \(pool)") }
            defer { virStorageVolFree(volume) }
            var done = false
            defer { if !done { virStorageVolDelete(volume, 0) } }
            guard let stream = virStreamNew(virStoragePoolGetConnect(poolPointer), 0) else { throw LibvirtError.last("open a stream for \(name)") }
            defer { virStreamFree(stream) }
            guard virStorageVolUpload(volume, stream, 0, 0, 0) == 0 else { throw LibvirtError.last("upload to volume \(name) in \(pool)") }
            do {
                try source { bytes in
                    var offset = 0
                    while offset < bytes.count {
                        let sent = virStreamSend(stream, bytes.baseAddress!.advanced(by: offset).assumingMemoryBound(to: CChar.self), bytes.count - offset)
                        guard sent > 0 else { throw LibvirtError.last("upload to volume \(name) in \(pool)") }
                        offset += Int(sent)
                    }
                }
            } catch {
                virStreamAbort(stream)
                throw error
            }
            guard virStreamFinish(stream) == 0 else { throw LibvirtError.last("finish the upload to volume \(name) in \(pool)") }
            done = true
        }
    }

    /// A new volume `name` holding a copy of `source` (a VM's disk from the Talos image), grown to
    /// `capacity`; returns its path.
    public func cloneVolume(pool: String, from source: String, to name: String, capacity: Int64) throws -> String {
        try withPool(pool) { poolPointer in
            guard let original = virStorageVolLookupByName(poolPointer, source) else { throw LibvirtError.last("find volume \(source) in \(pool)") }
            defer { virStorageVolFree(original) }
            let xml = "<volume><name>\(XMLText.escape(name))</name><capacity unit='bytes'>\(capacity)</capacity><target><format type='raw'/></target></volume>"
            guard let volume = virStorageVolCreateXMLFrom(poolPointer, xml, original, 0) else {
                throw LibvirtError.last("copy volume \(source) to \(name) in \(pool)")
            }
            defer { virStorageVolFree(volume) }
            var info = virStorageVolInfo()
            if virStorageVolGetInfo(volume, &info) == 0, Int64(info.capacity) < capacity {
                guard virStorageVolResize(volume, UInt64(capacity), 0) == 0 else { throw LibvirtError.last("grow volume \(name) to \(capacity) bytes") }
            }
            guard let path = virStorageVolGetPath(volume) else { throw LibvirtError.last("path of volume \(name)") }
            defer { free(path) }
            return String(cString: path)
        }
    }

    /// The firmware images libvirt offers for a q35 domain of `type` (`kvm`, `qemu`): the loader
    /// values of its domain capabilities. Empty when the driver does not say (the test driver).
    public func firmwareLoaders(domainType: String) -> [String] {
        locked { connection in
            guard let text = virConnectGetDomainCapabilities(connection, nil, "x86_64", "q35", domainType, 0) else {
                virResetLastError()
                return []
            }
            defer { free(text) }
            let xml = String(cString: text)
            guard let loader = xml.range(of: "<loader"), let end = xml.range(of: "</loader>", range: loader.upperBound..<xml.endIndex) else { return [] }
            var values: [String] = []
            var rest = xml[loader.upperBound..<end.lowerBound]
            while let open = rest.range(of: "<value>"), let close = rest.range(of: "</value>", range: open.upperBound..<rest.endIndex) {
                values.append(String(rest[open.upperBound..<close.lowerBound]))
                rest = rest[close.upperBound...]
            }
            return values
        }
    }

    func withPool<T>(_ pool: String, _ body: (virStoragePoolPtr) throws -> T) throws -> T {
        try locked { connection in
            guard let poolPointer = virStoragePoolLookupByName(connection, pool) else {
                let error = LibvirtError.last("find storage pool \(pool)")
                throw LibvirtError(code: error.code, message: "\(error.message); set the provider's storagePool to a pool that exists on \(uri)", operation: error.operation)
            }
            defer { virStoragePoolFree(poolPointer) }
            return try body(poolPointer)
        }
    }
}
