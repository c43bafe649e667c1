import Foundation

/// `backup:`: the S3-compatible store etcd snapshots, the secrets bundle and the rendered configs
/// go to (Cloudflare R2, MinIO, Backblaze B2, AWS S3), age-encrypted to `recipients`, how many sets
/// are kept, and when `provision schedule` runs it.
public struct BackupSpec: Sendable {
    public var endpoint: Located<URL>
    public var region: Located<String>
    public var bucket: Located<String>
    /// Key prefix inside the bucket, without leading or trailing slash (may be empty).
    public var prefix: String
    /// `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key` (MinIO, most self-hosted stores).
    public var pathStyle: Bool
    public var accessKeyID: Located<CredentialReference>
    public var secretAccessKey: Located<CredentialReference>
    /// Who can decrypt a backup: the secrets' recipients unless given (a snapshot holds every Secret).
    public var recipients: [Located<String>]
    /// The age identity that decrypts backups (verify, restore): the secrets' identity unless given.
    public var identity: Located<CredentialReference>?
    /// Keep the newest `keepLast` sets, and the newest set of each of the last `keepDaily` days.
    public var keepLast: Int
    public var keepDaily: Int
    /// Five-field cron for `provision schedule`; nil: no scheduled backup.
    public var schedule: Located<String>?
    public var location: SourceLocation

    /// S3's rules for bucket names (which the S3-compatible stores share): 3 to 63 characters of
    /// lower-case letters, digits, dots and hyphens, a letter or digit at each end, no `..`, not an
    /// IPv4 address, none of the reserved prefixes and suffixes. Nil when valid, else the rule broken.
    public static func bucketProblem(_ name: String) -> String? {
        if name.count < 3 || name.count > 63 { return "is \(name.count) characters long; a bucket name has 3 to 63" }
        if let bad = name.first(where: { !("a"..."z").contains($0) && !("0"..."9").contains($0) && $0 != "." && $0 != "-" }) {
            return "contains `\(bad)`; only lower-case letters, digits, dots and hyphens are allowed"
        }
        guard let first = name.first, let last = name.last, first.isLetter || first.isNumber, last.isLetter || last.isNumber else {
            return "must begin and end with a letter or digit"
        }
        if name.contains("..") { return "has two dots in a row" }
        if IPv4Address(name) != nil { return "is formatted as an IP address" }
        for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] where name.hasPrefix(prefix) { return "begins with the reserved `\(prefix)`" }
        for suffix in ["-s3alias", "--ol-s3", ".mrap", "--x-s3"] where name.hasSuffix(suffix) { return "ends with the reserved `\(suffix)`" }
        return nil
    }
}

/// `state:`: where the state that must outlive one machine lives. `local` (the default) keeps the
/// state directory only; `s3` also keeps the inventory lock (a lease object), the secrets bundle and
/// each run's journal in the `backup:` bucket, so a second host (cron on a NAS) can run against the
/// same cluster and two hosts never run at once.
public struct StateSpec: Sendable {
    public enum Backend: String, Sendable, CaseIterable { case local, s3 }
    public var backend: Located<Backend>
    /// A lease whose heartbeat is older than this is a dead holder's and may be taken over.
    public var lockTTL: Duration
    public var location: SourceLocation
}
