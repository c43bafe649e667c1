import Foundation
import ProvisionCore

/// A real libvirtd with its QEMU driver on this machine (Debian's libvirt-daemon-system,
/// libvirt-daemon-driver-qemu, qemu-system-x86, ovmf; installed by scripts/bootstrap), started by
/// the test as root when none runs, and stopped by its pid. The machine has no systemd, so the
/// test starts virtlogd (QEMU's console log goes through it) and libvirtd itself. Nothing it runs
/// has a network: VMs sit on a bridge with no uplink.
public final class RealLibvirtd: @unchecked Sendable {
    // @unchecked: touched only by the one test that owns it.
    public static let uri = "qemu:///system"
    static let socket = "/run/libvirt/libvirt-sock"
    var started: [BackgroundProcess] = []

    /// Why this machine cannot run it (not root, a package missing), or nil when it can.
    public static var missing: String? {
        if getuid() != 0 { return "the real-libvirtd test needs root" }
        for tool in ["/usr/sbin/libvirtd", "/usr/sbin/virtlogd", "/usr/bin/qemu-system-x86_64", "/usr/bin/grub-mkrescue", "/usr/bin/xorriso",
                     "/usr/bin/virsh", "/usr/share/OVMF/OVMF_CODE_4M.fd"] where !FileManager.default.fileExists(atPath: tool) {
            return "\(tool) is missing (scripts/bootstrap installs it)"
        }
        if (try? FileManager.default.attributesOfItem(atPath: "/usr/share/qemu/firmware")) == nil { return "no QEMU firmware descriptors" }
        return nil
    }

    public init() async throws {
        if Self.answers() { return }
        // What the Debian packages expect and a container's fresh filesystem may lack.
        for dir in ["/var/log/libvirt/qemu", "/var/lib/libvirt/qemu", "/var/cache/libvirt", "/etc/libvirt/qemu", "/run/libvirt", "/var/lib/libvirt/images"] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        started.append(try await BackgroundProcess(["/usr/sbin/virtlogd"]))
        started.append(try await BackgroundProcess(["/usr/sbin/libvirtd"]))
        let deadline = ContinuousClock.now + .seconds(30)
        while !Self.answers() {
            guard ContinuousClock.now < deadline else {
                await stop()
                throw PeerError("libvirtd did not answer on \(Self.socket) within 30 s")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    static func answers() -> Bool {
        guard FileManager.default.fileExists(atPath: socket) else { return false }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/virsh")
        process.arguments = ["-c", uri, "version"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }

    /// Stops the daemons this test started (a libvirtd that was already running is left alone).
    public func stop() async {
        for process in started.reversed() { await process.stop() }
        started = []
    }

    /// `virsh -c qemu:///system ARGS`, which must succeed.
    @discardableResult
    public func virsh(_ arguments: [String]) async throws -> String {
        let result = try await Subprocess.run(["virsh", "-c", Self.uri] + arguments)
        guard result.status == 0 else { throw PeerError("virsh \(arguments.joined(separator: " ")): \(result.stderr)") }
        return result.stdout
    }

    /// An ISO that GRUB (EFI) boots from, printing `marker` on the first serial port: what a test
    /// boots instead of Talos, whose kernel would want more than a CI machine's emulated CPU gives.
    public static func markerISO(_ marker: String, in directory: String) async throws -> String {
        let root = directory + "/iso-root"
        try FileManager.default.createDirectory(atPath: root + "/boot/grub", withIntermediateDirectories: true)
        try """
            serial --unit=0 --speed=115200
            terminal_input serial console
            terminal_output serial console
            echo "\(marker)"
            sleep 600
            """.write(toFile: root + "/boot/grub/grub.cfg", atomically: true, encoding: .utf8)
        let iso = directory + "/marker.iso"
        let result = try await Subprocess.run(["grub-mkrescue", "-o", iso, root])
        guard result.status == 0 else { throw PeerError("grub-mkrescue: \(result.stderr)") }
        return iso
    }

    /// Reads a domain's serial console (its pty) until `marker` appears or `timeout` passes; what it read.
    public static func console(pty: String, until marker: String, timeout: Duration) async throws -> String {
        let descriptor = open(pty, O_RDONLY | O_NOCTTY | O_NONBLOCK)
        guard descriptor >= 0 else { throw PeerError("cannot open \(pty): errno \(errno)") }
        defer { close(descriptor) }
        var text = ""
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, !text.contains(marker) {
            let count = read(descriptor, &buffer, buffer.count)
            if count > 0 { text += String(decoding: buffer[0..<count], as: UTF8.self) } else { try await Task.sleep(for: .milliseconds(200)) }
        }
        return text
    }
}
