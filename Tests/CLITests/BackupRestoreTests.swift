import Foundation
import ProvisionCore
import Testing
import TestSupport

/// `provision backup` and `provision restore` on the demo lab against moto_server (an independent
/// S3), checked with boto3, the real `age` and the real `kubectl`; the lab's record judges what
/// happened to the machines.
@Suite(.serialized) struct BackupRestoreTests {
    static let controlPlanes = ["cp1", "cp2", "cp3"]

    func configMaps(_ project: DemoProject) async throws -> [String] {
        let listed = try await project.kubectl(["get", "configmaps", "-o", "name"])
        return listed.stdout.split(separator: "\n").map(String.init).filter { $0.hasPrefix("configmap/dr-") }
    }

    func loadedConfigMaps(_ project: DemoProject) async throws -> Int {
        let listed = try await project.kubectl(["get", "configmaps", "-n", "lab-load", "-o", "name"])
        return listed.stdout.split(separator: "\n").filter { $0.hasPrefix("configmap/") }.count
    }

    func kubeSystemUID(_ project: DemoProject) async throws -> String {
        try await project.kubectl(["get", "namespace", "kube-system", "-o", "jsonpath={.metadata.uid}"]).stdout
    }

    func etcdMembers(_ project: DemoProject) async throws -> Int {
        let nodes = project.json(try await project.run(["status", "demo", "--json"]))["nodes"] as? [[String: Any]] ?? []
        return nodes.filter { $0["etcdMember"] as? Bool == true }.count
    }

    func recoveries(_ project: DemoProject, since t: Int64) throws -> [LabRecordFile.Entry] {
        try LabRecordFile(stateDirectory: project.state).since(t).filter { $0.event == "etcd-bootstrap" }
    }

    func createConfigMaps(_ project: DemoProject) async throws {
        for index in 1...50 {
            let made = try await project.kubectl(["create", "configmap", "dr-\(index)", "--from-literal=index=\(index)"])
            #expect(made.status == 0, "\(made.stderr)")
        }
    }

    /// The acceptance run: 50 ConfigMaps, a backup, the ConfigMaps deleted and etcd destroyed on
    /// every control plane, then `restore --from latest`: three healthy members, the ConfigMaps back,
    /// the cluster's identity unchanged. A restore of a healthy cluster is refused and touches nothing;
    /// a lost state directory comes back from the bucket.
    @Test(.timeLimit(.minutes(6))) func aClusterWhoseEtcdIsDestroyedComesBackFromItsBackup() async throws {
        try await DemoLabLock.exclusive {
            let moto = try await MotoServer()
            defer { Task { await moto.stop() } }
            try await BackupProject.makeBucket(moto.endpoint, "demo-backups")
            let backup = try await BackupProject(endpoint: moto.endpoint)
            let project = backup.project
            let lab = try await project.serve()
            defer { lab.signal(SIGINT) }
            #expect(try await project.run(["up", "demo"]).status == 0)
            try await createConfigMaps(project)
            #expect(try await configMaps(project).count == 50)
            let uid = try await kubeSystemUID(project)
            #expect(!uid.isEmpty)
            let bundleBefore = try String(contentsOfFile: project.state + "/secrets.yaml", encoding: .utf8)

            let taken = try await project.run(["backup", "demo"])
            #expect(taken.status == 0, "\(taken.stderr)")
            let sets = try await BackupProject.sets(moto.endpoint, "demo-backups")
            #expect(sets.count == 1, "one set: \(sets)")
            let keys = try await BackupProject.keys(moto.endpoint, "demo-backups")
            #expect(keys.contains("backups/\(sets.first ?? "")/manifest.json"), "\(keys)")
            #expect(keys.contains { $0.hasSuffix("/configs/cp1.yaml.age") } && keys.contains { $0.hasSuffix("/secrets.yaml.age") })

            // The real age decrypts the snapshot boto3 downloads: a whole etcd snapshot.
            let snapshot = project.dir + "/snapshot.age"
            let fetched = try await BackupProject.boto3(moto.endpoint, bucket: "demo-backups",
                                                        "s3.download_file(bucket, 'backups/\(sets.first ?? "")/etcd.snapshot.age', '\(snapshot)')")
            #expect(fetched.status == 0, "\(fetched.stderr)")
            let decrypted = try await Subprocess.run(["age", "-d", "-i", backup.identityPath, "-o", project.dir + "/snapshot.db", snapshot])
            #expect(decrypted.status == 0, "\(decrypted.stderr)")
            let size = (try FileManager.default.attributesOfItem(atPath: project.dir + "/snapshot.db")[.size] as? Int) ?? 0
            #expect(size > 32 && size % 512 == 32, "etcd's shape: pages plus the appended SHA-256 (\(size) bytes)")
            let listed = try await project.run(["backup", "list", "demo", "--json"])
            #expect((project.json(listed)["sets"] as? [[String: Any]])?.first?["complete"] as? Bool == true, "\(listed.stdout)")
            let verified = try await project.run(["backup", "verify", "demo"])
            #expect(verified.status == 0 && verified.stdout.contains("appended SHA-256 matches"), "\(verified.stdout)\(verified.stderr)")

            for index in 1...50 { _ = try await project.kubectl(["delete", "configmap", "dr-\(index)"]) }
            #expect(try await configMaps(project).isEmpty)

            // A healthy cluster: refused, and not one machine touched.
            let healthy = LabRecordFile.now()
            let refused = try await project.run(["restore", "demo", "--from", "latest", "--yes"])
            #expect(refused.status == 3, "\(refused.stderr)")
            #expect(refused.stderr.contains("etcd has quorum"))
            let untouched = try LabRecordFile(stateDirectory: project.state)
            for node in Self.controlPlanes { #expect(untouched.boots(of: node, since: healthy) == 0) }

            let broken = try await project.run(["lab", "break-etcd", "demo"])
            #expect(broken.status == 0 && broken.stdout.contains("cp1, cp2, cp3"), "\(broken.stdout)\(broken.stderr)")
            let start = LabRecordFile.now()
            let restored = try await project.run(["restore", "demo", "--from", "latest", "--yes"])
            #expect(restored.status == 0, "\(restored.stderr)")
            #expect(try await etcdMembers(project) == 3)
            #expect(try await configMaps(project).count == 50, "the ConfigMaps the backup held are back")
            #expect(try await kubeSystemUID(project) == uid, "the same cluster: kube-system keeps its UID")
            #expect(try String(contentsOfFile: project.state + "/secrets.yaml", encoding: .utf8) == bundleBefore, "the cluster ID and secrets are unchanged")
            let bootstraps = try recoveries(project, since: start)
            #expect(bootstraps.count == 1 && bootstraps.first?.detail?.contains("recovered from a snapshot") == true, "\(bootstraps)")
            let record = try LabRecordFile(stateDirectory: project.state)
            for node in Self.controlPlanes { #expect(record.boots(of: node, since: start) == 1, "\(node) rebooted once, for its EPHEMERAL wipe") }

            // A new laptop: an empty state directory rebuilt from the bucket, and status works.
            let fresh = project.dir + "/state-new"
            let rebuilt = try await CLI.run(["restore", "demo", "--state-only", "--from", "latest", "--state-dir", fresh], cwd: project.dir)
            #expect(rebuilt.status == 0, "\(rebuilt.stderr)")
            #expect(try String(contentsOfFile: fresh + "/secrets.yaml", encoding: .utf8) == bundleBefore)
            let mode = try FileManager.default.attributesOfItem(atPath: fresh + "/secrets.yaml")[.posixPermissions] as? Int
            #expect(mode == 0o600)
            let status = try await CLI.run(["status", "demo", "--json", "--state-dir", fresh], cwd: project.dir)
            #expect(status.status == 0, "\(status.stderr)")
            let nodes = project.json(status)["nodes"] as? [[String: Any]] ?? []
            #expect(nodes.filter { $0["etcdMember"] as? Bool == true }.count == 3, "the new state directory reads the cluster: \(status.stdout.prefix(400))")
            let again = try await CLI.run(["restore", "demo", "--state-only", "--from", "latest", "--state-dir", fresh], cwd: project.dir)
            #expect(again.status == 3, "a bundle is never replaced")
            lab.signal(SIGINT)
            _ = try await lab.finish(timeout: .seconds(30))
        }
    }

    /// A cron host holding only an `etcd-backup` talosconfig (Talos' os:etcd:backup) and no bundle:
    /// its set holds the snapshot alone (its manifest with etcd's members and revision), `--state-only` passes over it for the newest set with the
    /// bundle, and a disaster recovery from it restores the cluster (identified by its OS CA).
    @Test(.timeLimit(.minutes(6))) func aHostWithOnlyTheEtcdBackupRoleBacksUpTheSnapshot() async throws {
        try await DemoLabLock.exclusive {
            let moto = try await MotoServer()
            defer { Task { await moto.stop() } }
            try await BackupProject.makeBucket(moto.endpoint, "demo-backups")
            let project = try await BackupProject(endpoint: moto.endpoint, keepLast: 5).project
            let lab = try await project.serve()
            defer { lab.signal(SIGINT) }
            #expect(try await project.run(["up", "demo"]).status == 0)
            try await createConfigMaps(project)
            let loaded = try await project.run(["lab", "load", "demo", "--count", "20", "--size", "100"])
            #expect(loaded.status == 0 && loaded.stdout.contains("20 ConfigMaps"), "\(loaded.stdout)\(loaded.stderr)")
            #expect(try await loadedConfigMaps(project) == 20, "lab load writes into etcd, where kubectl reads")
            #expect(try await project.run(["backup", "demo"]).status == 0)
            let full = try await BackupProject.sets(moto.endpoint, "demo-backups")

            let talosconfig = project.dir + "/backup.talosconfig"
            let made = try await project.run(["talosconfig", "demo", "--role", "etcd-backup", "--output", talosconfig])
            #expect(made.status == 0, "\(made.stderr)")
            let pem = try await Subprocess.run(["python3", "-c", """
                import base64, re
                text = open("\(talosconfig)").read()
                print(base64.b64decode(re.search(r"crt: (\\S+)", text).group(1)).decode())
                """])
            let subject = try await Subprocess.run(["sh", "-c", "openssl x509 -noout -subject"], stdin: pem.stdout)
            #expect(subject.stdout.contains("O=os:etcd:backup") || subject.stdout.contains("O = os:etcd:backup"), "\(subject.stdout)\(subject.stderr)")

            let cron = project.dir + "/cron-host"
            let taken = try await CLI.run(["backup", "demo", "--talosconfig", talosconfig, "--state-dir", cron], cwd: project.dir)
            #expect(taken.status == 0, "\(taken.stderr.suffix(800))")
            #expect(!FileManager.default.fileExists(atPath: cron + "/secrets.yaml"), "the cron host never had the bundle")
            let sets = try await BackupProject.sets(moto.endpoint, "demo-backups")
            let snapshotOnly = sets.first ?? ""
            #expect(sets.count == 2 && sets.last == full.first)
            // os:etcd:backup may also read etcd's members and status (Talos' RBAC table): the manifest has them.
            let manifest = try await BackupProject.boto3(moto.endpoint, bucket: "demo-backups",
                                                         "print(s3.get_object(Bucket=bucket, Key='backups/\(snapshotOnly)/manifest.json')['Body'].read().decode())")
            let fields = try JSONSerialization.jsonObject(with: Data(manifest.stdout.utf8)) as? [String: Any]
            #expect(fields?["etcdMembers"] as? Int == 3 && fields?["etcdRevision"] != nil, "\(manifest.stdout)\(manifest.stderr)")
            let keys = try await BackupProject.keys(moto.endpoint, "demo-backups").filter { $0.hasPrefix("backups/\(snapshotOnly)/") }
            #expect(keys.sorted() == ["backups/\(snapshotOnly)/etcd.snapshot.age", "backups/\(snapshotOnly)/manifest.json"], "\(keys)")
            let listed = try await project.run(["backup", "list", "demo"])
            #expect(listed.stdout.contains("snapshot only"), "\(listed.stdout)")
            let verified = try await project.run(["backup", "verify", "demo", snapshotOnly])
            #expect(verified.status == 0, "\(verified.stderr)")

            let fresh = project.dir + "/state-new"
            let rebuilt = try await CLI.run(["restore", "demo", "--state-only", "--from", "latest", "--state-dir", fresh], cwd: project.dir)
            #expect(rebuilt.status == 0 && rebuilt.stdout.contains(full.first ?? "?"), "the newest set with the bundle: \(rebuilt.stdout)\(rebuilt.stderr)")

            #expect(try await project.run(["lab", "break-etcd", "demo"]).status == 0)
            let restored = try await project.run(["restore", "demo", "--from", snapshotOnly, "--yes"])
            #expect(restored.status == 0, "\(restored.stderr.suffix(800))")
            #expect(try await etcdMembers(project) == 3)
            #expect(try await configMaps(project).count == 50)
            #expect(try await loadedConfigMaps(project) == 20, "the loaded keys came back with the snapshot")
            lab.signal(SIGINT)
            _ = try await lab.finish(timeout: .seconds(30))
        }
    }

    /// `kill -9` of the restore at three points (a wipe recorded, the wipes done, the recovery
    /// bootstrapped), each followed by the same command: the same end state, one bootstrap.
    @Test(.timeLimit(.minutes(6))) func aRestoreKilledAtThreePointsResumesAndBootstrapsOnce() async throws {
        try await DemoLabLock.exclusive {
            let moto = try await MotoServer()
            defer { Task { await moto.stop() } }
            try await BackupProject.makeBucket(moto.endpoint, "demo-backups")
            let project = try await BackupProject(endpoint: moto.endpoint).project
            let lab = try await project.serve()
            defer { lab.signal(SIGINT) }
            #expect(try await project.run(["up", "demo"]).status == 0)
            try await createConfigMaps(project)
            let uid = try await kubeSystemUID(project)
            #expect(try await project.run(["backup", "demo"]).status == 0)
            #expect(try await project.run(["lab", "break-etcd", "demo"]).status == 0)
            let start = LabRecordFile.now()
            let points: [(String, (String) -> Bool)] = [
                ("cp1's wipe recorded", { $0.contains("wipe-etcd@cp1") && $0.contains("recorded\"") }),
                ("cp3 back", { $0.contains("cp3: back") }),
                ("bootstrapped", { $0.contains("etcd bootstrapped from the snapshot") }),
            ]
            var reached: [String] = []
            for (name, matches) in points {
                let run = try project.running(["restore", "demo", "--from", "latest", "--yes", "--json"])
                let hit = try await run.waitFor(timeout: .seconds(120)) { lines in lines.contains(where: matches) }
                run.signal(SIGKILL)
                _ = try? await run.finish(timeout: .seconds(30))
                if hit { reached.append(name) }
            }
            #expect(reached.count == points.count, "every run was killed at its point: \(reached)")
            let last = try await project.run(["restore", "demo", "--from", "latest", "--yes"])
            #expect(last.status == 0, "\(last.stderr)")
            #expect(try recoveries(project, since: start).count == 1, "one bootstrap across the kills")
            let record = try LabRecordFile(stateDirectory: project.state)
            for node in Self.controlPlanes { #expect(record.boots(of: node, since: start) == 1, "\(node) wiped once across the kills") }
            #expect(try await etcdMembers(project) == 3)
            #expect(try await configMaps(project).count == 50)
            #expect(try await kubeSystemUID(project) == uid)
            let done = try await project.run(["restore", "demo", "--from", "latest", "--yes"])
            #expect(done.status == 3, "finished: etcd has quorum again, a further restore is refused")
            lab.signal(SIGINT)
            _ = try await lab.finish(timeout: .seconds(30))
        }
    }

    /// Seven backups with keep-last 3 leave exactly the three newest; a backup whose upload fails
    /// deletes nothing (retention never runs) and leaves no object of its own.
    @Test(.timeLimit(.minutes(6))) func retentionKeepsTheNewestAndAFailedUploadDeletesNothing() async throws {
        try await DemoLabLock.exclusive {
            let moto = try await MotoServer()
            defer { Task { await moto.stop() } }
            try await BackupProject.makeBucket(moto.endpoint, "demo-backups")
            let proxy = try await S3Proxy(upstream: moto.endpoint, failPut: "/configs/w1.yaml.age")
            defer { Task { await proxy.stop() } }
            let backup = try await BackupProject(endpoint: moto.endpoint, keepLast: 3)
            let project = backup.project
            #expect(try await project.run(["up", "demo"]).status == 0)
            var taken: [String] = []
            for _ in 1...7 {
                let run = try await project.run(["backup", "demo", "--json"])
                #expect(run.status == 0, "\(run.stderr)")
                if let range = run.stdout.range(of: #"backup set [0-9]{13}-[0-9T]+Z"#, options: .regularExpression) {
                    taken.append(String(run.stdout[range].dropFirst("backup set ".count)))
                }
            }
            #expect(taken.count == 7, "\(taken)")
            let kept = try await BackupProject.sets(moto.endpoint, "demo-backups")
            #expect(kept == Array(taken.suffix(3).reversed()), "the three newest, newest first: \(kept) of \(taken)")

            // keepLast 1 now: were retention to run after the failed upload, two sets would go.
            try project.edit { $0.replacingOccurrences(of: "endpoint: \(moto.endpoint.absoluteString)", with: "endpoint: \(proxy.endpoint.absoluteString)")
                .replacingOccurrences(of: "keepLast: 3", with: "keepLast: 1") }
            let failed = try await project.run(["backup", "demo"], timeout: .seconds(120))
            #expect(failed.status == 1, "\(failed.stderr)")
            #expect(failed.stderr.contains("InternalError"), "S3's error code is shown: \(failed.stderr.suffix(600))")
            #expect(try await BackupProject.sets(moto.endpoint, "demo-backups") == kept, "nothing deleted, nothing of the failed set left")
        }
    }

    /// A bucket that does not exist, a wrong secret key, an endpoint that does not answer: exit 1
    /// with S3's error decoded, the secret nowhere in the output, nothing left in the bucket.
    @Test(.timeLimit(.minutes(6))) func badStoresFailWithTheirErrorAndLeaveNothing() async throws {
        try await DemoLabLock.exclusive {
            let moto = try await MotoServer(authenticatedAfter: 3)
            defer { Task { await moto.stop() } }
            let parts = try await moto.makeUser(allowing: "s3:*", bucket: "demo-backups")
            let wrongSecret = parts.secretAccessKey + "x"
            let backup = try await BackupProject(endpoint: moto.endpoint, secret: wrongSecret, accessKey: parts.accessKeyID)
            let project = backup.project
            #expect(try await project.run(["up", "demo"]).status == 0)

            let wrong = try await project.run(["backup", "demo"])
            #expect(wrong.status == 1)
            #expect(wrong.stderr.contains("SignatureDoesNotMatch") && wrong.stderr.contains("secretAccessKey"), "\(wrong.stderr.suffix(600))")
            #expect(!(wrong.stdout + wrong.stderr).contains(wrongSecret), "the secret never appears")

            try PrivateFile.write(Array(parts.secretAccessKey.utf8), to: project.dir + "/lab/s3-secret-key")
            try project.edit { $0.replacingOccurrences(of: "bucket: demo-backups", with: "bucket: no-such-bucket") }
            let missing = try await project.run(["backup", "demo"])
            #expect(missing.status == 1)
            #expect(missing.stderr.contains("NoSuchBucket") && missing.stderr.contains("backup.bucket"), "\(missing.stderr.suffix(600))")
            #expect(!(missing.stdout + missing.stderr).contains(parts.secretAccessKey))

            try project.edit { $0.replacingOccurrences(of: "endpoint: \(moto.endpoint.absoluteString)", with: "endpoint: http://127.0.0.1:1/") }
            let unreachable = try await project.run(["backup", "demo"], timeout: .seconds(150))
            #expect(unreachable.status == 1)
            #expect(unreachable.stderr.contains("unreachable") && unreachable.stderr.contains("backup.endpoint"), "\(unreachable.stderr.suffix(600))")

            let left = try await Subprocess.run(["python3", "-c", """
                import boto3
                s3 = boto3.client("s3", endpoint_url="\(moto.endpoint.absoluteString)", region_name="us-east-1", aws_access_key_id="\(parts.accessKeyID)", aws_secret_access_key="\(parts.secretAccessKey)")
                print(len(s3.list_objects_v2(Bucket="demo-backups").get("Contents", [])), len(s3.list_multipart_uploads(Bucket="demo-backups").get("Uploads", [])))
                """])
            #expect(left.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0 0", "no object and no open upload left: \(left.stdout)\(left.stderr)")
        }
    }

    @Test func scheduleListsTheBackupBesideTheGPUJobs() async throws {
        let moto = URL(string: "http://127.0.0.1:5999/")!
        let project = try await BackupProject(endpoint: moto).project
        let cron = try await project.run(["schedule", "demo"])
        #expect(cron.status == 0, "\(cron.stderr)")
        let lines = cron.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("0 3 * * * ") && $0.contains(" backup demo --json") }, "\(cron.stdout)")
        #expect(lines.contains { $0.hasPrefix("*/15 * * * * ") && $0.contains(" gpu sweep demo --json") })
        let systemd = try await project.run(["schedule", "demo", "--systemd"])
        #expect(systemd.stdout.contains("provision-backup-demo.timer") && systemd.stdout.contains("OnCalendar=*-*-* 03:00:00"), "\(systemd.stdout)")
        let gpu = try await project.run(["gpu", "schedule", "demo"])
        #expect(!gpu.stdout.contains("backup demo"), "`gpu schedule` keeps to the GPU jobs")
    }
}
