import Foundation
import Lab
import ProvisionCore
import Steps
import TalosKit

// Talos benchmarks for scripts/bench (recorded in BENCHMARKS.md, never enforced by tests):
//  1. apply + await-configured + bootstrap (+ await-etcd) on 3 simulated control planes at time
//     scale 0, through the real executor and step kinds;
//  2. per-call cost of Version on one reused mTLS connection, median of 1000.
// Loopback only (127.78.0.x).

let root = CommandLine.arguments.dropFirst().first ?? FileManager.default.currentDirectoryPath
var (inventory, _) = try InventoryParser.load(path: "\(root)/inventories/demo.yaml")
inventory.nodes = inventory.nodes.filter { $0.role.value == .controlplane }
for index in inventory.nodes.indices { inventory.nodes[index].address.value = IPv4Address("127.78.0.\(11 + index)")! }
inventory.lab?.timeScale.value = 0
inventory.lab?.faults = []

let state = NSTemporaryDirectory() + "provision-bench-\(UUID().uuidString)"
try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: state) }
let bundle = try SecretsBundle.generate()
try PrivateFile.write(Array(bundle.yaml.utf8), to: "\(state)/secrets.yaml")

let cluster = SimulatedTalosCluster(inventory: inventory)
await cluster.powerOnAll()
for node in cluster.nodes { try await node.waitUntilListening() }

let bookPath = "\(state)/bench.yaml"
try """
    apiVersion: provision/v1
    kind: Playbook
    name: bench
    steps:
      - {id: apply-config, uses: talos.apply-config, forEach: all}
      - {id: configured, uses: talos.await-configured, forEach: all, needs: [apply-config]}
      - {id: bootstrap, uses: talos.bootstrap, needs: [configured]}
      - {id: etcd, uses: talos.await-etcd, needs: [bootstrap]}
    """.write(toFile: bookPath, atomically: true, encoding: .utf8)
let catalog = StandardCatalog.make()
let graph = try PlaybookExpander(inventory: inventory).expand(try PlaybookParser.load(path: bookPath, catalog: catalog))
let redactor = Redactor()
let resolver = CredentialResolver(environment: [:], baseDirectory: inventory.directory, redactor: redactor)
let access = TalosAccess(inventory: inventory, stateDirectory: state, credentials: resolver)
var services = Services()
services[TalosAccess.self] = access
let context = StepContext(inventory: inventory, stateDirectory: state, runID: "bench", credentials: resolver,
                          events: EventBus(redactor: redactor, sinks: []), services: services)
let started = ContinuousClock.now
let summary = try await Executor(graph: graph, catalog: catalog, context: context, journal: nil, options: ExecutorOptions()).run(command: "bench", playbook: "bench")
let upTime = ContinuousClock.now - started
guard summary.succeeded else { fatalError("bench run failed: \(summary.errors)") }

let client = try await access.client("cp1", .admin)
_ = try await client.version()
var samples: [Double] = []
for _ in 0..<1000 {
    let start = ContinuousClock.now
    _ = try await client.version()
    samples.append(Double((ContinuousClock.now - start) / .microseconds(1)) / 1000)
}
samples.sort()
func ms(_ duration: Duration) -> String { String(format: "%.0f ms", Double(duration / .microseconds(1)) / 1000) }
print("apply + await-configured + bootstrap + await-etcd, 3 CPs, time scale 0   \(ms(upTime))   target < 2 s")
print(String(format: "Version on a reused mTLS connection, 1000 calls   median %.3f ms   p90 %.3f ms   target < 2 ms", samples[500], samples[900]))
access.close()
await cluster.shutdown()
