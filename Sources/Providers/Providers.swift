/// Providers: implementations of `ProvisionCore.MachineProvider` for Proxmox VE, libvirt (Unraid),
/// bare-metal Mac minis (Wake-on-LAN) and AWS EC2. Not built yet.
public enum Providers {}
