import Foundation
import ProvisionCore
#if canImport(Glibc)
import Glibc
#endif

/// A peer server the tests start (moto_server, fakepve, the Python Talos peer): launched with a
/// clean signal mask, killed and reaped by `stop()`.
public final class BackgroundProcess: @unchecked Sendable {
    // @unchecked: the Process is only touched by the test that owns this peer.
    let process = Process()
    var child: ChildProcess?

    /// `environment` adds to this process's own; `stdout` is a file path (nil: discarded).
    public init(_ arguments: [String], environment: [String: String] = [:], stdout: String? = nil) async throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        process.environment = merged
        process.standardOutput = stdout.flatMap { FileHandle(forWritingAtPath: $0) } ?? FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        child = try await ChildProcess.launch(process)
    }

    public var pid: Int32 { process.processIdentifier }

    public func stop() async {
        kill(process.processIdentifier, SIGKILL)
        _ = await child?.exited()
    }
}
