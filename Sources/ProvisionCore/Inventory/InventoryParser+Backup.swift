import Foundation

extension InventoryParser {
    func parseBackup(_ r: MappingReader, secrets: SecretsSpec?) -> BackupSpec? {
        let endpoint = r.parsed("endpoint", required: true, expected: "an http(s) URL such as https://ACCOUNT.r2.cloudflarestorage.com") { text -> URL? in
            guard let url = URL(string: text), ["http", "https"].contains(url.scheme ?? ""), url.host?.isEmpty == false else { return nil }
            return url
        }
        let region = r.string("region") ?? Located("auto", at: r.location)
        let bucket = r.string("bucket", required: true, hint: "name the bucket backups go to")
        let prefix = r.string("prefix")?.value.trimmingCharacters(in: CharacterSet(charactersIn: "/")) ?? ""
        let pathStyle = r.bool("pathStyle")?.value ?? false
        let accessKeyID = credential(r, "accessKeyID", required: true)
        let secretAccessKey = credential(r, "secretAccessKey", required: true)
        var recipients = r.stringList("recipients") ?? []
        let identity = credential(r, "identity") ?? secrets?.identity
        var keepLast = 7, keepDaily = 14
        if let retention = r.mapping("retention") {
            keepLast = retention.int("keepLast", range: 1...1000)?.value ?? keepLast
            keepDaily = retention.int("keepDaily", range: 0...3650)?.value ?? keepDaily
            retention.finish()
        }
        let schedule = r.string("schedule")
        r.finish()
        if let bucket, let problem = BackupSpec.bucketProblem(bucket.value) {
            collector.error("backup.bucket", at: bucket.location, "bucket `\(bucket.value)` \(problem)",
                            fix: "use the bucket's name as the store shows it (S3 naming rules: lower-case, 3 to 63 characters)")
        }
        if let schedule, !Self.isCron(schedule.value) {
            collector.error("value.invalid", at: schedule.location, "`backup.schedule` is not a five-field cron expression",
                            fix: "write e.g. \"0 3 * * *\" (every day at 03:00)")
        }
        for recipient in recipients where !recipient.value.hasPrefix("age1") || recipient.value.count < 60 {
            collector.error("backup.recipient", at: recipient.location, "`\(recipient.value)` is not an age X25519 recipient",
                            fix: "paste the public key printed by `age-keygen -y IDENTITY` (it starts with age1)")
        }
        if recipients.isEmpty { recipients = secrets?.recipients ?? [] }
        if recipients.isEmpty {
            collector.error("backup.recipients", at: r.location, "`backup` has no age recipients, and `secrets` lists none to share",
                            fix: "add `recipients: [age1…]` to `backup` (a snapshot holds every Kubernetes Secret; it is never stored in clear)")
        }
        guard let endpoint, let bucket, let accessKeyID, let secretAccessKey else { return nil }
        return BackupSpec(endpoint: endpoint, region: region, bucket: bucket, prefix: prefix, pathStyle: pathStyle,
                          accessKeyID: accessKeyID, secretAccessKey: secretAccessKey, recipients: recipients, identity: identity,
                          keepLast: keepLast, keepDaily: keepDaily, schedule: schedule, location: r.location)
    }

    func parseState(_ r: MappingReader, hasBackup: Bool) -> StateSpec? {
        let backend = r.choice("backend", StateSpec.Backend.allCases.map(\.rawValue), required: true)
        let ttl = duration(r, "lockTTL")
        r.finish()
        guard let backend, let kind = StateSpec.Backend(rawValue: backend.value) else { return nil }
        if kind == .s3, !hasBackup {
            collector.error("state.no-bucket", at: backend.location, "`state.backend: s3` keeps the state in the `backup:` bucket, and there is no `backup:` section",
                            fix: "add a `backup:` section naming the S3-compatible store, or use `backend: local`")
        }
        if let ttl, ttl.value < .seconds(5) {
            collector.error("value.invalid", at: ttl.location, "`state.lockTTL` is under 5s; a slow network would lose the lease between heartbeats",
                            fix: "write 2m (the default) or at least 5s")
        }
        return StateSpec(backend: Located(kind, at: backend.location), lockTTL: ttl?.value ?? .seconds(120), location: r.location)
    }
}
