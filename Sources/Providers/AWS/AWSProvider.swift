import Foundation
import ProvisionCore

/// An inventory `aws` provider as the EC2 client (and the lab's endpoint) need it: the key pair
/// resolved from its references, the region, and the endpoint (the inventory's override or AWS's).
extension ProviderSpec {
    public var ec2Region: String { setting("region") ?? "us-east-1" }

    public var ec2Endpoint: URL {
        setting("endpoint").flatMap(URL.init(string:)) ?? URL(string: "https://ec2.\(ec2Region).amazonaws.com/")!
    }

    public func awsCredentials(_ resolver: CredentialResolver) async throws -> AWSCredentials {
        guard let keyRef = credentials["accessKeyID"]?.value, let secretRef = credentials["secretAccessKey"]?.value else {
            throw StepError.permanent("provider \(name.value) needs accessKeyID and secretAccessKey (env:, file: or op:// references)")
        }
        var token: String?
        if let reference = credentials["sessionToken"] { token = try await resolver.resolve(reference.value) }
        return AWSCredentials(accessKeyID: try await resolver.resolve(keyRef), secretAccessKey: try await resolver.resolve(secretRef), sessionToken: token)
    }
}
