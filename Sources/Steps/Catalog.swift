import ProvisionCore

/// The step kinds playbooks may name. Declared kinds are known to validation and `plan` even before
/// this build can run them; running one that is not implemented fails up front, saying so plainly.
public enum StandardCatalog {
    public static func make() -> StepCatalog {
        var catalog = StepCatalog()
        for info in declared { catalog.declare(info) }
        catalog.register(LocalExec())
        catalog.register(TalosSecrets())
        for kind: any StepKind in [TalosAwaitMaintenance(), TalosApplyConfig(), TalosAwaitConfigured(), TalosBootstrap(), TalosAwaitEtcd(),
                                   TalosKubeconfig(), TalosEtcdSnapshot(), TalosReset(), MachineEnsure(), MachineDelete(),
                                   KubeCilium(), KubeFoundation(), KubeVerify()] {
            catalog.register(kind)
        }
        return catalog
    }

    static let declared: [StepKindInfo] = [
        StepKindInfo(name: "talos.identity-check", summary: "refuse unless the node answering is the node the inventory names", estimate: .seconds(2), scope: .node, mutates: false),
        StepKindInfo(name: "talos.quorum-check", summary: "refuse if removing the node would break etcd quorum or the cluster is unhealthy", estimate: .seconds(3), scope: .node, mutates: false, parameters: ["force"]),
        StepKindInfo(name: "kube.cordon", summary: "cordon and drain a node, respecting PodDisruptionBudgets", estimate: .seconds(60), scope: .node),
        StepKindInfo(name: "kube.delete-node", summary: "delete the Node object", estimate: .seconds(3), scope: .node),
        StepKindInfo(name: "kube.uncordon", summary: "make the node schedulable again", estimate: .seconds(3), scope: .node),
        StepKindInfo(name: "confirm", summary: "ask for a typed confirmation unless --yes", estimate: .seconds(5), scope: .any, mutates: false, parameters: ["prompt"]),
        StepKindInfo(name: "gpu.launch", summary: "launch (or find) the pool's tagged instance with the worker config as user-data", estimate: .seconds(90), scope: .cluster, parameters: ["ttl"]),
        StepKindInfo(name: "gpu.await-ready", summary: "wait for the GPU worker to join and turn Ready", estimate: .seconds(240), scope: .cluster, mutates: false),
        StepKindInfo(name: "gpu.drain", summary: "cordon and drain the pool's nodes and delete their Node objects", estimate: .seconds(60), scope: .cluster),
        StepKindInfo(name: "gpu.terminate", summary: "cancel spot requests, terminate the pool's instances and verify nothing is left", estimate: .seconds(60), scope: .cluster),
        StepKindInfo(name: "gpu.sweep", summary: "terminate every tagged instance past its expiry or max lifetime; remove orphaned Nodes", estimate: .seconds(30), scope: .cluster),
    ]
}
