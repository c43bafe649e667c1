import Foundation
import ProvisionCore

/// `local.exec`: runs a command on the machine running provision, like Ansible's `command` with
/// `creates:`. With `creates`, the step is done when that path exists, so the command must create it
/// atomically (write elsewhere, then rename or `mkdir`) for resume to be exact. Without `creates`,
/// the command runs on every run.
public struct LocalExec: StepKind {
    public let info = StepKindInfo(
        name: "local.exec", summary: "run a local command; done when `creates` exists",
        estimate: .seconds(1), scope: .any, defaultTimeout: .seconds(600), parameters: ["run", "creates", "chdir"])

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        guard let creates = path(step.parameters.string("creates"), context) else {
            return .pending("no `creates` path: runs every time")
        }
        return FileManager.default.fileExists(atPath: creates) ? .satisfied([:]) : .pending("\(creates) does not exist")
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        guard let command = step.parameters.strings("run"), !command.isEmpty else {
            throw StepError.permanent("local.exec needs `with: {run: [program, args…]}`")
        }
        let argv = command.count == 1 ? ["sh", "-c", command[0]] : command
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = argv
        process.currentDirectoryURL = URL(fileURLWithPath: path(step.parameters.string("chdir"), context) ?? context.inventory.directory)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Read while the child runs, so a chatty command cannot fill the pipe and stall.
        let reader = Task.detached { output.fileHandleForReading.readDataToEndOfFile() }
        // Cancellation (timeout, Ctrl-C) stops the child too, so nothing runs on after we give up.
        let status: Int32 = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                DispatchQueue.global().async {
                    process.waitUntilExit()
                    continuation.resume(returning: process.terminationStatus)
                }
            }
        } onCancel: {
            process.terminate()
        }
        try Task.checkCancellation()
        let text = String(decoding: await reader.value, as: UTF8.self)
        guard status == 0 else {
            let tail = text.split(separator: "\n").suffix(5).joined(separator: "\n")
            throw StepError.permanent("command exited with status \(status)\(tail.isEmpty ? "" : ": \(tail)")")
        }
        let last = text.split(separator: "\n").last.map(String.init) ?? ""
        return last.isEmpty ? [:] : ["stdout": String(last.prefix(200))]
    }

    func path(_ value: String?, _ context: StepContext) -> String? {
        value.map { Inventory.resolve($0, inventoryFile: context.inventory.file) }
    }
}
