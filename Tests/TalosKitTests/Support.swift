import Foundation
@testable import ProvisionCore

enum Peer {
    /// Runs a real CLI (openssl, age); in CI a missing tool is a failure, never a skip.
    @discardableResult
    static func run(_ arguments: [String], stdin: String? = nil) async throws -> Subprocess.Result {
        try await Subprocess.run(arguments, stdin: stdin)
    }

    static func temporaryDirectory() -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("taloskit-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func write(_ text: String, _ path: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}

let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
