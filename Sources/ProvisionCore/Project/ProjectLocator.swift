import Foundation

/// Turns what a user types (`homelab`, `inventories/x.yaml`, `demo/cp2`, `cp2`) into files and names.
public struct ProjectLocator: Sendable {
    public var workingDirectory: String

    public init(workingDirectory: String = FileManager.default.currentDirectoryPath) {
        self.workingDirectory = workingDirectory
    }

    /// A typed reference to an inventory, optionally with a node or pool after a slash.
    public struct Reference: Sendable {
        public var inventoryPath: String
        public var member: String?
    }

    static let commandLine = SourceLocation(file: "command line", line: 1, column: 1)

    /// `homelab` → `inventories/homelab.yaml` (searched from the working directory upwards);
    /// anything ending in .yaml/.yml or naming an existing file is a path.
    public func inventoryPath(_ text: String) throws(InputError) -> String {
        if text.hasSuffix(".yaml") || text.hasSuffix(".yml") || (text.contains("/") && FileManager.default.fileExists(atPath: absolute(text))) {
            let path = absolute(text)
            guard FileManager.default.fileExists(atPath: path) else {
                throw InputError("input.not-found", at: SourceLocation(file: path, line: 1, column: 1), "inventory file not found",
                                 fix: "check the path")
            }
            return path
        }
        for dir in searchDirectories() {
            for ext in ["yaml", "yml"] {
                let candidate = "\(dir)/inventories/\(text).\(ext)"
                if FileManager.default.fileExists(atPath: candidate) { return candidate }
            }
        }
        let known = availableInventories()
        throw InputError("inventory.not-found", at: Self.commandLine,
                         "no inventory named `\(text)`\(Suggestion.hint(for: text, in: known))",
                         fix: known.isEmpty ? "run from the project folder (the one with inventories/), or pass a path to a .yaml file"
                                            : "use one of: \(known.joined(separator: ", ")), or a path to a .yaml file")
    }

    /// `INVENTORY/NODE`, or `NODE` alone when exactly one inventory defines it.
    public func reference(_ text: String, memberExists: (String, String) -> Bool) throws(InputError) -> Reference {
        if let slash = text.lastIndex(of: "/"), !text.hasSuffix(".yaml") {
            let inv = String(text[..<slash]), member = String(text[text.index(after: slash)...])
            if let path = try? inventoryPath(inv) { return Reference(inventoryPath: path, member: member) }
        }
        var matches: [String] = []
        for name in availableInventories() {
            if let path = try? inventoryPath(name), memberExists(path, text) { matches.append(path) }
        }
        if matches.count == 1 { return Reference(inventoryPath: matches[0], member: text) }
        if matches.count > 1 {
            throw InputError("reference.ambiguous", at: Self.commandLine, "`\(text)` is defined in several inventories",
                             fix: "write INVENTORY/\(text), e.g. \(URL(fileURLWithPath: matches[0]).deletingPathExtension().lastPathComponent)/\(text)")
        }
        throw InputError("reference.not-found", at: Self.commandLine, "`\(text)` is not INVENTORY/NODE and no inventory defines a node or pool named so",
                         fix: "write it as INVENTORY/NAME, e.g. demo/cp2")
    }

    public func availableInventories() -> [String] {
        for dir in searchDirectories() {
            let folder = "\(dir)/inventories"
            if let files = try? FileManager.default.contentsOfDirectory(atPath: folder) {
                return files.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }
                    .map { URL(fileURLWithPath: $0).deletingPathExtension().lastPathComponent }.sorted()
            }
        }
        return []
    }

    /// `up` → `playbooks/up.yaml` beside the inventory's folder (or inside it); a path is used as is.
    public func playbookPath(_ name: String, inventoryFile: String) throws(InputError) -> String {
        if name.hasSuffix(".yaml") || name.hasSuffix(".yml") {
            let path = absolute(name)
            guard FileManager.default.fileExists(atPath: path) else {
                throw InputError("input.not-found", at: SourceLocation(file: path, line: 1, column: 1), "playbook file not found", fix: "check the path")
            }
            return path
        }
        let inventoryDir = URL(fileURLWithPath: inventoryFile).deletingLastPathComponent()
        for dir in [inventoryDir, inventoryDir.deletingLastPathComponent()] {
            let candidate = dir.appendingPathComponent("playbooks/\(name).yaml").path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
        }
        throw InputError("playbook.not-found", at: Self.commandLine, "no playbook named `\(name)` next to \(inventoryFile)",
                         fix: "playbooks live in playbooks/NAME.yaml beside the inventories folder; or pass a path")
    }

    /// The state directory: `--state-dir`, else `$PROVISION_STATE_DIR`, else `.provision/<name>` beside the inventory.
    public static func stateDirectory(explicit: String?, environment: [String: String], inventoryFile: String, name: String) -> String {
        if let explicit, !explicit.isEmpty { return URL(fileURLWithPath: explicit).standardizedFileURL.path }
        if let env = environment["PROVISION_STATE_DIR"], !env.isEmpty { return URL(fileURLWithPath: env).standardizedFileURL.path }
        return URL(fileURLWithPath: inventoryFile).deletingLastPathComponent().appendingPathComponent(".provision/\(name)").path
    }

    func absolute(_ path: String) -> String {
        PathText.resolve(path, relativeTo: workingDirectory)
    }

    func searchDirectories() -> [String] {
        var dirs: [String] = []
        var url = URL(fileURLWithPath: workingDirectory).standardizedFileURL
        for _ in 0..<8 {
            dirs.append(url.path)
            let parent = url.deletingLastPathComponent()
            if parent.path == url.path { break }
            url = parent
        }
        return dirs
    }
}

/// The exit codes every command uses; scripts and cron rely on them.
public enum ExitStatus: Int32, Sendable {
    case ok = 0
    case failed = 1
    case changes = 2
    case refused = 3
    case locked = 4
    case badInput = 64
    case interrupted = 130
}
