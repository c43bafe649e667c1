import Foundation
import KubeKit
import ProvisionCore
import Synchronization

/// The run's Kubernetes client, made once from the admin kubeconfig `talos.kubeconfig` saved, and
/// shut down when the run ends (its HTTP client holds connections).
public final class KubeAccess: Sendable {
    private let client = Mutex<KubeClient?>(nil)
    let stateDirectory: String

    public init(stateDirectory: String) { self.stateDirectory = stateDirectory }

    public static func from(_ context: StepContext) -> KubeAccess {
        context.services[KubeAccess.self] ?? KubeAccess(stateDirectory: context.stateDirectory)
    }

    var kubeconfigPath: String { "\(stateDirectory)/kubeconfig" }

    public func kube() throws -> KubeClient {
        try client.withLock { cached in
            if let cached { return cached }
            guard FileManager.default.fileExists(atPath: kubeconfigPath) else {
                throw StepError.permanent("no kubeconfig at \(kubeconfigPath); the talos.kubeconfig step writes it after etcd is up")
            }
            let made = try KubeClient(config: try Kubeconfig.load(path: kubeconfigPath))
            cached = made
            return made
        }
    }

    public func close() async {
        let made = client.withLock { cached in
            defer { cached = nil }
            return cached
        }
        await made?.shutdown()
    }
}
