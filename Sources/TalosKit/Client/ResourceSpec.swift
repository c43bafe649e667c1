import Foundation
import Yams

/// A COSI resource's YAML spec, its top-level fields read as the text Talos wrote: Talos' go-yaml
/// writes YAML 1.2, and Yams' YAML 1.1 resolution would take an unquoted MAC such as
/// `52:54:00:00:00:11` for a base-60 number.
struct ResourceSpec {
    let root: Node.Mapping

    init(_ yaml: String, kind: String) throws {
        guard let root = try Yams.compose(yaml: yaml)?.mapping else {
            throw TalosError.other(code: "decode", message: "\(kind) spec is not a YAML mapping")
        }
        self.root = root
    }

    /// The field's text; empty when it is absent or not a scalar.
    func text(_ key: String) -> String { root[key]?.scalar?.string ?? "" }
}
