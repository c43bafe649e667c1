import Crypto
import Foundation

/// An etcd snapshot as it streams in, checked as talosctl checks it: the file is bbolt's pages plus
/// the SHA-256 etcd appends of everything before it, so its size modulo 512 is 32 and its last 32
/// bytes are the hash of the rest. Written to `PATH.part` (0600, it holds every Secret), hashed as
/// it goes (never held whole in memory), fsynced and renamed into place; a bad one is removed.
public struct EtcdSnapshotWriter {
    public let path: String
    private let part: String
    private let fd: Int32
    private var hasher = SHA256()
    /// The last 32 bytes seen: the appended hash, unless more bytes follow.
    private var tail = Data()
    private(set) var size = 0
    private var isOpen = true

    public init(path: String) throws {
        self.path = path
        part = path + ".part"
        unlink(part)
        fd = open(part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw TalosError.other(code: "io", message: "cannot create \(part): \(String(cString: strerror(errno)))") }
    }

    /// A snapshot that `source` streams (a download, a decryption), checked into `path`; its size.
    /// Nothing half-written stays behind when the source or the check fails.
    public static func write(to path: String, from source: ((Data) throws -> Void) throws -> Void) throws -> Int {
        var writer = try EtcdSnapshotWriter(path: path)
        do {
            try source { try writer.append($0) }
            return try writer.finish()
        } catch {
            writer.abandon()
            throw error
        }
    }

    public mutating func append(_ chunk: Data) throws {
        size += chunk.count
        let bytes = tail + chunk
        guard bytes.count > 32 else {
            tail = bytes
            return
        }
        let body = bytes.prefix(bytes.count - 32)
        hasher.update(data: body)
        try write(body)
        tail = Data(bytes.suffix(32))
    }

    /// Checks, writes the hash, fsyncs and renames; returns the size. On a throw the caller abandons.
    public mutating func finish() throws -> Int {
        guard size > 32, size % 512 == 32 else {
            throw TalosError.other(code: "corrupt", message: "the etcd snapshot is \(size) bytes; a whole one is bbolt pages plus a 32-byte SHA-256 (size modulo 512 is 32, here \(size % 512)): it was cut short")
        }
        guard Data(hasher.finalize()) == tail else {
            throw TalosError.other(code: "corrupt", message: "the etcd snapshot's appended SHA-256 does not match its \(size - 32) bytes: it is damaged")
        }
        try write(tail)
        guard fsync(fd) == 0 else { throw TalosError.other(code: "io", message: "cannot sync \(part): \(String(cString: strerror(errno)))") }
        closeOnce()
        guard rename(part, path) == 0 else {
            unlink(part)
            throw TalosError.other(code: "io", message: "cannot finish \(path): \(String(cString: strerror(errno)))")
        }
        return size
    }

    /// A stream that failed: nothing half-written stays behind.
    public mutating func abandon() {
        closeOnce()
        unlink(part)
    }

    private mutating func closeOnce() {
        if isOpen { close(fd) }
        isOpen = false
    }

    private func write(_ data: Data) throws {
        try data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
                guard written > 0 else { throw TalosError.other(code: "io", message: "cannot write \(part): \(String(cString: strerror(errno)))") }
                offset += written
            }
        }
    }
}
