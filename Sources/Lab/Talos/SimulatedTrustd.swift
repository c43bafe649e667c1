/// Talos' trustd as the lab needs it: workers have the OS CA certificate but not its key, and get
/// their API server certificate signed by a control plane. Control planes register here when they
/// run; a worker waits until one has.
public actor SimulatedTrustd {
    private var keys: [String: String] = [:]

    public init() {}

    func register(certificate: String, key: String) { keys[certificate] = key }

    func key(for certificate: String) -> String? { keys[certificate] }
}
