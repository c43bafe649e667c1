import Foundation
import Synchronization

/// Writes whole lines to a file descriptor under a lock, so concurrent steps never interleave bytes.
public final class LineWriter: Sendable {
    private let handle: Mutex<FileHandle>

    public init(_ handle: FileHandle) { self.handle = Mutex(handle) }

    public func write(_ line: String) {
        handle.withLock { $0.write(Data((line + "\n").utf8)) }
    }

    public func writeRaw(_ text: String) {
        handle.withLock { $0.write(Data(text.utf8)) }
    }

    public static let standardOutput = LineWriter(.standardOutput)
    public static let standardError = LineWriter(.standardError)
}

/// JSON-lines on stdout for `--json`: one event per line, stable keys, ISO-8601 times.
public struct JSONLinesSink: EventSink {
    let writer: LineWriter

    public init(writer: LineWriter = .standardOutput) { self.writer = writer }

    public func receive(_ event: Event) {
        writer.write(Self.encode(event))
    }

    static func encode(_ event: Event) -> String {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(event)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

/// The trace log written for every run under `<state>/logs/`, mode 0600, already redacted by the bus.
public final class TraceLogSink: EventSink {
    private let writer: LineWriter
    public let path: String

    public init(directory: String, runID: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        path = "\(directory)/\(runID).jsonl"
        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]),
              let handle = FileHandle(forWritingAtPath: path) else {
            throw StepError.permanent("cannot create trace log \(path)")
        }
        writer = LineWriter(handle)
    }

    public func receive(_ event: Event) { writer.write(JSONLinesSink.encode(event)) }
}

/// Human output: one line per finished step; on a TTY also a live status line of what is running.
public final class ConsoleSink: EventSink {
    struct State {
        var running: [String: Date] = [:]
        /// A dry run's diffs, shown under the step's "would change" line.
        var diffs: [String: String] = [:]
        var done = 0, failed = 0, satisfied = 0
        var total = 0
    }

    private let writer: LineWriter
    private let live: Bool
    private let verbose: Bool
    private let state = Mutex(State())

    public init(writer: LineWriter = .standardError, live: Bool, verbose: Bool, total: Int) {
        self.writer = writer
        self.live = live
        self.verbose = verbose
        state.withLock { $0.total = total }
    }

    public func receive(_ event: Event) {
        let id = event.step ?? ""
        var line: String?
        let status: String = state.withLock { s in
            switch event.kind {
            case .stepStarted:
                s.running[id] = event.time
                if verbose { line = "  … \(id) started" }
            case .stepSatisfied:
                s.running[id] = nil; s.satisfied += 1
                line = "  = \(id): already done\(event.message.map { " (\($0))" } ?? "")"
            case .stepPending:
                s.running[id] = nil; s.done += 1
                line = "  ~ \(id): would change: \(event.message ?? "")"
                if let diff = s.diffs.removeValue(forKey: id) {
                    line! += "\n" + diff.split(separator: "\n", omittingEmptySubsequences: false).map { "      " + $0 }.joined(separator: "\n")
                }
            case .stepApplied:
                s.running[id] = nil; s.done += 1
                line = "  ✓ \(id)\(event.durationMs.map { " (\(Self.seconds($0)))" } ?? "")"
            case .stepRetrying:
                line = "  ↻ \(id): \(event.message ?? "") (attempt \(event.attempt ?? 0))"
            case .stepFailed:
                s.running[id] = nil; s.failed += 1
                line = "  ✗ \(id): \(event.message ?? "failed")"
            case .stepBlocked:
                line = verbose ? "  - \(id): not run, \(event.message ?? "a dependency failed")" : nil
            case .change:
                // The pending line says what and why; a diff (a machine config) follows it, indented.
                if let diff = event.change?.diff { s.diffs[id] = diff.hasSuffix("\n") ? String(diff.dropLast()) : diff }
            case .runStarted, .runFinished:
                line = event.message
            case .log:
                if event.level != .debug || verbose {
                    line = "  \(event.level == .warning ? "warning: " : event.level == .error ? "error: " : "")\(id.isEmpty ? "" : id + ": ")\(event.message ?? "")"
                }
            }
            let finished = s.done + s.satisfied + s.failed
            let running = s.running.keys.sorted().prefix(4).joined(separator: ", ")
            let more = s.running.count > 4 ? " +\(s.running.count - 4)" : ""
            return "[\(finished)/\(s.total)] running: \(running.isEmpty ? "-" : running)\(more)"
        }
        if live {
            writer.writeRaw("\r\u{1B}[K" + (line.map { $0 + "\n" } ?? "") + (event.kind == .runFinished ? "" : status))
        } else if let line {
            writer.write(line)
        }
    }

    public func flush() { if live { writer.writeRaw("\r\u{1B}[K") } }

    static func seconds(_ ms: Int) -> String { ms < 1000 ? "\(ms)ms" : String(format: "%.1fs", Double(ms) / 1000) }
}
