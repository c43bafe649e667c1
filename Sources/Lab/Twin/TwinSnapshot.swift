import Foundation
import KubeKit

/// Everything a lab holds that a real homelab would still hold after `provision` exits: which
/// machines are on and with what Talos config, etcd's membership, the Kubernetes objects, and the
/// EC2 instances. Saved as one JSON file in the state directory, so a lab outlives each command.
struct TwinSnapshot: Codable, Sendable {
    var nodes: [NodeState] = []
    var etcd = EtcdState()
    var kube: KubeState?
    var ec2: EC2State?

    struct NodeState: Codable, Sendable {
        var name: String
        var powered: Bool
        var config: String?
        /// A config on disk that is not active yet (STAGED): it becomes active at the next boot.
        var staged: String?
        var bootID: String?
        /// The machine itself, so a lab keeps simulating it after the inventory drops it (a real
        /// machine does not vanish when a line is deleted): address, Talos version, platform and
        /// the libvirt provider whose domain it is (nil for metal).
        var address: String?
        var talosVersion: String?
        var platform: String?
        var hypervisor: String?
        var domain: String?
        /// The running schematic, and what an upgrade installed into the other boot slot.
        var schematic: String?
        var slotVersion: String?
        var slotSchematic: String?
        /// Whether its NIC was left armed for Wake-on-LAN when it went off.
        var wakeArmed: Bool?
        /// Its NIC's MAC: a machine the inventory no longer lists keeps it (its config selects its
        /// link by it), as a real machine keeps its NIC.
        var mac: String?
        /// A running worker's OS CA key from trustd, behind the API certificate it holds.
        var heldCAKey: String?
    }

    struct EtcdState: Codable, Sendable {
        struct Cluster: Codable, Sendable {
            var key: Int
            var members: [Member]
            var leader: UInt64
            var revision: Int
        }
        struct Member: Codable, Sendable {
            var id: UInt64
            var node: String
            var hostname: String
            var address: String
            var isLearner: Bool?
        }
        var clusters: [Cluster] = []
        var nextCluster = 1
        /// Nodes whose etcd data was destroyed (`lab break-etcd`), snapshots uploaded by
        /// EtcdRecover and not yet restored, and whether the keyspace was lost with them.
        var corrupted: [String]? = nil
        var pendingRecovery: [String: Data]? = nil
        var keyspaceLost: Bool? = nil
    }

    struct KubeState: Codable, Sendable {
        struct Object: Codable, Sendable {
            var group: String
            var plural: String
            var namespace: String?
            var name: String
            var object: JSON
            var owners: [String: Owner]
        }
        struct Owner: Codable, Sendable {
            var operation: String
            var apiVersion: String
            var fields: [[String]]
        }
        var objects: [Object]
        var revision: Int
    }

    struct EC2State: Codable, Sendable {
        struct Instance: Codable, Sendable {
            var id: String
            var reservationID: String
            var imageID: String
            var type: String
            var subnetID: String
            var groups: [String]
            var userData: String?
            var tags: [[String]]
            var volumeTags: [[String]]
            var spotType: String?
            var httpTokens: String
            var clientToken: String?
            var state: String
            var address: String
            var launched: Date
            var volumeID: String
            var interfaceID: String
            var mac: String
            var spotRequestID: String?
            /// The root volume's size in GiB and type, as launched (older twins: the AMI's 20 GiB gp2).
            var rootVolumeGiB: Int?
            var rootVolumeType: String?
        }
        struct SpotRequest: Codable, Sendable {
            var id: String
            var type: String
            var state: String
            var instanceID: String
        }
        var instances: [Instance]
        var spotRequests: [SpotRequest]
    }

    static func load(_ path: String) -> TwinSnapshot? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(TwinSnapshot.self, from: data)
    }

    func data() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(self)
    }
}
