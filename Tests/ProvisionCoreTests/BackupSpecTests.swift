import Foundation
import Testing
import TestSupport
@testable import ProvisionCore

/// The inventory's `backup:` section (issue 15's store): parsed, defaulted and validated like the rest.
@Suite struct BackupSpecTests {
    @Test func theHomelabBacksUpToR2WithItsSecretsRecipients() throws {
        let (inventory, _) = try InventoryParser.load(path: repositoryRoot + "/inventories/homelab.yaml")
        let backup = try #require(inventory.backup)
        #expect(backup.endpoint.value.host == "0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com")
        #expect(backup.bucket.value == "homelab-backups" && backup.prefix == "talos/homelab" && backup.region.value == "auto")
        #expect(backup.keepLast == 7 && backup.keepDaily == 14 && backup.schedule?.value == "0 3 * * *")
        #expect(backup.recipients.map { $0.value } == inventory.secrets.recipients.map { $0.value }, "the secrets' recipients by default")
        #expect(inventory.credentialReferences.contains { $0.value == backup.secretAccessKey.value }, "resolved and redacted with the others")
        let (demo, _) = try InventoryParser.load(path: repositoryRoot + "/inventories/demo.yaml")
        #expect(demo.backup == nil, "optional")
    }

    @Test(arguments: [
        ("homelab-backups", nil), ("a.b-c", nil), ("r2", "3 to 63"), (String(repeating: "a", count: 64), "3 to 63"),
        ("Homelab", "`H`"), ("bad_name", "`_`"), ("-lead", "begin and end"), ("trail.", "begin and end"),
        ("two..dots", "two dots"), ("192.168.1.10", "IP address"), ("xn--punycode", "reserved"), ("mine-s3alias", "reserved"),
    ] as [(String, String?)])
    func bucketNamesFollowS3Rules(_ name: String, _ problem: String?) {
        let found = BackupSpec.bucketProblem(name)
        if let problem { #expect(found?.contains(problem) == true, "\(name): \(found ?? "accepted")") } else { #expect(found == nil, "\(name): \(found ?? "")") }
    }
}
