/// Providers: the hands of the orchestrator. Built so far: the EC2 Query client with our own SigV4
/// signer (AWS/), the libvirt binding and Talos domain XML (Libvirt/), Wake-on-LAN (Metal/).
/// Proxmox and the `MachineProvider` implementations that step kinds use come next.
public enum Providers {}
