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
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", Self.guardScript, "provision-exec"] + argv
        process.currentDirectoryURL = URL(fileURLWithPath: path(step.parameters.string("chdir"), context) ?? context.inventory.directory)
        let output = Pipe(), lifeline = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = lifeline
        let child = try await ChildProcess.launch(process)
        // Read while the child runs, so a chatty command cannot fill the pipe and stall.
        let reader = Task { await Subprocess.readToEnd(output.fileHandleForReading) }
        // Cancellation (timeout, Ctrl-C) closes the lifeline, and the guard stops the command's group.
        let status: Int32 = await withTaskCancellationHandler {
            await child.exited()
        } onCancel: {
            try? lifeline.fileHandleForWriting.close()
        }
        try? lifeline.fileHandleForWriting.close()
        try Task.checkCancellation()
        let text = String(decoding: await reader.value, as: UTF8.self)
        guard status == 0 else {
            let tail = text.split(separator: "\n").suffix(5).joined(separator: "\n")
            throw StepError.permanent("command exited with status \(status)\(tail.isEmpty ? "" : ": \(tail)")")
        }
        let last = text.split(separator: "\n").last.map(String.init) ?? ""
        return last.isEmpty ? [:] : ["stdout": String(last.prefix(200))]
    }

    /// Runs "$@" in its own session and kills that whole session when stdin (the lifeline pipe held
    /// by provision) reaches EOF: on cancellation, and when provision dies, even by `kill -9`. Without
    /// it an orphaned command could finish its side effect after a resumed run started it again.
    /// The guard gives the command 3 s to stop after SIGTERM, polling so it exits as soon as the
    /// command is gone: Foundation reports our child's exit only when every process holding its
    /// inherited descriptors has exited, the guard included.
    static let guardScript = """
        exec 3<&0
        setsid "$@" </dev/null 3<&- &
        job=$!
        setsid sh -c 'while read -r _; do :; done; kill -TERM -"$1"; i=0; while kill -0 -"$1" && [ $i -lt 30 ]; do sleep 0.1; i=$((i+1)); done; kill -KILL -"$1"' guard "$job" <&3 >/dev/null 2>&1 &
        guard=$!
        exec 3<&-
        wait "$job"; status=$?
        kill "$guard" 2>/dev/null
        exit $status
        """

    func path(_ value: String?, _ context: StepContext) -> String? {
        value.map { Inventory.resolve($0, inventoryFile: context.inventory.file) }
    }
}
