/// TalosKit: the Talos machine API client (gRPC over mTLS), the secrets bundle and PKI, machine
/// config rendering and Image Factory schematics. Not built yet; its step kinds are declared in
/// `Steps` so playbooks validate and plan, and running them says they are unavailable.
public enum TalosKit {}
