import Foundation
import ProvisionCore

/// Prints what commands have to say, human or JSON. Human text goes to stderr for diagnostics and to
/// stdout for results; JSON always goes to stdout so scripts can parse it.
struct Output {
    let json: Bool

    func result(_ text: String) { LineWriter.standardOutput.write(text) }
    func note(_ text: String) { if !json { LineWriter.standardError.write(text) } }
    /// Warnings go to stderr even with --json: stdout stays parseable, and cron mails stderr.
    func warning(_ text: String) { LineWriter.standardError.write("warning: " + text) }

    func diagnostics(_ diagnostics: [Diagnostic]) {
        if json {
            document(["ok": !diagnostics.contains { $0.severity == .error }, "diagnostics": diagnostics.map(Self.encode)])
            return
        }
        for diagnostic in diagnostics { LineWriter.standardError.write(diagnostic.description) }
        let errors = diagnostics.filter { $0.severity == .error }.count
        let warnings = diagnostics.count - errors
        if errors > 0 {
            LineWriter.standardError.write("\(errors) error\(errors == 1 ? "" : "s")\(warnings > 0 ? ", \(warnings) warning\(warnings == 1 ? "" : "s")" : ""); nothing was changed")
        }
    }

    /// A failure that is not about a file position (lock held, journal unreadable, kind unavailable).
    func failure(_ message: String, key: String) {
        if json {
            document(["ok": false, "error": ["key": key, "message": message]])
        } else {
            LineWriter.standardError.write("error: \(message)")
        }
    }

    func document(_ object: [String: Any]) {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        LineWriter.standardOutput.write(String(decoding: data, as: UTF8.self))
    }

    static func encode(_ d: Diagnostic) -> [String: Any] {
        var object: [String: Any] = [
            "severity": d.severity.rawValue, "key": d.key, "message": d.message,
            "file": d.location.file, "line": d.location.line, "column": d.location.column,
        ]
        if let fix = d.fix { object["fix"] = fix }
        return object
    }
}

/// Ends the command with one of the documented exit codes.
struct Exit: Error {
    var status: ExitStatus
}

/// Columns padded to their widest cell, two spaces apart: the tables `status` and `backup list` print.
enum Table {
    static func render(_ header: [String], _ rows: [[String]]) -> String {
        let widths = (0..<header.count).map { col in ([header[col]] + rows.map { $0[col] }).map(\.count).max() ?? 0 }
        return ([header] + rows).map { line in
            line.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }
}
