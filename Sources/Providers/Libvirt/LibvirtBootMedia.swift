import AsyncHTTPClient
import Foundation
import NIOCore
import ProvisionCore

/// What a Talos VM on libvirt boots from: the factory's ISO on a CD-ROM after its blank disk (the
/// metal platform), or a disk made from the factory's disk image (nocloud). OVMF boots what its boot
/// devices reach; a blank disk and no CD-ROM leave the VM in its firmware forever.
public struct LibvirtBootMedia: Sendable, Equatable {
    public enum Kind: String, Sendable { case iso, disk }

    public var kind: Kind
    /// Where it is downloaded from: the ISO, or the raw disk image gzip'd.
    public var url: String
    /// Its volume in the pool, named by Talos version and schematic so a new image never reuses an old one.
    public var volume: String
    /// The schematic has the QEMU guest agent: the domain gets the agent's channel.
    public var agent: Bool

    public init(kind: Kind, url: String, volume: String, agent: Bool) {
        self.kind = kind
        self.url = url
        self.volume = volume
        self.agent = agent
    }
}

/// Downloads boot media into a private temporary file, checked before anything is uploaded: the
/// length the server announced, an ISO's ISO 9660 signature, a gzip stream's own CRC and length.
enum BootMediaDownload {
    struct Failure: Error, CustomStringConvertible, ClassifiedError {
        let description: String
        var isTransient: Bool
    }

    /// The downloaded file (0600, the caller deletes it) and its size.
    static func fetch(_ url: String, http: HTTPClient = .shared) async throws -> (path: String, bytes: Int64) {
        guard let parsed = URL(string: url), let host = parsed.host else { throw Failure(description: "\(url) is not a URL", isTransient: false) }
        try NetworkPolicy.check(host: host, for: "Image Factory")
        let path = NSTemporaryDirectory() + "provision-media-\(UUID().uuidString).part"
        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]),
              let handle = FileHandle(forWritingAtPath: path) else { throw Failure(description: "cannot write \(path)", isTransient: false) }
        var bytes: Int64 = 0
        do {
            let response = try await http.execute(HTTPClientRequest(url: url), timeout: .hours(2))
            guard response.status == .ok else {
                throw Failure(description: "\(url) answered \(response.status.code) \(response.status.reasonPhrase)",
                              isTransient: response.status.code >= 500 || response.status.code == 429)
            }
            let announced = response.headers.first(name: "content-length").flatMap { Int64($0) }
            for try await buffer in response.body {
                try handle.write(contentsOf: Data(buffer.readableBytesView))
                bytes += Int64(buffer.readableBytes)
            }
            try handle.close()
            if let announced, announced != bytes {
                throw Failure(description: "\(url): \(bytes) of the \(announced) bytes announced arrived", isTransient: true)
            }
            return (path, bytes)
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: path)
            if error is Failure || error is NetworkRefused { throw error }
            throw Failure(description: "download of \(url) broke off: \(error)", isTransient: true)
        }
    }

    /// An ISO 9660 image carries `CD001` at the start of its primary volume descriptor (byte 32769).
    static func checkISO(_ path: String, url: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw Failure(description: "cannot read \(path)", isTransient: false) }
        defer { try? handle.close() }
        try handle.seek(toOffset: 32769)
        guard try handle.read(upToCount: 5) == Data("CD001".utf8) else {
            throw Failure(description: "\(url) is not an ISO 9660 image (no CD001 signature at byte 32769)", isTransient: false)
        }
    }

    /// The size a gzip file decompresses to, from its trailer (ISIZE: modulo 2^32, exact below 4 GiB,
    /// as every Talos disk image is); zlib checks it again, with the CRC, while it decompresses.
    static func gzipSize(_ path: String) throws -> Int64 {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw Failure(description: "cannot read \(path)", isTransient: false) }
        defer { try? handle.close() }
        let end = try handle.seekToEnd()
        guard end > 18 else { throw Failure(description: "\(path) is too short to be gzip", isTransient: false) }
        try handle.seek(toOffset: end - 4)
        let trailer = [UInt8](try handle.read(upToCount: 4) ?? Data())
        guard trailer.count == 4 else { throw Failure(description: "cannot read the gzip trailer of \(path)", isTransient: false) }
        return trailer.enumerated().reduce(Int64(0)) { $0 | Int64($1.element) << (8 * $1.offset) }
    }

    /// Hands `path`'s bytes to `write` a chunk at a time, decompressed when `gzip`.
    static func stream(_ path: String, gzip: Bool, to write: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw Failure(description: "cannot read \(path)", isTransient: false) }
        defer { try? handle.close() }
        let inflater = gzip ? try GzipInflater() : nil
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            try chunk.withUnsafeBytes { raw in
                if let inflater {
                    try inflater.feed(raw) { try write(UnsafeRawBufferPointer($0)) }
                } else {
                    try write(raw)
                }
            }
        }
        try inflater?.finish()
    }
}
