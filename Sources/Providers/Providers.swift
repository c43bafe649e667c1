/// Providers: the hands of the orchestrator. Each makes an inventory node's machine exist and run,
/// and removes it on request, behind ProvisionCore's `MachineProvider`: Proxmox over its HTTPS API
/// (Proxmox/), Unraid and the lab through libvirt's C API (Libvirt/), Mac minis by Wake-on-LAN
/// (Metal/), and EC2 over the Query API with our own SigV4 signer (AWS/), for GPU pools.
public enum Providers {}
