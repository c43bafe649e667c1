import Foundation

/// Faults a person (or a test) injects into a running lab from another command, e.g. `provision lab
/// break-etcd demo` while `provision lab serve demo` runs: the request is a file in the lab's
/// directory (private to the state directory's owner), taken and answered by the serving process.
public struct LabControl: Sendable {
    public enum Action: Sendable, Equatable {
        /// Destroy etcd's data on every control plane at once.
        case breakEtcd
        /// Add `count` ConfigMaps of `bytes` bytes each (namespace `lab-load`): a big etcd to rehearse against.
        case load(count: Int, bytes: Int)
        /// Press a machine's power button: what powers on a Mac mini that Wake-on-LAN cannot.
        case powerButton(node: String)
        /// Reboot a libvirt host (an Unraid server): every VM stops; those marked autostart start again.
        case hostReboot(provider: String)

        /// The request as written to the lab's directory.
        public var text: String {
            switch self {
            case .breakEtcd: "break-etcd"
            case let .load(count, bytes): "load \(count) \(bytes)"
            case let .powerButton(node): "power-button \(node)"
            case let .hostReboot(provider): "host-reboot \(provider)"
            }
        }

        public init?(text: String) {
            let words = text.split(separator: " ")
            switch words.first {
            case "break-etcd" where words.count == 1: self = .breakEtcd
            case "load" where words.count == 3:
                guard let count = Int(words[1]), let bytes = Int(words[2]), count > 0, bytes >= 0 else { return nil }
                self = .load(count: count, bytes: bytes)
            case "power-button" where words.count == 2: self = .powerButton(node: String(words[1]))
            case "host-reboot" where words.count == 2: self = .hostReboot(provider: String(words[1]))
            default: return nil
            }
        }
    }

    let directory: String

    public init(labDirectory: String) { directory = labDirectory + "/requests" }

    /// Asks the serving lab; its answer, or nil when no lab took the request within `timeout`.
    public func request(_ action: Action, timeout: Duration = .seconds(10)) async throws -> String? {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let id = UUID().uuidString.lowercased()
        let answer = "\(directory)/\(id).answer"
        try Data(action.text.utf8).write(to: URL(fileURLWithPath: "\(directory)/\(id).request"), options: .atomic)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let text = try? String(contentsOfFile: answer, encoding: .utf8) {
                try? FileManager.default.removeItem(atPath: answer)
                return text
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        try? FileManager.default.removeItem(atPath: "\(directory)/\(id).request")
        return nil
    }

    /// `lab/serving`: the pid of the process serving this lab, there while it serves. Commands check it
    /// before starting a lab of their own: a lab without an EC2 endpoint has nothing listening
    /// until its first VM boots, so a port probe alone would start a second lab on the same world.
    var marker: String { URL(fileURLWithPath: directory).deletingLastPathComponent().path + "/serving" }

    public func markServing() {
        try? Data("\(getpid())\n".utf8).write(to: URL(fileURLWithPath: marker), options: .atomic)
    }

    public func unmarkServing() { try? FileManager.default.removeItem(atPath: marker) }

    /// The pid serving this lab, when that process is alive.
    public var servingPID: Int32? {
        guard let text = try? String(contentsOfFile: marker, encoding: .utf8),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0, kill(pid, 0) == 0 else { return nil }
        return pid
    }

    /// The serving side: takes each request as it appears and writes `perform`'s answer.
    public func serve(_ perform: @escaping @Sendable (Action) async -> String) -> Task<Void, Never> {
        let directory = self.directory
        return Task {
            while !Task.isCancelled {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
                for name in names.sorted() where name.hasSuffix(".request") {
                    let path = "\(directory)/\(name)"
                    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
                    try? FileManager.default.removeItem(atPath: path)
                    let answer: String
                    if let action = Action(text: text) { answer = await perform(action) } else { answer = "unknown lab request `\(text)`" }
                    let id = name.dropLast(".request".count)
                    try? Data(answer.utf8).write(to: URL(fileURLWithPath: "\(directory)/\(id).answer"), options: .atomic)
                }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
    }
}

extension LabServices {
    /// Carries out a lab request; the answer says what happened.
    public func perform(_ action: LabControl.Action) async -> String {
        switch action {
        case .breakEtcd:
            let nodes = await cluster.etcd.destroyEverywhere()
            await cluster.directory.commit()
            return nodes.isEmpty ? "no control plane had etcd data: nothing to break"
                : "etcd's data destroyed on \(nodes.joined(separator: ", ")): no quorum, the Kubernetes API is down"
        case let .load(count, bytes):
            guard await cluster.etcd.hasQuorum, let made = await kubeAPI.load(namespace: "lab-load", count: count, bytes: bytes) else {
                return "the lab's Kubernetes API is not up (bring the cluster up first): nothing loaded"
            }
            await cluster.directory.commit()
            return "\(made) ConfigMaps of \(bytes) bytes added in namespace lab-load (\(count - made) were there already)"
        case let .powerButton(name):
            guard let node = cluster.node(name) else { return "the lab has no machine \(name): nothing pressed" }
            if await node.powered { return "\(name) is already on: nothing changed" }
            await node.powerOn()
            await cluster.directory.commit()
            return "\(name) powered on (its power button pressed)"
        case let .hostReboot(provider):
            return await rebootHost(provider)
        }
    }
}
