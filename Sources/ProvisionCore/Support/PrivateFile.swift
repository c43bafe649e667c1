import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes files that hold secrets: created 0600 from the first byte (never briefly readable by
/// others), fully written and synced, then moved into place atomically.
public enum PrivateFile {
    public enum WriteError: Error, CustomStringConvertible {
        case failed(path: String, reason: String)
        public var description: String {
            switch self { case let .failed(path, reason): return "cannot write \(path): \(reason)" }
        }
    }

    /// Replaces `path` atomically.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        let temp = try staged(bytes, beside: path)
        defer { unlink(temp) }
        guard rename(temp, path) == 0 else { throw WriteError.failed(path: path, reason: String(cString: strerror(errno))) }
    }

    /// Creates `path` only if nothing is there; returns false (and writes nothing) if something is.
    public static func create(_ bytes: [UInt8], at path: String) throws -> Bool {
        let temp = try staged(bytes, beside: path)
        defer { unlink(temp) }
        if link(temp, path) != 0 {
            if errno == EEXIST { return false }
            throw WriteError.failed(path: path, reason: String(cString: strerror(errno)))
        }
        return true
    }

    static func staged(_ bytes: [UInt8], beside path: String) throws -> String {
        let temp = "\(path).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw WriteError.failed(path: path, reason: String(cString: strerror(errno))) }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        fsync(fd)
        close(fd)
        guard written == bytes.count else {
            unlink(temp)
            throw WriteError.failed(path: path, reason: "short write")
        }
        return temp
    }
}
