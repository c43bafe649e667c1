import Foundation
import Synchronization
import TestSupport

/// Runs the built `provision` binary as a child process, the way users and cron do.
enum CLI {
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["PROVISION_BIN"], FileManager.default.fileExists(atPath: path) { return path }
        return repositoryRoot + "/.build/debug/provision"
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// A running child with its output collected line by line.
    final class Running: Sendable {
        let process: Process
        private let out = Mutex<[String]>([])
        private let err = Mutex<String>("")
        private let outDone = Mutex(false)

        init(_ arguments: [String], cwd: String, environment: [String: String]) throws {
            process = Process()
            process.executableURL = URL(fileURLWithPath: CLI.binary)
            process.arguments = arguments
            process.currentDirectoryURL = URL(fileURLWithPath: cwd)
            var env = ProcessInfo.processInfo.environment
            env.removeValue(forKey: "PROVISION_STATE_DIR")
            for (key, value) in environment { env[key] = value }
            process.environment = env
            let stdout = Pipe(), stderr = Pipe()
            process.standardOutput = stdout
            process.standardError = stderr
            process.standardInput = FileHandle.nullDevice
            try process.run()
            Thread.detachNewThread { [self] in
                var buffer = Data()
                while true {
                    let chunk = stdout.fileHandleForReading.availableData
                    if chunk.isEmpty { break }
                    buffer.append(chunk)
                    while let newline = buffer.firstIndex(of: 10) {
                        let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                        self.out.withLock { $0.append(line) }
                        buffer.removeSubrange(buffer.startIndex...newline)
                    }
                }
                self.outDone.withLock { $0 = true }
            }
            Thread.detachNewThread { [self] in
                let data = stderr.fileHandleForReading.readDataToEndOfFile()
                self.err.withLock { $0 = String(decoding: data, as: UTF8.self) }
            }
        }

        var lines: [String] { out.withLock { $0 } }

        /// Waits until `predicate` holds for the stdout lines, or the deadline passes.
        func waitFor(timeout: Duration = .seconds(30), _ predicate: ([String]) -> Bool) async throws -> Bool {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if predicate(lines) { return true }
                // The child ended before the condition was seen: report that, do not pretend.
                if !process.isRunning, self.outDone.withLock({ $0 }) { return false }
                try await Task.sleep(for: .milliseconds(10))
            }
            return false
        }

        func signal(_ number: Int32) { kill(process.processIdentifier, number) }

        func finish(timeout: Duration = .seconds(60)) async throws -> Result {
            let deadline = ContinuousClock.now + timeout
            while process.isRunning {
                if ContinuousClock.now > deadline {
                    process.terminate()
                    throw CLIError.timedOut
                }
                try await Task.sleep(for: .milliseconds(10))
            }
            _ = try await waitFor(timeout: .seconds(5)) { _ in self.outDone.withLock { $0 } }
            try await Task.sleep(for: .milliseconds(20))
            return Result(status: process.terminationStatus, stdout: lines.joined(separator: "\n"), stderr: err.withLock { $0 })
        }
    }

    enum CLIError: Error { case timedOut }

    static func run(_ arguments: [String], cwd: String = repositoryRoot, environment: [String: String] = [:],
                    timeout: Duration = .seconds(60)) async throws -> Result {
        try await Running(arguments, cwd: cwd, environment: environment).finish(timeout: timeout)
    }

    /// A scratch project: inventories/lab.yaml (the test base inventory), images/, playbooks/.
    static func project(playbooks: [String: String] = [:]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("provision-cli-\(UUID().uuidString)").path
        let fm = FileManager.default
        for sub in ["inventories", "images", "playbooks", "out"] {
            try fm.createDirectory(atPath: "\(dir)/\(sub)", withIntermediateDirectories: true)
        }
        try fm.copyItem(atPath: repositoryRoot + "/Tests/Fixtures/inventories/base.yaml", toPath: dir + "/inventories/lab.yaml")
        try fm.copyItem(atPath: repositoryRoot + "/Tests/Fixtures/images/vm.yaml", toPath: dir + "/images/vm.yaml")
        for (name, body) in playbooks {
            try ("apiVersion: provision/v1\nkind: Playbook\nsteps:\n" + body).write(toFile: "\(dir)/playbooks/\(name).yaml", atomically: true, encoding: .utf8)
        }
        return dir
    }

    /// The JSON-lines events of `kind`, or of every kind (nil), in order.
    static func events(_ lines: [String], kind: String?) -> [[String: Any]] {
        lines.compactMap { line in
            guard let data = line.data(using: .utf8), let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
            return kind == nil || object["kind"] as? String == kind ? object : nil
        }
    }
}
