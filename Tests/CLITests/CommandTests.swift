import Foundation
import ProvisionCore
import Testing
import TestSupport

/// What users and scripts see from each command: exit codes, JSON shapes, messages.
@Suite struct CommandTests {
    @Test func validateHomelabPasses() async throws {
        let result = try await CLI.run(["validate", "homelab"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("valid"))
        #expect(result.stdout.contains("3 control planes"))
        // A node in maintenance has the address DHCP gives it: validate names what to reserve.
        #expect(result.stdout.contains("reserve these addresses in your router's DHCP settings")
                && result.stdout.contains("mini01       a4:83:e7:30:00:61  ->  192.168.30.61"), "\(result.stdout)")
    }

    @Test func validateJSONListsDiagnosticsWithPositions() async throws {
        let file = repositoryRoot + "/Tests/Fixtures/bad-inventories/many-errors-at-once.yaml"
        let result = try await CLI.run(["validate", file, "--json"])
        #expect(result.status == 64)
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        #expect(object?["ok"] as? Bool == false)
        let diagnostics = object?["diagnostics"] as? [[String: Any]] ?? []
        #expect(diagnostics.count >= 3)
        #expect(diagnostics.allSatisfy { $0["line"] is Int && $0["column"] is Int && $0["key"] is String && $0["fix"] is String })
    }

    @Test func badInventoryExits64WithFileLineColumn() async throws {
        let file = repositoryRoot + "/Tests/Fixtures/bad-inventories/unknown-node-key.yaml"
        let result = try await CLI.run(["validate", file])
        #expect(result.status == 64)
        #expect(result.stderr.contains("\(file):46:5: error: unknown key `adress`"))
        #expect(result.stderr.contains("did you mean `address`"))
    }

    @Test(arguments: ["empty.yaml", "binary.yaml", "deep-nesting.yaml", "alias-bomb.yaml", "yaml-bad-indentation.yaml"])
    func brokenFilesExit64NeverCrash(_ name: String) async throws {
        let result = try await CLI.run(["validate", repositoryRoot + "/Tests/Fixtures/bad-inventories/" + name], timeout: .seconds(30))
        #expect(result.status == 64, "\(name): \(result.stderr)")
        #expect(result.stderr.contains("error:"))
    }

    @Test func unknownInventorySuggestsAName() async throws {
        let result = try await CLI.run(["validate", "homelb"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("did you mean `homelab`"))
    }

    @Test func planHomelabShowsTheGraphAndExitsTwo() async throws {
        let human = try await CLI.run(["plan", "homelab", "--graph", "--state-dir", FileManager.default.temporaryDirectory.path + "/plan-\(UUID())"])
        #expect(human.status == 2, "changes are pending on a fresh state: \(human.stderr)")
        #expect(human.stdout.contains("phase 1"))
        #expect(human.stdout.contains("critical path"))
        #expect(human.stdout.contains("bootstrap [talos.bootstrap]"))
        let json = try await CLI.run(["plan", "homelab", "--graph", "--json", "--state-dir", FileManager.default.temporaryDirectory.path + "/plan-\(UUID())"])
        #expect(json.status == 2)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let nodes = object?["nodes"] as? [[String: Any]] ?? []
        let edges = object?["edges"] as? [[String: String]] ?? []
        #expect(nodes.count == 39, "the steps of up.yaml over homelab, machine-preflight included")
        #expect(edges.contains { $0["from"] == "configured-cp@cp2" && $0["to"] == "bootstrap" })
        #expect(edges.contains { $0["from"] == "maintenance@mini01" && $0["to"] == "apply-config@mini01" })
        #expect(!edges.contains { $0["from"] == "configured-worker@mini01" && $0["to"] == "bootstrap" }, "bootstrap waits for control planes only")
        let critical = object?["criticalPath"] as? [String: Any]
        #expect((critical?["steps"] as? [String])?.last == "verify")
    }

    @Test func planSafeResetNeedsATarget() async throws {
        let without = try await CLI.run(["plan", "homelab", "--playbook", "safe-reset"])
        #expect(without.status == 64)
        #expect(without.stderr.contains("playbook.no-target"))
        let with = try await CLI.run(["plan", "homelab", "--graph", "--playbook", "safe-reset", "--target", "cp2", "--json"])
        #expect(with.status == 2)
        #expect(with.stdout.contains("reset@cp2"))
    }

    /// The newcomer's first command: the whole demo, in this process, from an empty state directory.
    /// (The limit covers waiting for the demo lab lock, which other demo tests hold for minutes.)
    @Test(.timeLimit(.minutes(8))) func upDemoBuildsTheSimulatedClusterEndToEnd() async throws {
        let state = FileManager.default.temporaryDirectory.path + "/up-demo-\(UUID())"
        let result = try await DemoLabLock.exclusive { try await CLI.run(["up", "demo", "--state-dir", state, "--json"], timeout: .seconds(150)) }
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        let applied = Set(CLI.events(lines, kind: "step.applied").compactMap { $0["step"] as? String })
        for step in ["bootstrap", "kubeconfig", "cilium", "foundation", "apply-config@mini01", "machine@mini01", "machine@cp1"] {
            #expect(applied.contains(step), "\(step) ran: \(applied.sorted())")
        }
        #expect(CLI.events(lines, kind: "step.failed").isEmpty)
        #expect(FileManager.default.fileExists(atPath: state + "/kubeconfig"))
        // As on Talos: before the bootstrap every control plane was booting with etcd waiting, none running.
        let before = try LabRecordFile(stateDirectory: state).beforeFirstBootstrap(["cp1", "cp2", "cp3"])
        for node in ["cp1", "cp2", "cp3"] {
            #expect(before?[node]?.stage == "booting" && before?[node]?.etcdWaiting == true, "\(node) before the bootstrap: \(String(describing: before?[node]))")
        }

        // The lab outlives the command: a second run finds everything in place and changes nothing.
        let again = try await DemoLabLock.exclusive { try await CLI.run(["up", "demo", "--state-dir", state, "--json"], timeout: .seconds(150)) }
        #expect(again.status == 0, "\(again.stderr)")
        #expect(CLI.events(again.stdout.split(separator: "\n").map(String.init), kind: "step.applied").isEmpty, "no mutating step on a converged lab")

        // `lab reset` forgets the twin; the next run builds it again.
        // Under the lab lock: a lab served by another test binds the demo's addresses, and reset refuses then.
        let reset = try await DemoLabLock.exclusive { try await CLI.run(["lab", "reset", "demo", "--state-dir", state]) }
        #expect(reset.status == 0, "\(reset.stderr)")
        #expect(!FileManager.default.fileExists(atPath: state + "/lab"))
        let token = try String(contentsOfFile: repositoryRoot + "/lab/onepassword-token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let uuid = "labdemo00000000000000000000000"
        for needle in [token, Data(token.utf8).base64EncodedString(), uuid] {
            #expect(!result.stdout.contains(needle) && !result.stderr.contains(needle), "a foundation secret reached the output")
            for case let file as String in FileManager.default.enumerator(atPath: state)! where file.hasPrefix("logs/") || file.hasPrefix("journal") {
                let text = String(decoding: FileManager.default.contents(atPath: state + "/" + file) ?? Data(), as: UTF8.self)
                #expect(!text.contains(needle), "\(file) holds a foundation secret")
            }
        }
    }

    @Test func gpuSchedulePrintsCrontabLinesAndSystemdTimersThatParse() async throws {
        let cron = try await CLI.run(["gpu", "schedule", "homelab"])
        #expect(cron.status == 0, "\(cron.stderr)")
        let lines = cron.stdout.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") }
        #expect(lines.contains { $0.hasPrefix("0 18 * * 5 cd ") && $0.contains("gpu up homelab/gpu --ttl 4h --json") }, "\(cron.stdout)")
        #expect(lines.contains { $0.hasPrefix("0 2 * * 1 cd ") && $0.contains("gpu down homelab/gpu --json") })
        #expect(lines.contains { $0.hasPrefix("*/15 * * * * cd ") && $0.contains("gpu sweep homelab --json") }, "a sweep backs up a missed down")
        let units = try await CLI.run(["gpu", "schedule", "homelab", "--systemd"])
        let calendars = units.stdout.split(separator: "\n").filter { $0.hasPrefix("OnCalendar=") }.map { String($0.dropFirst("OnCalendar=".count)) }
        #expect(calendars == ["Fri *-*-* 18:00:00", "Mon *-*-* 02:00:00", "*:0/15"], "\(units.stdout)")
        // systemd's own parser accepts every one (and agrees on the next firing weekday).
        for calendar in calendars {
            let check = try await Subprocess.run(["systemd-analyze", "calendar", calendar])
            #expect(check.status == 0, "\(calendar): \(check.stderr)")
        }
        let friday = try await Subprocess.run(["systemd-analyze", "calendar", calendars[0]])
        #expect(friday.stdout.contains("Next elapse: Fri"), "\(friday.stdout)")
    }

    @Test func gpuTTLAboveMaxLifetimeIsBadInput() async throws {
        let result = try await CLI.run(["gpu", "up", "demo/gpu", "--ttl", "99h"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("exceeds pool gpu's maxLifetime 8h"))
    }

    @Test func gpuUnknownPoolSuggests() async throws {
        let result = try await CLI.run(["gpu", "up", "demo/gpus"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("did you mean `gpu`"))
    }

    @Test func safeResetWithoutTerminalOrYesIsRefused() async throws {
        let result = try await CLI.run(["safe-reset", "demo/cp2"])
        #expect(result.status == 3)
        #expect(result.stderr.contains("pass --yes"))
    }

    @Test func safeResetAmbiguousBareNodeNamesTheFix() async throws {
        let result = try await CLI.run(["safe-reset", "cp2", "--yes"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("INVENTORY/cp2"))
    }

    /// The demo lab's nodes answer independent clients on their loopback addresses (a VM once its
    /// domain runs, a Mac mini from the start), the EC2 endpoint answers boto3 with the lab's key
    /// pair only, and everything stops on Ctrl-C.
    @Test func labServeKeepsTheDemoNodesUpForOtherClients() async throws {
        try await DemoLabLock.exclusive { try await labServe() }
    }

    func labServe() async throws {
        let state = temporaryDirectory()
        let lab = try CLI.Running(["lab", "serve", "demo", "--state-dir", state], cwd: repositoryRoot, environment: [:])
        let up = try await lab.waitFor(timeout: .seconds(60)) { lines in lines.contains { $0.hasPrefix("ec2  ") } }
        #expect(up, "\(lab.lines)")
        #expect(lab.lines.filter { $0.contains(":50000") }.count == 6)
        #expect(lab.lines.contains { $0.hasPrefix("cp1  127.0.0.11:50000") })
        #expect(lab.lines.contains { $0.hasPrefix("mini01  127.0.0.61:50000") }, "a fresh lab's minis are on, booted from USB by hand")
        #expect(lab.lines.contains { $0.hasPrefix("cp1") && $0.contains("off until its VM runs") }, "a fresh lab's hypervisor has no VMs yet")
        #expect(try await CLI.run(["probe", "127.0.0.11", "--json"]).stdout.contains("unreachable"), "no VM, no Talos node")
        // The VM is created and started in the lab's hypervisor (the served lab's state directory): its node boots.
        let vm = try await CLI.run(["machines", "up", "demo", "--node", "cp1", "--state-dir", state])
        #expect(vm.status == 0, "\(vm.stderr)")
        var answered = false
        for _ in 0..<200 where !answered {
            answered = try await CLI.run(["probe", "127.0.0.11", "--json"]).status == 0
            if !answered { try await Task.sleep(for: .milliseconds(50)) }
        }
        let python = try await Subprocess.run(["python3", "\(repositoryRoot)/Tests/Interop/talos_client.py", "--host", "127.0.0.11", "version", "hostname"])
        #expect(python.stdout.contains("\"tag\": \"v1.13"), "\(python.stdout) \(python.stderr)")

        // A Mac mini in maintenance: probe lists its NIC's kernel name, what machine.link takes.
        let probe = try await CLI.run(["probe", "127.0.0.61"])
        #expect(probe.status == 0, "\(probe.stderr)")
        #expect(probe.stdout.contains("maintenance") && probe.stdout.contains("nvme0n1"), "\(probe.stdout)")
        #expect(probe.stdout.contains("enp1s0  a4:83:e7:00:00:61"), "\(probe.stdout)")
        let pressed = try await CLI.run(["lab", "power-button", "demo", "mini01", "--state-dir", state])
        #expect(pressed.status == 0 && pressed.stdout.contains("mini01 is already on"), "\(pressed.stdout) \(pressed.stderr)")
        let wake = try await CLI.run(["machines", "up", "demo", "--node", "mini01", "--state-dir", temporaryDirectory()])
        #expect(wake.status == 0, "\(wake.stderr)")

        let describe = """
            import boto3, botocore, sys
            ec2 = boto3.client("ec2", endpoint_url="http://127.0.0.1:45000/", region_name="us-east-1")
            try:
                print(len(ec2.describe_instances()["Reservations"]))
            except botocore.exceptions.ClientError as error:
                print(error.response["Error"]["Code"])
            """
        func boto3(secret: String) async throws -> String {
            var environment = ProcessInfo.processInfo.environment
            environment["AWS_ACCESS_KEY_ID"] = try String(contentsOfFile: "\(repositoryRoot)/lab/aws-access-key-id", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            environment["AWS_SECRET_ACCESS_KEY"] = secret
            return try await Subprocess.run(["python3", "-c", describe], environment: environment).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let secret = try String(contentsOfFile: "\(repositoryRoot)/lab/aws-secret-access-key", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try await boto3(secret: secret) == "0", "the lab's EC2 endpoint answers its own key pair")
        #expect(try await boto3(secret: "wrong") == "SignatureDoesNotMatch")

        // `up demo` uses the lab that is serving, which keeps running after it: kubectl agrees.
        let built = try await CLI.run(["up", "demo", "--state-dir", state], timeout: .seconds(150))
        #expect(built.status == 0, "\(built.stderr)")
        #expect(built.stderr.contains("using the lab already serving"))
        var environment = ProcessInfo.processInfo.environment
        environment["KUBECONFIG"] = state + "/kubeconfig"
        let nodes = try await Subprocess.run(["kubectl", "get", "nodes", "--no-headers"], environment: environment)
        let rows = nodes.stdout.split(separator: "\n")
        #expect(rows.count == 6 && rows.allSatisfy { $0.contains(" Ready ") }, "\(nodes.stdout) \(nodes.stderr)")

        lab.signal(SIGINT)
        let finished = try await lab.finish(timeout: .seconds(30))
        #expect(finished.status == 0, "\(finished.stderr)")
        #expect(finished.stderr.contains("stopped"))
    }

    @Test(arguments: [[String](), ["up"], ["plan"], ["validate"], ["safe-reset"], ["gpu"], ["gpu", "up"], ["status"]])
    func helpTeachesByExample(_ command: [String]) async throws {
        let result = try await CLI.run(command + ["--help"])
        #expect(result.status == 0)
        let text = result.stdout
        #expect(text.contains("provision ") && (text.contains("Example") || text.contains("Start here") || text.contains("Crontab")), "\(command): \(text)")
    }

    @Test func dryRunReportsPendingChangesWithExitTwo() async throws {
        let dir = try CLI.project(playbooks: ["touch": """
              - id: touch
                uses: local.exec
                forEach: role=worker
                with: {run: "mkdir ../out/${node.name}", creates: "../out/${node.name}"}
            """])
        let dry = try await CLI.run(["up", "lab", "--playbook", "touch", "--dry-run", "--state-dir", dir + "/state"], cwd: dir)
        #expect(dry.status == 2, "\(dry.stderr)")
        #expect(dry.stderr.contains("would change"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/out/w1"))
        let real = try await CLI.run(["up", "lab", "--playbook", "touch", "--detailed-exitcode", "--state-dir", dir + "/state"], cwd: dir)
        #expect(real.status == 2, "changes applied")
        let again = try await CLI.run(["up", "lab", "--playbook", "touch", "--detailed-exitcode", "--state-dir", dir + "/state"], cwd: dir)
        #expect(again.status == 0)
        #expect(again.stderr.contains("nothing to do"))
        let status = try await CLI.run(["status", "lab", "--json", "--offline", "--state-dir", dir + "/state"], cwd: dir)
        #expect(status.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        let nodes = object?["nodes"] as? [[String: Any]] ?? []
        #expect(nodes.first { $0["name"] as? String == "w1" }?["lastOutcome"] as? String == "satisfied")
        #expect(nodes.first { $0["name"] as? String == "cp1" }?["lastOutcome"] is NSNull)
        let plan = try await CLI.run(["plan", "lab", "--playbook", "touch", "--state-dir", dir + "/state"], cwd: dir)
        #expect(plan.status == 0, "converged: nothing pending")
    }

    @Test func stateDirectoryDefaultsBesideTheInventory() async throws {
        let dir = try CLI.project(playbooks: ["one": "  - id: one\n    uses: local.exec\n    with: {run: \"true\"}\n"])
        let result = try await CLI.run(["up", "lab", "--playbook", "one"], cwd: dir)
        #expect(result.status == 0, "\(result.stderr)")
        let state = dir + "/inventories/.provision/lab"
        #expect(FileManager.default.fileExists(atPath: state + "/journal.sqlite"))
        let mode = try FileManager.default.attributesOfItem(atPath: state)[.posixPermissions] as? Int
        #expect(mode == 0o700)
        let env = try await CLI.run(["status", "lab", "--json", "--offline"], cwd: dir, environment: ["PROVISION_STATE_DIR": dir + "/elsewhere"])
        #expect(env.stdout.contains("\(dir)/elsewhere"))
    }
}
