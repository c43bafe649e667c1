import Foundation
import Providers

/// The lab's EC2: RunInstances, DescribeInstances, TerminateInstances, CreateTags,
/// CancelSpotInstanceRequests and DescribeSpotInstanceRequests with EC2's shapes, errors and state machine (pending -> running,
/// shutting-down -> terminated). Each instance is a simulated Talos node on a loopback address of
/// the lab's pool, booted with its user data as machine config, so a GPU worker launched here
/// really joins the lab cluster. A persistent spot request relaunches its instance when it is
/// terminated while the request is still open, as AWS does.
public actor SimulatedEC2 {
    public struct Failure: Error, Sendable {
        public let code: String
        public let message: String
        public var status = 400
    }

    struct Launch: Sendable {
        var imageID: String
        var type: String
        var subnetID: String
        var groups: [String]
        var userData: String?
        var tags: [(String, String)]
        var volumeTags: [(String, String)]
        var spotType: String?
        var httpTokens: String
        var clientToken: String?
        /// The root volume in GiB: the block device mapping's, else the AMI's 20 GiB.
        var rootVolumeGiB = SimulatedEC2.amiRootGiB
        var rootVolumeType = "gp2"
    }

    /// What Talos' official AMIs register: a 20 GiB gp2 root at /dev/xvda (talos v1.13.9
    /// `hack/cloud-image-uploader/aws.go`).
    static let amiRootGiB = 20

    struct Instance: Sendable {
        var id: String
        var reservationID: String
        var launch: Launch
        var state: State
        var address: String
        var launched: Date
        var tags: [(String, String)]
        var volumeID: String
        var volumeTags: [(String, String)]
        var interfaceID: String
        var mac: String
        var spotRequestID: String?
        var node: SimulatedTalosNode
        /// Why Talos did not configure itself from the user data, if it did not.
        var consoleProblem: String?
    }

    struct SpotRequest: Sendable {
        var id: String
        var type: String
        var state: String
        var instanceID: String
        var launch: Launch
    }

    enum State: String, Sendable {
        case pending, running, shuttingDown = "shutting-down", terminated
        var code: Int { [.pending: 0, .running: 16, .shuttingDown: 32, .terminated: 48][self]! }
    }

    let cluster: SimulatedTalosCluster
    let talosVersion: String
    let timeScale: Double
    /// Seconds from launch to `running` at time scale 1 (the instance boots after that).
    let bootDelay: Double
    var pool: [String]
    var instances: [String: Instance] = [:]
    var order: [String] = []
    var spotRequests: [String: SpotRequest] = [:]
    static let vpcID = "vpc-0a1b2c3d4e5f60001"
    static let defaultSubnet = "subnet-0a1b2c3d4e5f60001"
    static let defaultGroup = "sg-0a1b2c3d4e5f60001"
    static let owner = "123456789012"

    /// `addresses`: the loopback addresses instances get, in order; none may be an inventory node's.
    public init(cluster: SimulatedTalosCluster, addresses: [String], talosVersion: String, timeScale: Double, bootDelay: Double = 30) {
        self.cluster = cluster
        self.pool = addresses
        self.talosVersion = talosVersion
        self.timeScale = timeScale
        self.bootDelay = bootDelay
    }

    // MARK: What tests and the lab read

    public var liveInstanceIDs: [String] { order.filter { [.pending, .running].contains(instances[$0]?.state) } }
    public func consoleProblem(of instanceID: String) -> String? { instances[instanceID]?.consoleProblem }
    /// The instance's root volume as launched: GiB and type.
    public func rootVolume(of instanceID: String) -> (gib: Int, type: String)? { instances[instanceID].map { ($0.launch.rootVolumeGiB, $0.launch.rootVolumeType) } }

    // MARK: Actions

    func runInstances(_ p: QueryParameters) async throws(Failure) -> [EC2XML] {
        let imageID = try p.required("ImageId")
        guard imageID.hasPrefix("ami-") else { throw Failure(code: "InvalidAMIID.Malformed", message: "Invalid id: \"\(imageID)\" (expecting \"ami-...\")") }
        let type = p["InstanceType"] ?? "m1.small"
        let count = Int(p["MaxCount"] ?? p["MinCount"] ?? "1") ?? 0
        guard count >= 1 else { throw Failure(code: "InvalidParameterValue", message: "Invalid value for parameter MaxCount: must be at least 1") }
        if let token = p["ClientToken"], let existing = order.first(where: { instances[$0]?.launch.clientToken == token }), let instance = instances[existing] {
            // The same logical launch again: EC2 answers with the original reservation.
            return reservation(instance.reservationID)
        }
        var userData: String?
        if let encoded = p["UserData"] {
            guard let decoded = EC2UserData.decode(encoded) else {
                throw Failure(code: "InvalidParameterValue", message: "Invalid BASE64 encoding of user data.")
            }
            userData = decoded
        }
        guard pool.count >= count else {
            throw Failure(code: "InsufficientInstanceCapacity", message: "We currently do not have sufficient \(type) capacity in the lab's address pool.")
        }
        var launch = Launch(imageID: imageID, type: type, subnetID: p["SubnetId"] ?? Self.defaultSubnet,
                            groups: p.indexed("SecurityGroupId"), userData: userData, tags: [], volumeTags: [], spotType: nil,
                            httpTokens: p["MetadataOptions.HttpTokens"] ?? "optional", clientToken: p["ClientToken"])
        if let device = p["BlockDeviceMapping.1.DeviceName"] {
            // The root's mapping (the lab's AMIs have one device): EC2 refuses one smaller than the
            // AMI's snapshot, and a device name the AMI does not have adds a volume instead.
            guard device == "/dev/xvda" else {
                throw Failure(code: "InvalidBlockDeviceMapping", message: "The lab models only the AMI's root device /dev/xvda, not \(device)")
            }
            if let text = p["BlockDeviceMapping.1.Ebs.VolumeSize"] {
                guard let size = Int(text), size >= Self.amiRootGiB else {
                    throw Failure(code: "InvalidBlockDeviceMapping", message: "Volume of size \(text)GB is smaller than snapshot, expect size >= \(Self.amiRootGiB)GB")
                }
                launch.rootVolumeGiB = size
            }
            launch.rootVolumeType = p["BlockDeviceMapping.1.Ebs.VolumeType"] ?? launch.rootVolumeType
        }
        for index in 1... {
            guard let resource = p["TagSpecification.\(index).ResourceType"] else { break }
            let tags = p.tags("TagSpecification.\(index).Tag")
            if resource == "instance" { launch.tags += tags } else if resource == "volume" { launch.volumeTags += tags }
        }
        if p["InstanceMarketOptions.MarketType"] == "spot" {
            launch.spotType = p["InstanceMarketOptions.SpotOptions.SpotInstanceType"] ?? "one-time"
        }
        let reservationID = Self.id("r")
        for _ in 0..<count { await start(launch, reservationID: reservationID, spotRequestID: nil) }
        return reservation(reservationID)
    }

    func describeInstances(_ p: QueryParameters) throws(Failure) -> [EC2XML] {
        let ids = p.indexed("InstanceId")
        for id in ids where instances[id] == nil {
            throw Failure(code: "InvalidInstanceID.NotFound", message: "The instance ID '\(id)' does not exist")
        }
        var filters: [(String, [String])] = []
        for index in 1... {
            guard let name = p["Filter.\(index).Name"] else { break }
            filters.append((name, p.indexed("Filter.\(index).Value")))
        }
        var matching: [Instance] = []
        for id in order {
            guard let instance = instances[id], ids.isEmpty || ids.contains(id) else { continue }
            var keep = true
            for (name, values) in filters {
                guard let value = try Self.filterValues(name, instance) else { continue }
                if !value.contains(where: values.contains) { keep = false }
            }
            if keep { matching.append(instance) }
        }
        var reservations: [String] = []
        for instance in matching where !reservations.contains(instance.reservationID) { reservations.append(instance.reservationID) }
        var start = 0
        if let token = p["NextToken"] {
            guard let offset = Int(token), offset >= 0, offset <= reservations.count else {
                throw Failure(code: "InvalidParameterValue", message: "The parameter NextToken is not valid")
            }
            start = offset
        }
        var end = reservations.count
        if let text = p["MaxResults"] {
            guard let limit = Int(text), (5...1000).contains(limit) else {
                throw Failure(code: "InvalidParameterValue", message: "Value ( \(text) ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.")
            }
            end = min(reservations.count, start + limit)
        }
        let shown = Set(matching.map(\.id))
        var body: [EC2XML] = [.list("reservationSet", reservations[start..<end].map { reservationBody($0, only: shown) })]
        if end < reservations.count { body.append(.text("nextToken", "\(end)")) }
        return body
    }

    func terminateInstances(_ p: QueryParameters) async throws(Failure) -> [EC2XML] {
        let ids = p.indexed("InstanceId")
        guard !ids.isEmpty else { throw Failure(code: "MissingParameter", message: "The request must contain the parameter InstanceId") }
        for id in ids where instances[id] == nil {
            throw Failure(code: "InvalidInstanceID.NotFound", message: "The instance ID '\(id)' does not exist")
        }
        var items: [[EC2XML]] = []
        for id in ids {
            guard var instance = instances[id] else { continue }
            let previous = instance.state
            if previous == .pending || previous == .running {
                // The OS shuts down while the instance is shutting-down: its kubelet may post status
                // until the machine is off, which is when EC2 reports it terminated.
                instance.state = .shuttingDown
                instances[id] = instance
                Task { await self.finishTermination(id) }
                await relaunchIfPersistent(instance)
            }
            items.append([.text("instanceId", id), Self.state("currentState", instances[id]!.state), Self.state("previousState", previous)])
        }
        return [.list("instancesSet", items)]
    }

    func createTags(_ p: QueryParameters) throws(Failure) -> [EC2XML] {
        let ids = p.indexed("ResourceId")
        guard !ids.isEmpty else { throw Failure(code: "MissingParameter", message: "The request must contain the parameter ResourceId") }
        let tags = p.tags("Tag")
        for id in ids {
            if instances[id] != nil { continue }
            if instances.values.contains(where: { $0.volumeID == id }) { continue }
            throw Failure(code: id.hasPrefix("i-") ? "InvalidInstanceID.NotFound" : "InvalidID", message: "The ID '\(id)' does not exist")
        }
        for id in ids {
            if var instance = instances[id] {
                instance.tags = Self.merge(instance.tags, tags)
                instances[id] = instance
            } else if let owner = instances.values.first(where: { $0.volumeID == id })?.id {
                instances[owner]!.volumeTags = Self.merge(instances[owner]!.volumeTags, tags)
            }
        }
        return [.text("return", "true")]
    }

    func cancelSpotInstanceRequests(_ p: QueryParameters) throws(Failure) -> [EC2XML] {
        let ids = p.indexed("SpotInstanceRequestId")
        guard !ids.isEmpty else { throw Failure(code: "MissingParameter", message: "The request must contain the parameter SpotInstanceRequestId") }
        for id in ids where spotRequests[id] == nil {
            throw Failure(code: "InvalidSpotInstanceRequestID.NotFound", message: "The spot instance request ID '\(id)' does not exist")
        }
        // Cancelling a request leaves its instance running, as on AWS: `gpu down` terminates it next.
        for id in ids { spotRequests[id]?.state = "cancelled" }
        return [.list("spotInstanceRequestSet", ids.map { [.text("spotInstanceRequestId", $0), .text("state", "cancelled")] })]
    }

    /// The requests named (or all), with their state and instance, in EC2's shape.
    func describeSpotInstanceRequests(_ p: QueryParameters) throws(Failure) -> [EC2XML] {
        let ids = p.indexed("SpotInstanceRequestId")
        for id in ids where spotRequests[id] == nil {
            throw Failure(code: "InvalidSpotInstanceRequestID.NotFound", message: "The spot instance request ID '\(id)' does not exist")
        }
        let shown = spotRequests.values.filter { ids.isEmpty || ids.contains($0.id) }.sorted { $0.id < $1.id }
        return [.list("spotInstanceRequestSet", shown.map { request in
            [.text("spotInstanceRequestId", request.id), .text("state", request.state), .text("type", request.type),
             .text("instanceId", request.instanceID)]
        })]
    }

    // MARK: Lifecycle

    private func start(_ launch: Launch, reservationID: String, spotRequestID: String?) async {
        let id = Self.id("i")
        let address = pool.removeFirst()
        var requestID = spotRequestID
        if requestID == nil, let type = launch.spotType {
            requestID = Self.id("sir")
            spotRequests[requestID!] = SpotRequest(id: requestID!, type: type, state: "active", instanceID: id, launch: launch)
        }
        var spec = SimulatedNodeSpec(name: id, address: address)
        spec.platform = "aws"
        spec.talosVersion = talosVersion
        spec.timeScale = timeScale
        let node = SimulatedTalosNode(spec: spec, etcd: cluster.etcd, trustd: cluster.trustd, directory: cluster.directory)
        let suffix = address.split(separator: ".").map { String(format: "%02x", Int($0) ?? 0) }.joined(separator: ":")
        instances[id] = Instance(id: id, reservationID: reservationID, launch: launch, state: .pending, address: address, launched: Date(),
                                 tags: launch.tags, volumeID: Self.id("vol"), volumeTags: launch.volumeTags, interfaceID: Self.id("eni"),
                                 mac: "02:00:" + suffix, spotRequestID: requestID, node: node)
        order.append(id)
        var problem = "no user data: Talos waits in maintenance mode" as String?
        if let userData = launch.userData { problem = await node.attach(userData: userData) }
        instances[id]?.consoleProblem = problem
        Task { await self.finishLaunch(id) }
    }

    /// EC2 takes its time from pending to running; only then does the machine power on and boot.
    private func finishLaunch(_ id: String) async {
        await pause(bootDelay)
        guard instances[id]?.state == .pending, let node = instances[id]?.node else { return }
        instances[id]?.state = .running
        await node.powerOn()
    }

    private func finishTermination(_ id: String) async {
        await pause(2)
        guard let instance = instances[id], instance.state == .shuttingDown else { return }
        await instance.node.powerOff()
        instances[id]?.state = .terminated
        pool.append(instance.address)
    }

    private func relaunchIfPersistent(_ instance: Instance) async {
        guard let requestID = instance.spotRequestID, var request = spotRequests[requestID] else { return }
        guard request.type == "persistent", request.state == "active" else {
            if request.type != "persistent" { spotRequests[requestID]?.state = "closed" }
            return
        }
        guard !pool.isEmpty else { return }
        await start(request.launch, reservationID: Self.id("r"), spotRequestID: requestID)
        request.instanceID = order.last!
        spotRequests[requestID] = request
    }

    private func pause(_ seconds: Double) async {
        let scaled = seconds * timeScale
        if scaled > 0 { try? await Task.sleep(for: .milliseconds(Int(scaled * 1000))) } else { await Task.yield() }
    }

    // MARK: Rendering

    private func reservation(_ reservationID: String) -> [EC2XML] { reservationBody(reservationID, only: nil) }

    private func reservationBody(_ reservationID: String, only: Set<String>?) -> [EC2XML] {
        let members = order.compactMap { instances[$0] }.filter { $0.reservationID == reservationID && (only?.contains($0.id) ?? true) }
        return [.text("reservationId", reservationID), .text("ownerId", Self.owner), .element("groupSet", []),
                .list("instancesSet", members.map(Self.item))]
    }

    static func state(_ name: String, _ state: State) -> EC2XML {
        .element(name, [.text("code", "\(state.code)"), .text("name", state.rawValue)])
    }

    static func tagSet(_ tags: [(String, String)]) -> EC2XML {
        .list("tagSet", tags.map { [.text("key", $0.0), .text("value", $0.1)] })
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    static func item(_ i: Instance) -> [EC2XML] {
        let dns = "ip-" + i.address.replacingOccurrences(of: ".", with: "-") + ".ec2.internal"
        func groupItems(_ ids: [String]) -> [[EC2XML]] { ids.map { [EC2XML.text("groupId", $0), .text("groupName", $0 == defaultGroup ? "default" : $0)] } }
        // The interface always has a group (the VPC default when none was asked for); the instance lists only those asked for.
        let groups = groupItems(i.launch.groups.isEmpty ? [defaultGroup] : i.launch.groups)
        let live = i.state == .pending || i.state == .running
        var item: [EC2XML] = [
            .text("instanceId", i.id), .text("imageId", i.launch.imageID), state("instanceState", i.state),
            .text("privateDnsName", dns), .text("dnsName", ""), .text("reason", ""), .text("amiLaunchIndex", "0"),
            .element("productCodes", []), .text("instanceType", i.launch.type), .text("launchTime", timestamp(i.launched)),
            .element("placement", [.text("availabilityZone", "us-east-1a"), .text("groupName", ""), .text("tenancy", "default")]),
            .element("monitoring", [.text("state", "disabled")]), .text("subnetId", i.launch.subnetID), .text("vpcId", vpcID),
            .text("privateIpAddress", i.address), .text("sourceDestCheck", "true"), .list("groupSet", groupItems(i.launch.groups)),
            .element("stateReason", [.text("code", ""), .text("message", "")]),
            .text("architecture", "x86_64"), .text("rootDeviceType", "ebs"), .text("rootDeviceName", "/dev/xvda"),
            .list("blockDeviceMapping", live ? [[.text("deviceName", "/dev/xvda"), .element("ebs", [
                .text("volumeId", i.volumeID), .text("status", "attached"), .text("attachTime", timestamp(i.launched)),
                .text("deleteOnTermination", "true")])]] : []),
            .text("virtualizationType", "hvm"), .text("clientToken", i.launch.clientToken ?? ""), tagSet(i.tags), .text("hypervisor", "xen"),
            .list("networkInterfaceSet", [[
                .text("networkInterfaceId", i.interfaceID), .text("subnetId", i.launch.subnetID), .text("vpcId", vpcID),
                .text("description", "Primary network interface"), .text("ownerId", owner), .text("status", "in-use"),
                .text("macAddress", i.mac), .text("privateIpAddress", i.address), .text("privateDnsName", dns),
                .text("sourceDestCheck", "true"), .list("groupSet", groups),
                .element("attachment", [.text("attachmentId", "eni-attach-" + i.interfaceID.dropFirst(4)), .text("deviceIndex", "0"),
                                        .text("status", "attached"), .text("attachTime", timestamp(i.launched)),
                                        .text("deleteOnTermination", "true"), .text("networkCardIndex", "0")]),
                .list("privateIpAddressesSet", [[.text("privateIpAddress", i.address), .text("primary", "true")]]),
                .element("ipv6AddressesSet", []), .text("interfaceType", "interface"),
            ]]),
            .text("ebsOptimized", "false"), .text("sriovNetSupport", "simple"), .element("hibernationOptions", []),
            .element("metadataOptions", [.text("state", "applied"), .text("httpTokens", i.launch.httpTokens), .text("httpPutResponseHopLimit", "1"),
                                         .text("httpEndpoint", "enabled"), .text("httpProtocolIpv6", "disabled"), .text("instanceMetadataTags", "disabled")]),
        ]
        if let request = i.spotRequestID {
            item += [.text("instanceLifecycle", "spot"), .text("spotInstanceRequestId", request)]
        }
        return item
    }

    static func merge(_ old: [(String, String)], _ new: [(String, String)]) -> [(String, String)] {
        var result = old.filter { pair in !new.contains { $0.0 == pair.0 } }
        result += new
        return result
    }

    /// The values an instance has for a DescribeInstances filter; nil for names EC2 knows but the
    /// lab ignores. Unknown names are refused, as EC2 does.
    static func filterValues(_ name: String, _ i: Instance) throws(Failure) -> [String]? {
        if name.hasPrefix("tag:") {
            let key = String(name.dropFirst(4))
            return i.tags.filter { $0.0 == key }.map(\.1)
        }
        switch name {
        case "instance-id": return [i.id]
        case "instance-state-name": return [i.state.rawValue]
        case "instance-state-code": return ["\(i.state.code)"]
        case "instance-type": return [i.launch.type]
        case "image-id": return [i.launch.imageID]
        case "private-ip-address": return [i.address]
        case "tag-key": return i.tags.map(\.0)
        case "client-token": return [i.launch.clientToken ?? ""]
        case "instance-lifecycle": return i.spotRequestID == nil ? [] : ["spot"]
        case "subnet-id": return [i.launch.subnetID]
        case "vpc-id": return [vpcID]
        default: throw Failure(code: "InvalidParameterValue", message: "The filter '\(name)' is invalid")
        }
    }

    static func id(_ prefix: String) -> String {
        prefix + "-" + (0..<17).map { _ in String("0123456789abcdef".randomElement()!) }.joined()
    }
}

extension SimulatedEC2 {
    func snapshot() -> TwinSnapshot.EC2State {
        TwinSnapshot.EC2State(instances: order.compactMap { instances[$0] }.map { i in
            .init(id: i.id, reservationID: i.reservationID, imageID: i.launch.imageID, type: i.launch.type, subnetID: i.launch.subnetID,
                  groups: i.launch.groups, userData: i.launch.userData, tags: i.tags.map { [$0.0, $0.1] },
                  volumeTags: i.volumeTags.map { [$0.0, $0.1] }, spotType: i.launch.spotType, httpTokens: i.launch.httpTokens,
                  clientToken: i.launch.clientToken, state: i.state.rawValue, address: i.address, launched: i.launched,
                  volumeID: i.volumeID, interfaceID: i.interfaceID, mac: i.mac, spotRequestID: i.spotRequestID,
                  rootVolumeGiB: i.launch.rootVolumeGiB, rootVolumeType: i.launch.rootVolumeType)
        }, spotRequests: spotRequests.values.sorted { $0.id < $1.id }.map { .init(id: $0.id, type: $0.type, state: $0.state, instanceID: $0.instanceID) })
    }

    /// Instances come back as they were; live ones boot again from their user data.
    func restore(_ state: TwinSnapshot.EC2State) async {
        for saved in state.instances {
            var launch = Launch(imageID: saved.imageID, type: saved.type, subnetID: saved.subnetID, groups: saved.groups, userData: saved.userData,
                                tags: saved.tags.map { ($0[0], $0[1]) }, volumeTags: saved.volumeTags.map { ($0[0], $0[1]) },
                                spotType: saved.spotType, httpTokens: saved.httpTokens, clientToken: saved.clientToken)
            launch.rootVolumeGiB = saved.rootVolumeGiB ?? Self.amiRootGiB
            launch.rootVolumeType = saved.rootVolumeType ?? "gp2"
            var spec = SimulatedNodeSpec(name: saved.id, address: saved.address)
            spec.platform = "aws"
            spec.talosVersion = talosVersion
            spec.timeScale = timeScale
            let node = SimulatedTalosNode(spec: spec, etcd: cluster.etcd, trustd: cluster.trustd, directory: cluster.directory)
            var stateValue = State(rawValue: saved.state) ?? .terminated
            if stateValue == .shuttingDown { stateValue = .terminated }
            // Time passed while no command ran: a launch under way has reached running.
            if stateValue == .pending { stateValue = .running }
            instances[saved.id] = Instance(id: saved.id, reservationID: saved.reservationID, launch: launch, state: stateValue, address: saved.address,
                                           launched: saved.launched, tags: launch.tags, volumeID: saved.volumeID, volumeTags: launch.volumeTags,
                                           interfaceID: saved.interfaceID, mac: saved.mac, spotRequestID: saved.spotRequestID, node: node)
            order.append(saved.id)
            if stateValue != .terminated {
                pool.removeAll { $0 == saved.address }
                // The instance kept running while no command was: it resumes, configured as it was.
                await node.restore(TwinSnapshot.NodeState(name: saved.id, powered: true, config: saved.userData, bootID: nil))
            }
        }
        for request in state.spotRequests {
            guard let launch = instances[request.instanceID]?.launch else { continue }
            spotRequests[request.id] = SpotRequest(id: request.id, type: request.type, state: request.state, instanceID: request.instanceID, launch: launch)
        }
    }
}
