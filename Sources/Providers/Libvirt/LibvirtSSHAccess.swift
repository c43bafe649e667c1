import Foundation

/// What a failed `qemu+ssh` connection means, in the user's terms. libvirt's ssh transport runs the
/// local `ssh` (with `-o BatchMode=yes` when the URI says `no_tty=1`; libvirt `virnetsocket.c`
/// virNetSocketNewConnectSSH) and passes on OpenSSH's own stderr; Unraid lets only root log in, with
/// keys kept under Users -> root (unraid/webgui `dynamix/UserEdit.page`).
enum LibvirtSSHAccess {
    /// A clearer error for a connection to `uri` that failed with `error`, or the error as it was.
    static func explain(_ error: LibvirtError, uri: String) -> LibvirtError {
        guard uri.hasPrefix("qemu+ssh://"), let components = URLComponents(string: uri), let host = components.host else { return error }
        let user = components.user ?? "root"
        let target = "\(user)@\(host)" + (components.port.map { " (port \($0))" } ?? "")
        let text = error.message
        let why: String
        if text.contains("Host key verification failed") || text.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
            why = "\(host)'s SSH host key is not in known_hosts (or changed): run `ssh \(user)@\(host) true` once, check the fingerprint and accept it"
        } else if text.contains("Permission denied") {
            why = "\(target) refused the key: add your public key to Unraid under Users -> root -> SSH authorized keys, or name the key with `keyfile=` in the URI"
        } else if text.contains("Could not resolve hostname") {
            why = "\(host) does not resolve: use the server's address"
        } else if text.contains("Connection refused") || text.contains("Connection timed out") || text.contains("No route to host") {
            why = "nothing answers SSH at \(host): is the server up, and SSH enabled (Settings -> Management Access)?"
        } else if text.contains("virt-ssh-helper") || text.contains("nc: ") || text.contains("command not found") {
            why = "\(host) has no libvirt to talk to over SSH (no virt-ssh-helper or nc): is the VM service started (Settings -> VM Manager)?"
        } else {
            return error
        }
        return LibvirtError(code: error.code, message: "\(why) (ssh said: \(text.trimmingCharacters(in: .whitespacesAndNewlines)))", operation: error.operation)
    }
}
