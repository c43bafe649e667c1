import Foundation
import Testing
import TalosKit
import ProvisionCore
import TestSupport

/// `provision secrets …` and `provision talosconfig` against the real age and openssl CLIs.
@Suite struct SecretsCommandTests {
    func sh(_ command: String) async throws -> Subprocess.Result { try await Subprocess.run(["sh", "-c", command]) }

    /// A scratch project whose inventory encrypts the bundle with a fresh age key.
    func ageProject() async throws -> (dir: String, key: String) {
        let dir = try CLI.project()
        let keygen = try await sh("age-keygen -o '\(dir)/age.key' 2>/dev/null && age-keygen -y '\(dir)/age.key'")
        #expect(keygen.status == 0, "age must be installed by scripts/bootstrap")
        let recipient = keygen.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let path = dir + "/inventories/lab.yaml"
        let text = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(
            of: "  encryption: plaintext\n", with: "  encryption: age\n  recipients: [\(recipient)]\n  identity: file:../age.key\n")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return (dir, dir + "/age.key")
    }

    @Test func initWritesAnAgeFileTheAgeCLIDecryptsAndNeverOverwrites() async throws {
        let (dir, key) = try await ageProject()
        let state = dir + "/state"
        let first = try await CLI.run(["secrets", "init", "lab", "--state-dir", state], cwd: dir)
        #expect(first.status == 0, "\(first.stderr)")
        let file = state + "/secrets.age"
        #expect(try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int == 0o600)
        let before = try Data(contentsOf: URL(fileURLWithPath: file))
        let plain = try await sh("age -d -i '\(key)' '\(file)'")
        #expect(plain.status == 0, "\(plain.stderr)")
        let bundle = try SecretsBundle.parse(text: plain.stdout, file: "decrypted")
        let again = try await CLI.run(["secrets", "init", "lab", "--state-dir", state], cwd: dir)
        #expect(again.status == 0)
        #expect(again.stderr.contains("already exists"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: file)) == before)
        // Nothing printed by init, show or talosconfig contains any secret of the bundle.
        let show = try await CLI.run(["secrets", "show", "lab", "--state-dir", state], cwd: dir)
        let json = try await CLI.run(["secrets", "show", "lab", "--json", "--state-dir", state], cwd: dir)
        let tc = try await CLI.run(["talosconfig", "lab", "--state-dir", state, "--output", dir + "/talosconfig"], cwd: dir)
        let printed = [first, again, show, json, tc].map { $0.stdout + $0.stderr }.joined()
        for secret in bundle.secretValues { #expect(!printed.contains(secret)) }
        #expect(show.stdout.contains("Ed25519, subject O=talos"))
        #expect(show.stdout.contains("RSA 4096 key"))
    }

    /// `file:~/…` means `$HOME/…`, as in a shell, `age` and `talosctl`: the identity is read from the
    /// HOME the command runs with, not from the password database's home directory.
    @Test func tildeInAFileReferenceIsHOME() async throws {
        let (dir, key) = try await ageProject()
        let home = temporaryDirectory()
        try FileManager.default.createDirectory(atPath: home + "/.config/provision", withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: key, toPath: home + "/.config/provision/age.key")
        let path = dir + "/inventories/lab.yaml"
        let text = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: "identity: file:../age.key", with: "identity: file:~/.config/provision/age.key")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let state = dir + "/state"
        let created = try await CLI.run(["secrets", "init", "lab", "--state-dir", state], cwd: dir, environment: ["HOME": home])
        #expect(created.status == 0, "\(created.stderr)")
        let shown = try await CLI.run(["secrets", "show", "lab", "--state-dir", state], cwd: dir, environment: ["HOME": home])
        #expect(shown.status == 0, "the identity under $HOME decrypts the bundle: \(shown.stderr)")
        let elsewhere = try await CLI.run(["secrets", "show", "lab", "--state-dir", state], cwd: dir, environment: ["HOME": temporaryDirectory()])
        #expect(elsewhere.status != 0 && elsewhere.stderr.contains(".config/provision/age.key"), "another HOME has no identity: \(elsewhere.stderr)")
    }

    @Test func aBundleEncryptedByTheAgeCLIIsRead() async throws {
        let (dir, _) = try await ageProject()
        let state = dir + "/state"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let recipient = try await sh("age-keygen -y '\(dir)/age.key'").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try SecretsBundle.generate().yaml.write(toFile: dir + "/plain.yaml", atomically: true, encoding: .utf8)
        let encrypted = try await sh("age -e -r \(recipient) -o '\(state)/secrets.age' '\(dir)/plain.yaml'")
        #expect(encrypted.status == 0)
        let show = try await CLI.run(["secrets", "show", "lab", "--state-dir", state], cwd: dir)
        #expect(show.status == 0, "\(show.stderr)")
        #expect(show.stdout.contains("ECDSA P-256, subject O=etcd"))
    }

    @Test func wrongIdentityIsAClearError() async throws {
        let (dir, key) = try await ageProject()
        let state = dir + "/state"
        _ = try await CLI.run(["secrets", "init", "lab", "--state-dir", state], cwd: dir)
        _ = try await sh("age-keygen -o '\(key)' 2>/dev/null || (rm -f '\(key)' && age-keygen -o '\(key)' 2>/dev/null)")
        let show = try await CLI.run(["secrets", "show", "lab", "--state-dir", state], cwd: dir)
        #expect(show.status == 64)
        #expect(show.stderr.contains("cannot be decrypted"))
        #expect(show.stderr.contains("wrong key?"))
    }

    /// A bundle as talosctl writes it, made here with openssl (an independent implementation).
    func talosctlStyleBundle(_ dir: String) async throws -> String {
        let script = """
            set -e; cd '\(dir)'
            openssl genpkey -algorithm ed25519 -out os.pkcs8 2>/dev/null
            sed 's/PRIVATE KEY/ED25519 PRIVATE KEY/' os.pkcs8 > os.key
            for n in etcd k8s agg; do openssl ecparam -name prime256v1 -genkey -noout -out $n.key; done
            openssl genrsa -traditional -out sa.key 2048 2>/dev/null
            ca() { openssl req -x509 -new -key $1 -subj "$2" -days 3650 -addext basicConstraints=critical,CA:TRUE \
              -addext keyUsage=critical,keyCertSign,digitalSignature -addext extendedKeyUsage=serverAuth,clientAuth -out $3 2>/dev/null; }
            ca os.pkcs8 /O=talos os.crt; ca etcd.key /O=etcd etcd.crt; ca k8s.key /O=kubernetes k8s.crt; ca agg.key /CN=front-proxy agg.crt
            b() { base64 -w0 $1; }
            cat > secrets.yaml <<YAML
            cluster:
                id: R3JlYXRfQ2x1c3Rlcl9JRF9mb3JfdGVzdGluZ19vbmx5IQ==
                secret: c2VjcmV0LWtleS1vZi1leGFjdGx5LTMyLWJ5dGVzLSE=
            secrets:
                bootstraptoken: abc123.0123456789abcdef
                secretboxencryptionsecret: c2VjcmV0Ym94LWtleS1vZi1leGFjdGx5LTMyLWJ5dGU=
            trustdinfo:
                token: xyz789.fedcba9876543210
            certs:
                etcd:
                    crt: $(b etcd.crt)
                    key: $(b etcd.key)
                k8s:
                    crt: $(b k8s.crt)
                    key: $(b k8s.key)
                k8saggregator:
                    crt: $(b agg.crt)
                    key: $(b agg.key)
                k8sserviceaccount:
                    key: $(b sa.key)
                os:
                    crt: $(b os.crt)
                    key: $(b os.key)
            YAML
            """
        let result = try await sh(script)
        #expect(result.status == 0, "\(result.stderr)")
        return dir + "/secrets.yaml"
    }

    @Test func importAdoptsATalosctlBundleUnchanged() async throws {
        let dir = try CLI.project()
        let source = try await talosctlStyleBundle(dir)
        let state = dir + "/state"
        let result = try await CLI.run(["secrets", "import", "lab", source, "--state-dir", state], cwd: dir)
        #expect(result.status == 0, "\(result.stderr)")
        let original = try SecretsBundle.load(path: source)
        let stored = try SecretsBundle.load(path: state + "/secrets.yaml")
        #expect(stored == original, "every certificate, key, token and id is kept as it was")
        #expect(result.stdout.contains("RSA 2048 key"))
        let again = try await CLI.run(["secrets", "import", "lab", source, "--state-dir", state], cwd: dir)
        #expect(again.status == 3)
        #expect(again.stderr.contains("never overwritten"))
        // The talosconfig minted from the adopted OS CA verifies against it.
        let tc = dir + "/talosconfig"
        let write = try await CLI.run(["talosconfig", "lab", "--state-dir", state, "--output", tc, "--role", "operator"], cwd: dir)
        #expect(write.status == 0, "\(write.stderr)")
        #expect(try FileManager.default.attributesOfItem(atPath: tc)[.posixPermissions] as? Int == 0o600)
        let verify = try await sh("""
            cd '\(dir)'; grep '        crt:' talosconfig | awk '{print $2}' | base64 -d > client.pem
            openssl verify -CAfile os.crt -purpose sslclient client.pem && openssl x509 -in client.pem -noout -subject
            """)
        #expect(verify.stdout.contains("client.pem: OK"), "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.contains("O = os:operator"))
    }

    @Test(arguments: ["truncated", "bad-key", "bad-token", "not-yaml"])
    func corruptBundlesAreRefusedNamingTheFieldAndNothingIsWritten(_ damage: String) async throws {
        let dir = try CLI.project()
        let source = try await talosctlStyleBundle(dir)
        var text = try String(contentsOfFile: source, encoding: .utf8)
        switch damage {
        case "truncated": text = String(text.prefix(text.count / 2))
        case "bad-key":
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
                line.hasPrefix("        key: ") && line.contains("LS0t") && line.count > 60 ? Substring(line.dropLast(40)) : line
            }
            text = lines.joined(separator: "\n")
        case "bad-token": text = text.replacingOccurrences(of: "abc123.0123456789abcdef", with: "ABC.def")
        default: text = "\u{7}\u{1}binary"
        }
        try text.write(toFile: source, atomically: true, encoding: .utf8)
        let state = dir + "/state"
        let result = try await CLI.run(["secrets", "import", "lab", source, "--state-dir", state], cwd: dir)
        #expect(result.status == 64, "\(damage): \(result.stderr)")
        #expect(result.stderr.contains(source))
        #expect(!FileManager.default.fileExists(atPath: state + "/secrets.yaml"))
    }
}
