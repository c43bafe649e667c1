/// KubeKit: a small Kubernetes client (kubeconfig, server-side apply, get/list/delete, waits,
/// eviction) for the Cilium and secrets-foundation steps. Not built yet.
public enum KubeKit {}
