import Foundation
import ProvisionCore
import Steps
import TalosKit

/// `restore --state-only`: a lost state directory rebuilt from a backup set, the cluster untouched.
/// The set's secrets bundle is checked against its manifest, decrypted with the backup identity,
/// checked to be the set's cluster, and saved as the inventory keeps it (age to the secrets'
/// recipients, or plain for a lab). Refused when the directory already holds a bundle: this never
/// replaces one.
struct StateRestore {
    let global: GlobalOptions
    let inventory: String
    let from: String
    let output: Output

    func run() async throws(Exit) {
        let loader = Loader(output: output)
        let inv = try Backup.inventoryWithBackup(inventory, output: output)
        let stateDirectory = loader.stateDirectory(global, inventory: inv)
        let redactor = Redactor()
        let credentials = CredentialResolver(baseDirectory: inv.directory, redactor: redactor)
        let store = SecretsStore(inventory: inv, stateDirectory: stateDirectory, credentials: credentials)
        if store.exists {
            output.failure("\(store.path) already holds a secrets bundle; --state-only only fills a state directory that has none (move it aside first if it is wrong)", key: "restore.state-exists")
            throw Exit(status: .refused)
        }
        do {
            let bucket = try await BackupBucket.open(inv, credentials: credentials)
            let set = try await bucket.resolve(from, holding: BackupSet.secrets)
            guard let manifest = try await bucket.manifest(set.name) else { throw StepError.permanent("set \(set.name) has no manifest") }
            guard manifest.objects.contains(where: { $0.name == BackupSet.secrets }) else {
                throw StepError.permanent("set \(set.name) holds the etcd snapshot only (taken with an etcd-backup talosconfig, without the bundle); use --from latest or a set `provision backup list` shows with secrets")
            }
            let identity = try await BackupIdentity.load(inv, credentials: credentials)
            let work = stateDirectory + "/restore-state"
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            defer { try? FileManager.default.removeItem(atPath: work) }
            try await BackupVerifier(bucket: bucket, identity: identity).fetch(set: set.name, object: BackupSet.secrets, manifest: manifest, to: work + "/" + BackupSet.secrets)
            var text = Data()
            try AgeFile.decrypt(file: work + "/" + BackupSet.secrets, identity: identity) { text.append($0) }
            let bundle = try SecretsBundle.parse(text: String(decoding: text, as: UTF8.self), file: "\(set.name)/\(BackupSet.secrets)")
            guard bundle.clusterID == manifest.clusterID else {
                throw StepError.permanent("set \(set.name)'s bundle is not the cluster its manifest names; the set is damaged")
            }
            try store.saveIfAbsent(bundle)
            output.result("state directory \(stateDirectory): secrets bundle of \(manifest.cluster) restored from set \(set.name) (\(ISO8601DateFormatter().string(from: manifest.createdAt))); `provision status \(inv.name)` reads the cluster again")
        } catch {
            output.failure(redactor.redact("\(error)"), key: "restore.state")
            throw Exit(status: .failed)
        }
    }
}
