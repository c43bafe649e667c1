import Foundation
import Lab
import ProvisionCore

/// A lab inventory's simulators for one command: started in this process from the lab's saved state
/// unless a `provision lab serve` already answers on the lab's addresses (then that one is used).
/// Every change the lab acknowledges is saved before it is acknowledged, so even `kill -9` leaves
/// the lab as the command last saw it.
final class InProcessLab: Sendable {
    let services: LabServices
    let path: String
    /// A dry run's lab: restored as the last command left it, never saved.
    let readOnly: Bool

    init(services: LabServices, path: String, readOnly: Bool) {
        self.services = services
        self.path = path
        self.readOnly = readOnly
    }

    static func twinPath(_ inventory: Inventory, _ stateDirectory: String) -> String { inventory.labDirectory(stateDirectory: stateDirectory) + "/twin.json" }

    /// A last save (nothing may have changed since the last commit) and the simulators stop.
    func finish() async {
        if readOnly {
            await services.stop()
            return
        }
        do { try await services.save(to: path) } catch {
            FileHandle.standardError.write(Data("lab: cannot save the lab to \(path): \(error)\n".utf8))
        }
        await services.stop()
    }

    static func start(_ inventory: Inventory, stateDirectory: String, credentials: CredentialResolver, output: Output,
                      readOnly: Bool = false) async throws(Exit) -> InProcessLab? {
        guard inventory.lab != nil else { return nil }
        if let served = externalLab(inventory, stateDirectory: stateDirectory) {
            output.note("lab \(inventory.name): using the lab already serving at \(served)")
            return nil
        }
        let path = twinPath(inventory, stateDirectory)
        do {
            let restoring = FileManager.default.fileExists(atPath: path)
            let services = try await LabServices.start(inventory, credentials: credentials, twin: path, readOnly: readOnly)
            if !readOnly { await services.persist(to: path) }
            output.note("lab \(inventory.name): simulated machines, Talos nodes, Kubernetes API and EC2 running in this process"
                        + (restoring ? ", as the last command left them" : "") + (readOnly ? " (read-only: a dry run saves nothing)" : ""))
            return InProcessLab(services: services, path: path, readOnly: readOnly)
        } catch {
            output.failure("the lab could not start: \(error)", key: "lab.start")
            throw Exit(status: .failed)
        }
    }

    /// Step kinds that talk to machines, Talos, Kubernetes or EC2 (a local.exec playbook needs no lab).
    static func needsLab(_ kind: String) -> Bool {
        ["machine.", "kube.", "gpu.", "backup.", "etcd.", "restore."].contains { kind.hasPrefix($0) } || (kind.hasPrefix("talos.") && kind != "talos.secrets")
    }

    /// Where the lab another process serves answers: its pid when it serves this lab's world
    /// (`lab/serving`), else an endpoint of the inventory's that already answers.
    static func externalLab(_ inventory: Inventory, stateDirectory: String) -> String? {
        if let pid = LabControl(labDirectory: inventory.labDirectory(stateDirectory: stateDirectory)).servingPID { return "pid \(pid)" }
        var candidates: [(String, Int)] = []
        for provider in inventory.providers where provider.kind.value == .aws {
            if let url = provider.setting("endpoint").flatMap(URL.init(string:)), let host = url.host { candidates.append((host, url.port ?? 80)) }
        }
        for node in inventory.nodes where inventory.provider(named: node.machine.provider.value)?.kind.value != .metal {
            candidates.append((node.address.value.description, 50000))
        }
        return candidates.first { TCPProbe.answers(host: $0.0, port: $0.1, timeout: .milliseconds(200)) }.map { "\($0.0):\($0.1)" }
    }
}
