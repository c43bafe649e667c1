/// TalosKit: everything provision knows about Talos. The machine API client (gRPC over Ed25519 mTLS,
/// `Client/`), the secrets bundle, PKI and age encryption (`Secrets/`, `Age/`), machine-config
/// rendering with Talos' own schemas (`Config/`), Image Factory schematics (`Images/`) and the
/// protoc output it is built on (`Generated/`, from protos/ by scripts/gen-protos).
public enum TalosKit {}
