import Foundation

/// An instance as DescribeInstances/RunInstances report it.
public struct EC2Instance: Sendable, Equatable {
    public var id: String
    public var state: String
    public var type: String
    public var privateAddress: String?
    public var publicAddress: String?
    public var launchTime: String?
    public var spotRequestID: String?
    public var tags: [String: String]

    init(_ item: XMLTree) {
        id = item.value("instanceId") ?? ""
        state = item.value("instanceState/name") ?? item.value("currentState/name") ?? "unknown"
        type = item.value("instanceType") ?? ""
        privateAddress = item.value("privateIpAddress").flatMap { $0.isEmpty ? nil : $0 }
        publicAddress = item.value("ipAddress").flatMap { $0.isEmpty ? nil : $0 }
        launchTime = item.value("launchTime")
        spotRequestID = item.value("spotInstanceRequestId").flatMap { $0.isEmpty ? nil : $0 }
        var tags: [String: String] = [:]
        for tag in item.items("tagSet") { if let key = tag.value("key") { tags[key] = tag.value("value") ?? "" } }
        self.tags = tags
    }

    /// Pending or running: billing, or about to.
    public var isLive: Bool { state == "pending" || state == "running" }
}

/// What to launch. User data is the worker's machine config: gzip'd and base64'd by the caller,
/// never logged.
public struct EC2LaunchSpec: Sendable {
    public var imageID: String
    public var instanceType: String
    public var subnetID: String?
    public var securityGroupIDs: [String] = []
    public var userData: String?
    public var spot = false
    /// `one-time` (the default: nothing relaunches) or `persistent` (AWS relaunches until the request is cancelled).
    public var spotType = "one-time"
    public var clientToken: String
    public var tags: [String: String]
    /// The root EBS volume in GiB (gp3, deleted with the instance); nil: the AMI's own.
    public var rootVolumeGiB: Int?
    /// The AMI's root device: Talos' uploader registers `/dev/xvda` (hack/cloud-image-uploader/aws.go).
    public var rootDeviceName = "/dev/xvda"

    public init(imageID: String, instanceType: String, clientToken: String, tags: [String: String]) {
        self.imageID = imageID
        self.instanceType = instanceType
        self.clientToken = clientToken
        self.tags = tags
    }

    var parameters: [(String, String)] {
        var list: [(String, String)] = [("ImageId", imageID), ("InstanceType", instanceType), ("MinCount", "1"), ("MaxCount", "1"),
                                        ("ClientToken", clientToken), ("MetadataOptions.HttpTokens", "required"),
                                        ("MetadataOptions.HttpEndpoint", "enabled"), ("InstanceInitiatedShutdownBehavior", "terminate")]
        if let subnetID { list.append(("SubnetId", subnetID)) }
        for (index, group) in securityGroupIDs.enumerated() { list.append(("SecurityGroupId.\(index + 1)", group)) }
        if let userData { list.append(("UserData", userData)) }
        if let rootVolumeGiB {
            list += [("BlockDeviceMapping.1.DeviceName", rootDeviceName), ("BlockDeviceMapping.1.Ebs.VolumeSize", "\(rootVolumeGiB)"),
                     ("BlockDeviceMapping.1.Ebs.VolumeType", "gp3"), ("BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true")]
        }
        if spot {
            // A persistent request can only stop or hibernate its instance on interruption.
            list += [("InstanceMarketOptions.MarketType", "spot"), ("InstanceMarketOptions.SpotOptions.SpotInstanceType", spotType),
                     ("InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior", spotType == "persistent" ? "stop" : "terminate")]
        }
        // Tag the instance and its volumes at launch: no window in which a billing instance is untagged.
        for (specIndex, resource) in ["instance", "volume"].enumerated() {
            list.append(("TagSpecification.\(specIndex + 1).ResourceType", resource))
            for (index, (key, value)) in tags.sorted(by: { $0.key < $1.key }).enumerated() {
                list.append(("TagSpecification.\(specIndex + 1).Tag.\(index + 1).Key", key))
                list.append(("TagSpecification.\(specIndex + 1).Tag.\(index + 1).Value", value))
            }
        }
        return list
    }
}

extension EC2Client {
    public func runInstances(_ spec: EC2LaunchSpec) async throws -> [EC2Instance] {
        try await call("RunInstances", spec.parameters).items("instancesSet").map(EC2Instance.init)
    }

    /// Instances matching every filter (e.g. `tag:provision:pool` = `gpu`), all pages.
    public func describeInstances(filters: [(String, [String])] = [], ids: [String] = []) async throws -> [EC2Instance] {
        var base: [(String, String)] = []
        for (index, (name, values)) in filters.enumerated() {
            base.append(("Filter.\(index + 1).Name", name))
            for (valueIndex, value) in values.enumerated() { base.append(("Filter.\(index + 1).Value.\(valueIndex + 1)", value)) }
        }
        for (index, id) in ids.enumerated() { base.append(("InstanceId.\(index + 1)", id)) }
        var instances: [EC2Instance] = []
        var token: String?
        repeat {
            let reply = try await call("DescribeInstances", base + (token.map { [("NextToken", $0)] } ?? []))
            for reservation in reply.items("reservationSet") { instances += reservation.items("instancesSet").map(EC2Instance.init) }
            token = reply.value("nextToken").flatMap { $0.isEmpty ? nil : $0 }
        } while token != nil
        return instances
    }

    /// Returns each instance's state after the call.
    public func terminateInstances(ids: [String]) async throws -> [String: String] {
        guard !ids.isEmpty else { return [:] }
        let reply = try await call("TerminateInstances", ids.enumerated().map { ("InstanceId.\($0.offset + 1)", $0.element) })
        var states: [String: String] = [:]
        for item in reply.items("instancesSet") { if let id = item.value("instanceId") { states[id] = item.value("currentState/name") ?? "" } }
        return states
    }

    public func createTags(ids: [String], tags: [String: String]) async throws {
        var parameters = ids.enumerated().map { ("ResourceId.\($0.offset + 1)", $0.element) }
        for (index, (key, value)) in tags.sorted(by: { $0.key < $1.key }).enumerated() {
            parameters += [("Tag.\(index + 1).Key", key), ("Tag.\(index + 1).Value", value)]
        }
        _ = try await call("CreateTags", parameters)
    }

    /// Each named request's state (`open`, `active`, `closed`, `cancelled`, `failed`).
    public func spotRequestStates(ids: [String]) async throws -> [String: String] {
        guard !ids.isEmpty else { return [:] }
        let reply = try await call("DescribeSpotInstanceRequests", ids.enumerated().map { ("SpotInstanceRequestId.\($0.offset + 1)", $0.element) })
        var states: [String: String] = [:]
        for item in reply.items("spotInstanceRequestSet") { if let id = item.value("spotInstanceRequestId") { states[id] = item.value("state") ?? "" } }
        return states
    }

    public func cancelSpotInstanceRequests(ids: [String]) async throws {
        guard !ids.isEmpty else { return }
        _ = try await call("CancelSpotInstanceRequests", ids.enumerated().map { ("SpotInstanceRequestId.\($0.offset + 1)", $0.element) })
    }
}
