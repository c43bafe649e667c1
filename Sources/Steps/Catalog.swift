import ProvisionCore

/// The step kinds playbooks may name, every one of them built. (The catalog can also hold kinds that
/// are only declared, known to validation and `plan`; running one fails up front, saying so.)
public enum StandardCatalog {
    public static func make() -> StepCatalog {
        var catalog = StepCatalog()
        catalog.register(LocalExec())
        catalog.register(TalosSecrets())
        for kind: any StepKind in [TalosAwaitMaintenance(), TalosApplyConfig(), TalosAwaitConfigured(), TalosBootstrap(), TalosAwaitEtcd(),
                                   TalosKubeconfig(), TalosEtcdSnapshot(), TalosReset(), TalosReboot(), MachinePreflight(), MachineEnsure(), MachineDelete(),
                                   KubeCilium(), KubeFoundation(), KubeVerify(), GPULaunch(), GPUAwaitReady(), GPUDrain(), GPUTerminate(), GPURemoveNodes(), GPUSweep(),
                                   TalosIdentityCheck(), TalosQuorumCheck(), Confirm(), KubeCordon(), KubeDeleteNode(), KubeUncordon(),
                                   TalosRemovalCheck(), TalosLeave(), ClusterOrphans(), TalosUpgrade(), KubeUpgrade(),
                                   BackupTake(), BackupPrune(), EtcdRestoreCheck(), BackupFetch(), TalosEtcdWipe(), TalosEtcdRecover(), RestoreFinish(), TalosEtcdReseed()] {
            catalog.register(kind)
        }
        return catalog
    }
}
