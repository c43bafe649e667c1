import Testing
@testable import ProvisionCore

/// `~` in inventory paths and `file:` references is `$HOME`, as shells, age and talosctl read it.
@Suite struct PathTextTests {
    @Test func tildeIsHOME() {
        let environment = ["HOME": "/tmp/someone"]
        #expect(PathText.resolve("~/.config/provision/age.key", relativeTo: "/work", environment: environment) == "/tmp/someone/.config/provision/age.key")
        #expect(PathText.resolve("~", relativeTo: "/work", environment: environment) == "/tmp/someone")
        #expect(PathText.resolve("~/x", relativeTo: "/work", environment: ["HOME": "/tmp/someone/"]) == "/tmp/someone/x")
        #expect(CredentialReference("file:~/key")?.filePath(relativeTo: "/work", environment: environment) == "/tmp/someone/key")
    }

    @Test func otherPathsAreAbsoluteOrRelativeToTheFolder() {
        #expect(PathText.resolve("/etc/key", relativeTo: "/work", environment: [:]) == "/etc/key")
        #expect(PathText.resolve("../lab/key", relativeTo: "/work/inventories", environment: [:]) == "/work/lab/key")
        #expect(PathText.resolve("~other/key", relativeTo: "/work", environment: ["HOME": "/h"]) == "/work/~other/key", "only ~ and ~/ expand")
    }
}
