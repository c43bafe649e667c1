import Foundation

/// Human durations as operators write them in YAML and flags: `90s`, `10m`, `4h`, `1h30m`, `2d`.
public enum DurationText {
    public static func parse(_ text: String) -> Duration? {
        var total: Int64 = 0
        var number = ""
        var sawUnit = false
        var chars = Array(text.trimmingWhitespace())
        guard !chars.isEmpty else { return nil }
        if chars.allSatisfy(\.isNumber) { return nil } // a bare number is ambiguous: say the unit
        var index = 0
        while index < chars.count {
            let c = chars[index]
            if c.isASCII, c.isNumber {
                number.append(c)
            } else {
                var unit = String(c)
                if c == "m", index + 1 < chars.count, chars[index + 1] == "s" { unit = "ms"; index += 1 }
                guard let value = Int64(number) else { return nil }
                let scale: Int64
                switch unit {
                case "ms": scale = 1
                case "s": scale = 1000
                case "m": scale = 60_000
                case "h": scale = 3_600_000
                case "d": scale = 86_400_000
                default: return nil
                }
                let (product, overflow) = value.multipliedReportingOverflow(by: scale)
                guard !overflow else { return nil }
                total += product
                number = ""
                sawUnit = true
            }
            index += 1
        }
        chars.removeAll()
        guard number.isEmpty, sawUnit else { return nil }
        return .milliseconds(total)
    }

    /// Formats a duration compactly (`4h`, `1h30m`, `45s`, `250ms`).
    public static func format(_ duration: Duration) -> String {
        var ms = Int64(duration.components.seconds) * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if ms == 0 { return "0s" }
        if ms < 1000 { return "\(ms)ms" }
        var parts = ""
        for (unit, scale) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] where ms >= scale {
            parts += "\(ms / scale)\(unit)"
            ms %= scale
        }
        return parts
    }
}

/// Sizes such as `8GiB`, `64G`, `512MiB`, in bytes (both SI-looking and binary suffixes mean binary here,
/// which is what hypervisors do with memory and disk sizes).
public enum SizeText {
    /// Bytes for people: `812 B`, `4.1 KiB`, `37.5 MiB`, `2.0 GiB`.
    public static func format(_ bytes: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f", value) + " " + units[unit]
    }

    public static func parse(_ text: String) -> Int64? {
        let trimmed = text.trimmingWhitespace()
        let digits = trimmed.prefix { $0.isNumber }
        guard let value = Int64(digits), value > 0 else { return nil }
        let unit = trimmed.dropFirst(digits.count).trimmingWhitespace().lowercased()
        let shift: Int64
        switch unit {
        case "k", "ki", "kib", "kb": shift = 10
        case "m", "mi", "mib", "mb": shift = 20
        case "g", "gi", "gib", "gb": shift = 30
        case "t", "ti", "tib", "tb": shift = 40
        default: return nil
        }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: 1 << shift)
        return overflow ? nil : bytes
    }
}

extension StringProtocol {
    public func trimmingWhitespace() -> String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}

/// A Talos disk-size selector (`>= 120GB`, `<1TB`, `500GB`): an operator and a size. Talos reads
/// GB/TB as powers of ten and GiB/TiB as powers of two.
public struct SizeBound: Sendable {
    public var operation: String
    public var bytes: Int64

    public init?(_ text: String) {
        var rest = text.trimmingWhitespace()
        var operation = "=="
        for candidate in [">=", "<=", "==", ">", "<"] where rest.hasPrefix(candidate) {
            operation = candidate
            rest = String(rest.dropFirst(candidate.count)).trimmingWhitespace()
            break
        }
        let digits = rest.prefix { $0.isNumber || $0 == "." }
        guard let value = Double(digits), value > 0 else { return nil }
        let unit = rest.dropFirst(digits.count).trimmingWhitespace().lowercased()
        let scale: Double
        switch unit {
        case "", "b": scale = 1
        case "kb": scale = 1e3
        case "mb": scale = 1e6
        case "gb": scale = 1e9
        case "tb": scale = 1e12
        case "kib": scale = 1024
        case "mib": scale = 1_048_576
        case "gib": scale = 1_073_741_824
        case "tib": scale = 1_099_511_627_776
        default: return nil
        }
        self.operation = operation
        self.bytes = Int64(value * scale)
    }

    public func admits(_ size: Int64) -> Bool {
        switch operation {
        case ">=": return size >= bytes
        case "<=": return size <= bytes
        case ">": return size > bytes
        case "<": return size < bytes
        default: return size == bytes
        }
    }
}

extension Sequence where Element == UInt8 {
    /// Lower-case hex, two digits per byte (digests, schematic IDs).
    public var hexString: String {
        map { byte in
            let hex = String(byte, radix: 16)
            return hex.count == 1 ? "0" + hex : hex
        }.joined()
    }
}

/// Paths as users write them in inventories and flags: absolute, `~/…`, or relative to a folder.
public enum PathText {
    public static func resolve(_ path: String, relativeTo directory: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if path.hasPrefix("/") { return path }
        if path == "~" { return home(environment) }
        if path.hasPrefix("~/") { return home(environment) + path.dropFirst(1) }
        return URL(fileURLWithPath: directory).appendingPathComponent(path).standardizedFileURL.path
    }

    /// `$HOME` first, as shells, `age` and `talosctl` expand `~`; the password database only when
    /// it is unset (a bare cron environment).
    static func home(_ environment: [String: String]) -> String {
        if let home = environment["HOME"], !home.isEmpty { return home.count > 1 && home.hasSuffix("/") ? String(home.dropLast()) : home }
        return NSHomeDirectory()
    }
}

extension Duration {
    /// The duration in seconds, fractions kept (for arithmetic with time scales and rates).
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
