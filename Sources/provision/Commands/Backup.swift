import ArgumentParser
import Foundation
import ProvisionCore
import Steps
import TalosKit

struct Backup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Back the cluster up to its S3-compatible bucket: an encrypted etcd snapshot, the secrets bundle and the configs.",
        discussion: """
            Needs a `backup:` section in the inventory (endpoint, bucket, keys as references, age recipients, retention, schedule): Cloudflare R2, MinIO, Backblaze B2 and AWS S3 all work.

            `provision backup INV` streams an etcd snapshot from a healthy control plane, checks it as talosctl does (size modulo 512 is 32, and the appended SHA-256), encrypts it with age to the backup's recipients and uploads it (in parts when large; a failed upload is aborted and leaves nothing) beside the secrets bundle and every node's rendered config, both age too, then a manifest (cluster ID, raft index, time, Talos and Kubernetes versions, the SHA-256 of each object). Set names sort newest first. Retention (keep the newest `keepLast`, and one a day for `keepDaily` days; never the newest set) runs only after a successful upload.

            Examples:
              provision backup homelab
              provision backup homelab --talosconfig backup.talosconfig   a cron host with only the etcd-backup role
              provision backup list homelab
              provision backup verify homelab              the newest set
              provision backup verify homelab 20261202T030000Z
              provision schedule homelab                   the crontab line for `backup.schedule`

            Exit 0 done, 1 failed (S3's error code and message are shown; no secret is), 4 locked, 64 bad input.
            """,
        subcommands: [Take.self, List.self, Verify.self],
        defaultSubcommand: Take.self)

    struct Take: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "take", abstract: "Take one backup set now (what `provision backup INV` does).")

        @OptionGroup var global: GlobalOptions
        @OptionGroup var runOptions: RunOptions
        @Argument(help: "Inventory name or path.") var inventory: String
        @Option(help: ArgumentHelp("Snapshot etcd with this talosconfig's certificate (e.g. one made with `provision talosconfig INV --role etcd-backup`); without the bundle on this host the set holds the snapshot only.", valueName: "file"))
        var talosconfig: String?

        func run() async throws {
            try await runCommand { () throws(Exit) in
                let output = Output(json: global.json)
                let inv = try Backup.inventoryWithBackup(inventory, output: output)
                var session = RunSession(global: global, run: runOptions, command: "backup \(inv.name)", playbook: "backup")
                if let talosconfig {
                    session.talosCredentials = try Loader(output: output).checked { () throws(InputError) in try TalosConfig.credentials(path: talosconfig) }
                }
                try await session.perform(inventory: inv)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the backup sets in the bucket, newest first.")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "Inventory name or path.") var inventory: String

        func run() async throws {
            try await runCommand { () throws(Exit) in
                let output = Output(json: global.json)
                let inv = try Backup.inventoryWithBackup(inventory, output: output)
                let redactor = Redactor()
                let result: [(BackupSet, BackupManifest?)]
                do {
                    let bucket = try await BackupBucket.open(inv, credentials: CredentialResolver(baseDirectory: inv.directory, redactor: redactor))
                    var rows: [(BackupSet, BackupManifest?)] = []
                    for set in try await bucket.sets() { rows.append((set, set.complete ? try await bucket.manifest(set.name) : nil)) }
                    result = rows
                } catch {
                    output.failure(redactor.redact("\(error)"), key: "backup.list")
                    throw Exit(status: .failed)
                }
                if global.json {
                    output.document(["inventory": inv.name, "sets": result.map { set, manifest -> [String: Any] in
                        var row: [String: Any] = ["name": set.name, "time": ISO8601DateFormatter().string(from: set.date), "bytes": set.bytes, "complete": set.complete,
                                                   "secrets": set.holdsSecrets]
                        if let manifest {
                            row["source"] = manifest.source
                            row["etcdRevision"] = manifest.etcdRevision.map { Int($0) } ?? NSNull()
                            row["talosVersion"] = manifest.talosVersion
                            row["kubernetesVersion"] = manifest.kubernetesVersion
                        }
                        return row
                    }])
                    return
                }
                guard !result.isEmpty else {
                    output.result("no backup sets yet in \(inv.backup!.bucket.value); take one with `provision backup \(inv.name)`")
                    return
                }
                output.result(Table.render(["SET", "TIME", "SIZE", "FROM", "RAFT INDEX", "VERSIONS", "STATE"], result.map { set, manifest in
                    [set.name, ISO8601DateFormatter().string(from: set.date), SizeText.format(set.bytes), manifest?.source ?? "-",
                     manifest?.etcdRevision.map(String.init) ?? "-", manifest.map { "talos \($0.talosVersion), k8s \($0.kubernetesVersion)" } ?? "-",
                     !set.complete ? "incomplete (upload did not finish)" : set.holdsSecrets ? "complete" : "complete, snapshot only"]
                }))
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Download a backup set, check every object's SHA-256, decrypt it and check the snapshot is whole.",
            discussion: "Needs the age identity (`backup.identity`, else `secrets.identity`). Nothing is kept: the download goes to a private directory under the state directory and is removed.")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "Inventory name or path.") var inventory: String
        @Argument(help: "The set: `latest` (default), its name, or its time as `backup list` shows it.") var set: String = "latest"

        func run() async throws {
            try await runCommand { () throws(Exit) in
                let output = Output(json: global.json)
                let loader = Loader(output: output)
                let inv = try Backup.inventoryWithBackup(inventory, output: output)
                let redactor = Redactor()
                let credentials = CredentialResolver(baseDirectory: inv.directory, redactor: redactor)
                let report: BackupVerifier.Report
                do {
                    let bucket = try await BackupBucket.open(inv, credentials: credentials)
                    let chosen = try await bucket.resolve(set)
                    let verifier = BackupVerifier(bucket: bucket, identity: try await BackupIdentity.load(inv, credentials: credentials))
                    report = try await verifier.verify(set: chosen.name, work: loader.stateDirectory(global, inventory: inv) + "/backups/verify-\(UUID().uuidString.prefix(8))")
                } catch {
                    output.failure(redactor.redact("\(error)"), key: "backup.verify")
                    throw Exit(status: .failed)
                }
                if global.json {
                    output.document(["set": report.set, "ok": true, "objects": report.checked.map { ["name": $0.name, "checked": $0.detail] }])
                    return
                }
                output.result("set \(report.set) (\(ISO8601DateFormatter().string(from: report.manifest.createdAt)), from \(report.manifest.source)): ok")
                for item in report.checked { output.result("  \(item.name): \(item.detail)") }
            }
        }
    }

    static func inventoryWithBackup(_ name: String, output: Output) throws(Exit) -> Inventory {
        let inv = try Loader(output: output).inventory(name)
        guard inv.backup != nil else {
            output.failure("inventory \(inv.name) has no `backup:` section; add one naming the S3-compatible store (`provision backup --help` shows the keys)", key: "backup.missing")
            throw Exit(status: .badInput)
        }
        return inv
    }
}
