import ArgumentParser
import Foundation
import ProvisionCore
import TalosKit

struct Secrets: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secrets",
        abstract: "The cluster's Talos secrets bundle: create, adopt, inspect.",
        discussion: """
            The bundle (CAs, keys, tokens) is the cluster's root of trust. It lives in the state directory as secrets.age, encrypted to the inventory's age recipients and readable with `age -d -i KEY`, or as a 0600 secrets.yaml when the inventory says `encryption: plaintext`. It is never overwritten and never printed.

            Examples:
              provision secrets init homelab                   create it if absent
              provision secrets import homelab secrets.yaml    adopt a talosctl/talhelper bundle
              provision secrets show homelab                   key types, subjects, expiry, fingerprints
            """,
        subcommands: [Init.self, Import.self, Show.self])

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "init", abstract: "Create the bundle if none exists; never overwrite one.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Inventory name or path.") var inventory: String

        func run() async throws {
            try await runCommand { () throws(Exit) in
                let session = try SecretsSession(global: global, inventory: inventory)
                if session.store.exists {
                    session.output.note("a secrets bundle already exists at \(session.store.path); left unchanged")
                    try await session.show()
                    return
                }
                let bundle: SecretsBundle
                do { bundle = try SecretsBundle.generate() } catch {
                    session.output.failure("\(error)", key: "secrets.generate")
                    throw Exit(status: .failed)
                }
                guard try session.save(bundle) else {
                    session.output.note("another run created \(session.store.path) meanwhile; left unchanged")
                    return
                }
                session.output.note("created \(session.store.path)")
                try await session.show(bundle)
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "import", abstract: "Adopt an existing talosctl/talhelper secrets.yaml, unchanged.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Inventory name or path.") var inventory: String
        @Argument(help: "A secrets.yaml written by `talosctl gen secrets` or talhelper.") var file: String

        func run() async throws {
            try await runCommand { () throws(Exit) in
                let session = try SecretsSession(global: global, inventory: inventory)
                let bundle = try session.loader.checked { () throws(InputError) in try SecretsBundle.load(path: file) }
                if session.store.exists {
                    session.output.failure("a secrets bundle already exists at \(session.store.path); it is never overwritten. Move it aside first if you really mean to replace the cluster's root of trust.", key: "secrets.exists")
                    throw Exit(status: .refused)
                }
                guard try session.save(bundle) else { throw Exit(status: .refused) }
                session.output.note("imported \(file) into \(session.store.path)")
                try await session.show(bundle)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "A redacted summary: key types, subjects, expiry, fingerprints.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Inventory name or path.") var inventory: String

        func run() async throws {
            try await runCommand { () throws(Exit) in
                try await SecretsSession(global: global, inventory: inventory).show()
            }
        }
    }
}

/// What the secrets commands share: the inventory, its store, redaction and output.
struct SecretsSession {
    let output: Output
    let loader: Loader
    let inventory: Inventory
    let store: SecretsStore
    let redactor = Redactor()

    init(global: GlobalOptions, inventory name: String) throws(Exit) {
        output = Output(json: global.json)
        loader = Loader(output: output)
        inventory = try loader.inventory(name)
        store = SecretsStore(inventory: inventory, stateDirectory: loader.stateDirectory(global, inventory: inventory),
                             credentials: CredentialResolver(baseDirectory: inventory.directory, redactor: redactor))
    }

    /// Stores a new bundle; false when one appeared meanwhile (nothing is replaced).
    func save(_ bundle: SecretsBundle) throws(Exit) -> Bool {
        do {
            return try store.saveIfAbsent(bundle)
        } catch {
            output.failure(redactor.redact("\(error)"), key: "secrets.write")
            throw Exit(status: .failed)
        }
    }

    func bundle() async throws(Exit) -> SecretsBundle {
        do {
            return try await store.load()
        } catch {
            output.failure(redactor.redact("\(error)"), key: "secrets.unreadable")
            throw Exit(status: error is SecretsError ? .badInput : .failed)
        }
    }

    /// Prints the summary of `known`, or of the stored bundle when none is given.
    func show(_ known: SecretsBundle? = nil) async throws(Exit) {
        let bundle: SecretsBundle
        if let known { bundle = known } else { bundle = try await self.bundle() }
        guard let summary = try? SecretsSummary(bundle) else {
            output.failure("the bundle at \(store.path) could not be summarised", key: "secrets.unreadable")
            throw Exit(status: .failed)
        }
        let format = ISO8601DateFormatter()
        if output.json {
            output.document([
                "path": store.path, "encryption": inventory.secrets.encryption.value.rawValue, "clusterID": summary.clusterIDPrefix,
                "authorities": summary.authorities.map { ["name": $0.name, "keyType": $0.keyType, "subject": $0.subject,
                                                          "notAfter": format.string(from: $0.notAfter), "sha256": $0.sha256] },
                "serviceAccountKey": summary.serviceAccountKey,
            ])
            return
        }
        output.result("secrets bundle of \(inventory.name): \(store.path) (\(inventory.secrets.encryption.value.rawValue))")
        output.result("  cluster id        \(summary.clusterIDPrefix)")
        for authority in summary.authorities {
            output.result("  \(authority.name.padding(toLength: 17, withPad: " ", startingAt: 0)) \(authority.keyType), subject \(authority.subject), valid until \(format.string(from: authority.notAfter))")
            output.result("  \(String(repeating: " ", count: 17)) sha256 \(authority.sha256)")
        }
        output.result("  service account   \(summary.serviceAccountKey) key")
        output.result("  tokens            bootstrap ******.****************, trustd ******.****************")
    }
}

struct TalosConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "talosconfig",
        abstract: "Write a talosconfig with a fresh client certificate (admin, or least-privilege operator).",
        discussion: """
            The certificate is Ed25519, signed by the cluster's OS CA, valid one year, back-dated five minutes for clock skew. `operator` can read, reboot and snapshot etcd but not reset or apply configs: use it for cron jobs. `etcd-backup` (Talos' os:etcd:backup) can take an etcd snapshot and read etcd's members, status and alarms, nothing else (not even the Talos version): give it to a host that only runs `provision backup INV --talosconfig FILE`. The file is written with mode 0600.

            Examples:
              provision talosconfig homelab --output ~/.talos/config
              provision talosconfig homelab --output /etc/provision/cron.talosconfig --role operator
              provision talosconfig homelab --output /etc/provision/backup.talosconfig --role etcd-backup
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "Inventory name or path.") var inventory: String
    @Option(help: "Where to write the talosconfig.") var output: String
    @Option(help: "admin, operator or etcd-backup.") var role: String = "admin"

    func run() async throws {
        try await runCommand { () throws(Exit) in
            let session = try SecretsSession(global: global, inventory: inventory)
            guard let role = TalosConfig.Role(rawValue: role) else {
                session.output.failure("--role \(role) is not one of admin, operator, etcd-backup", key: "flag.invalid")
                throw Exit(status: .badInput)
            }
            let bundle = try await session.bundle()
            do {
                let text = try TalosConfig.render(bundle: bundle, inventory: session.inventory, role: role)
                try PrivateFile.write(Array(text.utf8), to: output)
            } catch {
                session.output.failure(session.redactor.redact("\(error)"), key: "talosconfig.write")
                throw Exit(status: .failed)
            }
            session.output.result(output)
        }
    }
}
