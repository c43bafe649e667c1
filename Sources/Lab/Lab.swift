/// Lab: the digital twin behind `provision up demo` (simulated Talos nodes, a Kubernetes API, an EC2
/// endpoint and a Wake-on-LAN listener, all on loopback). Not built yet; `provision lab serve` says so.
public enum Lab {}
