import Foundation
@testable import ProvisionCore

enum Peer {
    /// Runs a real CLI (openssl, age); in CI a missing tool is a failure, never a skip.
    @discardableResult
    static func run(_ arguments: [String], stdin: String? = nil) async throws -> Subprocess.Result {
        try await Subprocess.run(arguments, stdin: stdin)
    }

    static func write(_ text: String, _ path: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}
