import Foundation
import NIOHTTP1
import ProvisionCore

/// What the lab's stand-in Image Factory serves in place of Talos' boot media: an ISO (with the
/// ISO 9660 signature a real one has at byte 32769) or a raw disk image, each naming the schematic,
/// version and platform it is for, so the lab's firmware boots a VM only from a medium made for it.
public struct LabTalosImage: Sendable, Equatable {
    public enum Kind: String, Sendable { case iso, disk }

    public var kind: Kind
    public var schematic: String
    public var version: String
    public var platform: String

    public init(kind: Kind, schematic: String, version: String, platform: String) {
        self.kind = kind
        self.schematic = schematic
        self.version = version
        self.platform = platform
    }

    static let magic = "PROVISION-LAB-TALOS-IMAGE/1"

    /// The medium's bytes: 64 KiB for an ISO, 1 MiB for a raw disk.
    public var bytes: Data {
        var data = Data("\(Self.magic) kind=\(kind.rawValue) schematic=\(schematic) version=\(version) platform=\(platform)\n".utf8)
        data.append(Data(repeating: 0, count: (kind == .iso ? 64 << 10 : 1 << 20) - data.count))
        if kind == .iso { data.replaceSubrange(32769..<32774, with: Data("CD001".utf8)) }
        return data
    }

    /// The image a medium's first bytes describe; nil for anything else (a blank disk).
    public init?(_ data: Data) {
        guard let line = String(data: data.prefix(512).prefix { $0 != 0x0A }, encoding: .utf8), line.hasPrefix(Self.magic + " ") else { return nil }
        var fields: [String: String] = [:]
        for pair in line.split(separator: " ").dropFirst() {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        guard let kind = fields["kind"].flatMap(Kind.init), let schematic = fields["schematic"], let version = fields["version"],
              let platform = fields["platform"] else { return nil }
        self.init(kind: kind, schematic: schematic, version: version, platform: platform)
    }
}

/// The stand-in Image Factory on loopback: `/image/<schematic>/<version>/metal-amd64.iso` and
/// `/image/<schematic>/<version>/<platform>-amd64.raw.gz`, the paths Image Factory serves
/// (image-factory v1.5.0 internal/profile/profile.go); anything else is 404, as there.
public final class LabImageFactory: Sendable {
    let server: LabHTTPServer
    /// `http://HOST:PORT`, what a libvirt provider's `imageFactory` names.
    public let url: String

    public init(host: String, port: Int) async throws {
        server = try await LabHTTPServer(host: host, port: port) { request in
            Self.respond(request)
        }
        url = "http://\(host):\(server.port)"
    }

    static func respond(_ request: LabHTTPRequest) -> LabHTTPResponse {
        let parts = request.path.split(separator: "/").map(String.init)
        guard request.method == .GET, parts.count == 4, parts[0] == "image" else { return notFound(request.path) }
        let (schematic, version, file) = (parts[1], parts[2], parts[3])
        guard schematic.count == 64, schematic.allSatisfy(\.isHexDigit), version.hasPrefix("v") else { return notFound(request.path) }
        if file == "metal-amd64.iso" {
            return LabHTTPResponse(status: 200, contentType: "application/octet-stream",
                                   body: LabTalosImage(kind: .iso, schematic: schematic, version: version, platform: "metal").bytes)
        }
        if file.hasSuffix("-amd64.raw.gz") {
            let platform = String(file.dropLast("-amd64.raw.gz".count))
            guard let body = try? Gzip.compress(LabTalosImage(kind: .disk, schematic: schematic, version: version, platform: platform).bytes) else {
                return LabHTTPResponse(status: 500, contentType: "text/plain", body: Data("cannot compress".utf8))
            }
            return LabHTTPResponse(status: 200, contentType: "application/gzip", body: body)
        }
        return notFound(request.path)
    }

    static func notFound(_ path: String) -> LabHTTPResponse {
        LabHTTPResponse(status: 404, contentType: "text/plain", body: Data("404 page not found: \(path)\n".utf8))
    }

    public func close() async { await server.close() }
}
