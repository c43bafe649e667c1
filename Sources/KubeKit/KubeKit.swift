/// KubeKit: a small Kubernetes client for the Cilium and secrets-foundation steps and the GPU
/// lifecycle: kubeconfig parsing, HTTPS with the cluster CA and a client certificate, discovery,
/// server-side apply, get/list/delete, waits, cordon/drain with PodDisruptionBudgets respected.
public enum KubeKit {}
