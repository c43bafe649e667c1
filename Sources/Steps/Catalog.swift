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
                                   KubeCilium(), KubeFoundation(), KubeVerify(), GPULaunch(), GPUAwaitReady(), GPUDrain(), GPUTerminate(), GPUSweep()] {
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
    ]
}
