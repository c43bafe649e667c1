import Foundation
import ProvisionCore
import TalosKit

extension StepInstance {
    /// The node a per-node step runs for; a playbook that uses a node step without `forEach` is a
    /// playbook error, reported as such.
    func requireNode() throws -> String {
        guard let node else { throw StepError.permanent("step \(id) (\(kind)) needs a node: give it `forEach`") }
        return node
    }
}

/// Looks at `check` until it returns a value: soon at first, then less often up to `interval`
/// (`PollSchedule`). `wake`, when given, is awaited instead of a plain sleep and may return early
/// (a Talos stage event), so the next look comes as soon as something changed. Transient errors
/// count as "not yet"; anything else ends the wait. The executor's step timeout bounds it.
func waitFor<T: Sendable>(_ what: String, interval: Duration, step: StepInstance, context: StepContext,
                          wake: (@Sendable (Duration) async -> Void)? = nil, _ check: () async throws -> T?) async throws -> T {
    var lastNote = ""
    var schedule = PollSchedule(cap: interval)
    while true {
        do {
            if let value = try await check() { return value }
        } catch let error as any ClassifiedError where error.isTransient {
            let note = "\(error)"
            if note != lastNote { context.log("waiting for \(what): \(note)", level: .debug, step: step) }
            lastNote = note
        }
        let pause = schedule.next()
        if let wake { await wake(pause) } else { try await Task.sleep(for: pause) }
        try Task.checkCancellation()
    }
}

/// Disk preflight for installs: the disk Talos will install to exists, is not USB or read-only,
/// and is big enough. Wiping the wrong disk is the mistake this tool exists to prevent.
enum InstallDiskCheck {
    static let minimumSize: UInt64 = 8 << 30

    static func isUSB(_ disk: Storage_Disk) -> Bool { disk.busPath.lowercased().contains("usb") || disk.subsystem.lowercased().contains("usb") }

    static func check(node: NodeSpec, disks: [Storage_Disk]) throws -> Storage_Disk {
        let listing = disks.map { "\($0.deviceName) \($0.size / 1_000_000_000) GB \($0.model)\(isUSB($0) ? " (USB)" : "")" }.joined(separator: ", ")
        let candidates: [Storage_Disk]
        let wanted: String
        if let path = node.installDisk?.value {
            wanted = "install.disk \(path)"
            candidates = disks.filter { $0.deviceName == path }
        } else if let selector = node.diskSelector {
            wanted = "install.diskSelector " + selector.fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.value)" }.joined(separator: ",")
            candidates = disks.filter { matches($0, selector) }
        } else {
            throw StepError.permanent("\(node.name.value) has no install disk in the inventory; disks seen: \(listing)")
        }
        let usable = candidates.filter { !isUSB($0) || node.allowRemovableDisk }.filter { !$0.readonly && $0.size >= minimumSize }
        guard let disk = usable.first else {
            let why = candidates.isEmpty ? "matches no disk" : "matches only disks that are USB, read-only or under 8 GiB"
            let offers = disks.filter { !isUSB($0) && !$0.readonly && $0.size >= minimumSize }.map { "\($0.deviceName) \($0.size / 1_000_000_000) GB \($0.model): diskSelector \(suggestion(for: $0, among: disks))" }
            throw StepError.permanent("\(node.name.value): \(wanted) \(why); disks seen: \(listing.isEmpty ? "none" : listing)."
                + (offers.isEmpty ? "" : " A selector that picks each disk it could install to: \(offers.joined(separator: "; ")).") + " Fix the inventory (see `provision probe`).")
        }
        guard usable.count == 1 || node.installDisk != nil else {
            throw StepError.permanent("\(node.name.value): \(wanted) matches \(usable.count) disks (\(usable.map(\.deviceName).joined(separator: ", "))); Talos would pick one, so narrow the selector")
        }
        return disk
    }

    /// The simplest selector that picks `disk` alone among `disks`: its type, else its model, else
    /// its serial, else its bus path (what Talos' `installDiskSelector` takes).
    static func suggestion(for disk: Storage_Disk, among disks: [Storage_Disk]) -> String {
        let type = typeName(disk)
        if type != "unknown", disks.filter({ typeName($0) == type }).count == 1 { return "{type: \(type)}" }
        if !disk.model.isEmpty, disks.filter({ $0.model == disk.model }).count == 1 { return "{model: \"\(disk.model)\"}" }
        if !disk.serial.isEmpty { return "{serial: \"\(disk.serial)\"}" }
        return "{busPath: \"\(disk.busPath)\"}"
    }

    static func typeName(_ disk: Storage_Disk) -> String {
        switch disk.type {
        case .nvme: "nvme"
        case .hdd: "hdd"
        case .ssd: "ssd"
        case .sd: "sd"
        default: "unknown"
        }
    }

    static func matches(_ disk: Storage_Disk, _ selector: DiskSelector) -> Bool {
        for (key, value) in selector.fields {
            let text = value.value
            switch key {
            case "type": if typeName(disk) != text.lowercased() { return false }
            case "model": if !glob(text, disk.model) { return false }
            case "serial": if disk.serial != text { return false }
            case "busPath": if !glob(text, disk.busPath) { return false }
            case "size":
                guard let bound = SizeBound(text), bound.admits(Int64(disk.size)) else { return false }
            default: continue
            }
        }
        return true
    }

    /// Talos' selectors accept `*` globs for model and bus path.
    static func glob(_ pattern: String, _ text: String) -> Bool {
        guard pattern.contains("*") else { return pattern == text }
        let parts = pattern.split(separator: "*", omittingEmptySubsequences: false).map(String.init)
        var rest = Substring(text)
        for (index, part) in parts.enumerated() {
            if index == 0 { guard rest.hasPrefix(part) else { return false }; rest = rest.dropFirst(part.count); continue }
            if index == parts.count - 1 { return part.isEmpty || rest.hasSuffix(part) }
            guard let range = rest.range(of: part) else { return false }
            rest = rest[range.upperBound...]
        }
        return true
    }
}
