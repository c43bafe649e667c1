import Foundation
import ProvisionCore

/// libvirt's test driver keeps its state in memory; given `test:///FILE` it starts from that file.
/// So a lab's hypervisor outlives one `provision` process by writing its domains, pools and volumes
/// back to the file after every change (atomically, so a kill mid-write leaves the previous state).
public struct TestDriverState: Sendable {
    public let path: String
    /// How long a create (volume and define) and a start take on this simulated host, already
    /// scaled to the lab's clock: the test driver itself answers at once, a real host does not.
    public var createDelay: Duration = .zero
    public var startDelay: Duration = .zero

    public init(path: String) { self.path = path }

    /// The lab's record beside the hypervisor file, where creates and starts are logged.
    var recordPath: String { URL(fileURLWithPath: path).deletingLastPathComponent().path + "/record.jsonl" }

    /// Appends `{"event":"machine","node":…,"method":"create"|"start","stage":"begin"|"end"}` to
    /// the lab's record (O_APPEND: the lab's own process appends to the same file), so tests judge
    /// how many creates overlapped.
    func record(_ node: String, _ method: String, _ stage: String) {
        let line = #"{"t":\#(Int64(Date().timeIntervalSince1970 * 1000)),"node":"\#(node)","event":"machine","method":"\#(method)","stage":"\#(stage)"}"# + "\n"
        let descriptor = open(recordPath, O_WRONLY | O_APPEND | O_CREAT, 0o600)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        _ = line.utf8CString.withUnsafeBufferPointer { write(descriptor, $0.baseAddress, $0.count - 1) }
    }

    /// A simulated host's time for `method` on `node`, recorded from begin to end.
    func simulate(_ node: String, _ method: String, _ delay: Duration) async throws {
        record(node, method, "begin")
        if delay > .zero { try await Task.sleep(for: delay) }
        record(node, method, "end")
    }

    public var uri: String { "test://" + path }

    /// What a fresh lab hypervisor holds: a network, Unraid's bridge `br0` (there while its bridging
    /// is on, the default) and no storage pool, as Unraid's libvirt (its VM manager keeps disks as
    /// files in shares; libvirt defines no pool by itself).
    static let initial = """
        <node>
          <network>
            <name>default</name>
            <bridge name='virbr0'/>
          </network>
          <interface type='bridge' name='br0'>
            <start mode='onboot'/>
            <bridge stp='off' delay='0'>
              <interface type='ethernet' name='eth0'/>
            </bridge>
          </interface>
        </node>

        """

    /// Creates the file with the initial state unless it exists; returns the URI to open.
    public func prepare() throws -> String {
        if !FileManager.default.fileExists(atPath: path) {
            try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
            try PrivateFile.write(Array(Self.initial.utf8), to: path)
        }
        return uri
    }

    /// Writes what the connection holds now. Running domains start running when the file is loaded;
    /// every other domain carries the test driver's `runstate` (5 = shut off).
    public func save(_ connection: LibvirtConnection) throws {
        var document = "<node>\n"
        for network in try connection.allNetworks() { document += network + "\n" }
        for interface in connection.allInterfaces() ?? [] { document += interface.xml + "\n" }
        for (xml, volumes) in try connection.allPools() {
            document += xml.replacingOccurrences(of: "</pool>", with: volumes.joined(separator: "\n") + "\n</pool>") + "\n"
        }
        // Spliced rather than replaced: this runs after every change, over every domain.
        for (xml, state) in try connection.allDomains() {
            guard let inside = Self.inside(domain: xml) else { continue }
            document += "<domain xmlns:test='http://libvirt.org/schemas/domain/test/1.0' " + inside
            if state != .running { document += "  <test:runstate>\(LibvirtConnection.DomainState.shutOff.rawValue)</test:runstate>\n" }
            document += "</domain>\n"
        }
        document += "</node>\n"
        try PrivateFile.write(Array(document.utf8), to: path)
        try saveAutostart(connection)
    }

    /// The test driver's file has no place for a domain's autostart flag: it is kept beside it.
    var autostartPath: String { path + ".autostart" }

    func saveAutostart(_ connection: LibvirtConnection) throws {
        let names = try connection.allDomains().compactMap { Self.name(of: $0.xml) }.filter { (try? connection.autostart(of: $0)) == true }
        try PrivateFile.write(Array(names.sorted().map { $0 + "\n" }.joined().utf8), to: autostartPath)
    }

    /// The domains marked autostart when the file was saved.
    public func autostarted() -> Set<String> {
        let text = (try? String(contentsOfFile: autostartPath, encoding: .utf8)) ?? ""
        return Set(text.split(separator: "\n").map(String.init))
    }

    /// Marks the loaded domains as the saved file says.
    public func restoreAutostart(_ connection: LibvirtConnection) throws {
        for name in autostarted() where try connection.state(of: name) != nil { try connection.setAutostart(name, true) }
    }

    public static func name(of domainXML: String) -> String? {
        guard let start = domainXML.range(of: "<name>"), let end = domainXML.range(of: "</name>", range: start.upperBound..<domainXML.endIndex) else { return nil }
        return String(domainXML[start.upperBound..<end.lowerBound])
    }
}

extension TestDriverState {
    /// What libvirt's `<domain ...>...</domain>` (and trailing newline) holds between `<domain `
    /// and its closing tag; nil for anything else.
    static func inside(domain xml: String) -> Substring? {
        let bytes = xml.utf8
        var end = bytes.endIndex
        while end > bytes.startIndex, [UInt8(ascii: "\n"), UInt8(ascii: " ")].contains(bytes[bytes.index(before: end)]) { end = bytes.index(before: end) }
        let open = "<domain ".utf8, close = "</domain>".utf8
        guard bytes.starts(with: open), bytes[..<end].reversed().starts(with: close.reversed()) else { return nil }
        let start = bytes.index(bytes.startIndex, offsetBy: open.count), stop = bytes.index(end, offsetBy: -close.count)
        return start <= stop ? Substring(bytes[start..<stop]) : nil
    }


    /// Which domains the saved file holds and whether each runs (name -> running): what the lab
    /// reads to power its simulated VMs as the hypervisor says.
    public func domainPower() -> [String: Bool]? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        var power: [String: Bool] = [:]
        for chunk in text.components(separatedBy: "<domain ").dropFirst() {
            let body = chunk.components(separatedBy: "</domain>").first ?? chunk
            guard let start = body.range(of: "<name>"), let end = body.range(of: "</name>", range: start.upperBound..<body.endIndex) else { continue }
            power[String(body[start.upperBound..<end.lowerBound])] = !body.contains("<test:runstate>")
        }
        return power
    }
}

/// The bytes of the lab's volumes. libvirt's test driver keeps no data and takes no upload
/// (virStorageVolUpload: "this function is not supported by the connection driver"), so the lab
/// keeps what was uploaded to a volume in a file beside its hypervisor file, keyed by the volume's
/// path: what its simulated firmware reads to decide whether a VM has anything to boot. (Its pools
/// hold 100 GiB whatever the file says: the driver sets every pool's capacity itself.)
extension TestDriverState {
    var mediaDirectory: String { URL(fileURLWithPath: path).deletingLastPathComponent().path + "/libvirt-media" }

    func mediaFile(_ volumePath: String) -> String {
        mediaDirectory + "/" + volumePath.replacingOccurrences(of: "/", with: "%2F")
    }

    /// Fills the volume at `volumePath` with what `source` writes (through a temporary file, renamed when whole).
    func storeMedia(at volumePath: String, from source: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        try FileManager.default.createDirectory(atPath: mediaDirectory, withIntermediateDirectories: true)
        let file = mediaFile(volumePath), partial = file + ".tmp"
        guard FileManager.default.createFile(atPath: partial, contents: nil, attributes: [.posixPermissions: 0o600]),
              let handle = FileHandle(forWritingAtPath: partial) else { throw LibvirtError(code: -1, message: "cannot write \(partial)", operation: "upload") }
        do {
            try source { bytes in try handle.write(contentsOf: Data(bytes)) }
            try handle.close()
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: partial)
            throw error
        }
        _ = rename(partial, file)
    }

    func copyMedia(from source: String, to destination: String) throws {
        guard FileManager.default.fileExists(atPath: mediaFile(source)) else { return }
        try? FileManager.default.removeItem(atPath: mediaFile(destination))
        try FileManager.default.copyItem(atPath: mediaFile(source), toPath: mediaFile(destination))
    }

    func removeMedia(at volumePath: String) {
        try? FileManager.default.removeItem(atPath: mediaFile(volumePath))
    }

    /// The first `count` bytes of a volume (a firmware reads no further to find a boot sector or an
    /// ISO's volume descriptor); nil for a volume nothing was written to.
    public func media(at volumePath: String, count: Int = 64 << 10) -> Data? {
        guard let handle = FileHandle(forReadingAtPath: mediaFile(volumePath)) else { return nil }
        defer { try? handle.close() }
        return try? handle.read(upToCount: count)
    }

    /// Each domain's boot devices in boot order: whether a disk or a CD-ROM, and the file it reads.
    public func bootDevices() -> [String: [(device: String, source: String)]] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [:] }
        var found: [String: [(device: String, source: String)]] = [:]
        for chunk in text.components(separatedBy: "<domain ").dropFirst() {
            let body = chunk.components(separatedBy: "</domain>").first ?? chunk
            guard let start = body.range(of: "<name>"), let end = body.range(of: "</name>", range: start.upperBound..<body.endIndex) else { continue }
            var devices: [(order: Int, device: String, source: String)] = []
            for disk in body.components(separatedBy: "<disk ").dropFirst() {
                let element = disk.components(separatedBy: "</disk>").first ?? disk
                func attribute(_ name: String, after tag: String) -> String? {
                    guard let open = element.range(of: tag) else { return nil }
                    let rest = element[open.upperBound...]
                    guard let key = rest.range(of: name + "='") else { return nil }
                    return String(rest[key.upperBound...].prefix { $0 != "'" })
                }
                guard let source = attribute("file", after: "<source"), let order = attribute("order", after: "<boot").flatMap(Int.init) else { continue }
                devices.append((order, element.contains("device='cdrom'") ? "cdrom" : "disk", XMLText.unescape(source)))
            }
            found[String(body[start.upperBound..<end.lowerBound])] = devices.sorted { $0.order < $1.order }.map { ($0.device, $0.source) }
        }
        return found
    }
}
