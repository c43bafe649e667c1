import Foundation
import KubeKit

/// An API server refusal, rendered as a `Status` object with the code and reason Kubernetes uses.
struct APIFailure: Error, Sendable {
    var code: Int
    var reason: String
    var message: String

    static func notFound(_ resource: ServedResource, _ name: String) -> APIFailure {
        APIFailure(code: 404, reason: "NotFound", message: "\(resource.plural)\(resource.group.isEmpty ? "" : "." + resource.group) \"\(name)\" not found")
    }

    var status: JSON {
        .object(["kind": "Status", "apiVersion": "v1", "metadata": .object([:]), "status": "Failure", "message": .string(message),
                 "reason": .string(reason), "code": .int(code)])
    }
}

struct ObjectKey: Hashable, Sendable {
    var group: String
    var plural: String
    var namespace: String?
    var name: String
}

/// The lab API server's objects: create, replace, merge patch, server-side apply with field
/// ownership and conflicts, delete; resource versions, generations and managedFields as the real
/// server keeps them; admission through whatever validating webhooks are registered.
actor KubeStore {
    struct Ownership: Sendable, Equatable {
        var operation: String
        var apiVersion: String
        var fields: Set<FieldPath>
    }

    var objects: [ObjectKey: JSON] = [:]
    var owners: [ObjectKey: [String: Ownership]] = [:]
    var revision = 1000
    private var crdResources: [ServedResource] = []
    let watches = KubeWatches()

    // MARK: Discovery

    var served: [ServedResource] { KubeResourceCatalog.builtIn + crdResources }

    func resource(group: String, version: String, plural: String) -> ServedResource? {
        served.first { $0.group == group && $0.version == version && $0.plural == plural }
    }

    // MARK: Reads

    func get(_ resource: ServedResource, namespace: String?, name: String) throws(APIFailure) -> JSON {
        guard let object = objects[key(resource, namespace, name)] else { throw .notFound(resource, name) }
        return stamped(object, resource)
    }

    func list(_ resource: ServedResource, namespace: String?, labelSelector: String? = nil, fieldSelector: String? = nil) throws(APIFailure) -> JSON {
        let filter = try selection(resource, namespace: namespace, labelSelector: labelSelector, fieldSelector: fieldSelector)
        let items = objects.filter { $0.key.group == resource.group && $0.key.plural == resource.plural }
            .sorted { ($0.key.namespace ?? "", $0.key.name) < ($1.key.namespace ?? "", $1.key.name) }
            .filter { filter.matches(group: $0.key.group, plural: $0.key.plural, namespace: $0.key.namespace, object: stamped($0.value, resource)) }
            .map { stamped($0.value, resource) }
        return .object(["kind": .string(resource.kind + "List"), "apiVersion": .string(resource.groupVersion),
                        "metadata": .object(["resourceVersion": .string("\(revision)")]), "items": .array(items)])
    }

    /// A watch of `resource`'s objects from `resourceVersion` (nil or "0": the current objects first);
    /// nil when that revision is older than the retained window (the client gets 410 Gone).
    func watch(_ resource: ServedResource, namespace: String?, labelSelector: String?, fieldSelector: String?,
               resourceVersion: String?) throws(APIFailure) -> AsyncStream<KubeWatches.Event>? {
        let filter = try selection(resource, namespace: namespace, labelSelector: labelSelector, fieldSelector: fieldSelector)
        if let resourceVersion, !resourceVersion.isEmpty, resourceVersion != "0" {
            guard let revision = Int(resourceVersion) else {
                throw APIFailure(code: 400, reason: "BadRequest", message: "resourceVersion: Invalid value: \"\(resourceVersion)\": must be an integer")
            }
            return watches.subscribe(filter, .after(revision))
        }
        let current = try list(resource, namespace: filter.namespace, labelSelector: labelSelector, fieldSelector: fieldSelector)["items"]?.array ?? []
        return watches.subscribe(filter, .current(current.map { event("ADDED", resource, $0) }))
    }

    /// What a list or watch of `resource` with these arguments selects.
    func selection(_ resource: ServedResource, namespace: String?, labelSelector: String?, fieldSelector: String?) throws(APIFailure) -> KubeWatches.Filter {
        KubeWatches.Filter(group: resource.group, plural: resource.plural, namespace: resource.namespaced ? namespace : nil,
                           labels: try ObjectSelector(labelSelector ?? ""), fields: try ObjectSelector(fieldSelector ?? ""))
    }

    func event(_ type: String, _ resource: ServedResource, _ object: JSON) -> KubeWatches.Event {
        KubeWatches.Event(type: type, group: resource.group, plural: resource.plural, namespace: resource.namespaced ? object.namespace : nil,
                          revision: Int(object[path: "metadata.resourceVersion"]?.string ?? "") ?? revision, object: stamped(object, resource))
    }

    /// Every object of a kind, for the lab's controllers.
    func all(group: String, plural: String) -> [JSON] {
        objects.filter { $0.key.group == group && $0.key.plural == plural }.map(\.value)
    }

    // MARK: Writes

    func create(_ resource: ServedResource, namespace: String?, _ body: JSON, manager: String) async throws(APIFailure) -> JSON {
        let object = try validated(resource, namespace, body)
        let id = key(resource, namespace, object.name)
        guard objects[id] == nil else {
            throw APIFailure(code: 409, reason: "AlreadyExists", message: "\(resource.plural) \"\(object.name)\" already exists")
        }
        try admit(resource, object)
        return write(resource, id, object, previous: nil, manager: manager, operation: "Update", owned: FieldPaths.leaves(object))
    }

    func replace(_ resource: ServedResource, namespace: String?, name: String, _ body: JSON, manager: String) async throws(APIFailure) -> JSON {
        let id = key(resource, namespace, name)
        guard let existing = objects[id] else { return try await create(resource, namespace: namespace, body, manager: manager) }
        var object = try validated(resource, namespace, body)
        if let wanted = body[path: "metadata.resourceVersion"]?.string, wanted != existing[path: "metadata.resourceVersion"]?.string {
            throw APIFailure(code: 409, reason: "Conflict", message: "Operation cannot be fulfilled on \(resource.plural) \"\(name)\": the object has been modified; please apply your changes to the latest version and try again")
        }
        object["status"] = existing["status"]
        try admit(resource, object)
        return write(resource, id, object, previous: existing, manager: manager, operation: "Update", owned: FieldPaths.changed(existing, object))
    }

    func mergePatch(_ resource: ServedResource, namespace: String?, name: String, _ patch: JSON, manager: String) async throws(APIFailure) -> JSON {
        let id = key(resource, namespace, name)
        guard let existing = objects[id] else { throw .notFound(resource, name) }
        let object = try validated(resource, namespace, Self.merge(existing, patch))
        try admit(resource, object)
        return write(resource, id, object, previous: existing, manager: manager, operation: "Update", owned: FieldPaths.changed(existing, object))
    }

    /// Server-side apply: the manager's configuration becomes exactly the set of fields it owns.
    /// Fields it set before and dropped now are removed unless another manager owns them; a field
    /// another manager owns with a different value is a conflict unless forced.
    func apply(_ resource: ServedResource, namespace: String?, name: String, _ config: JSON, manager: String, force: Bool) async throws(APIFailure) -> (JSON, Bool) {
        guard config.name == name else {
            throw APIFailure(code: 400, reason: "BadRequest", message: "the name of the object (\(config.name)) does not match the name on the URL (\(name))")
        }
        let id = key(resource, namespace, name)
        let fields = FieldPaths.leaves(config)
        guard let existing = objects[id] else {
            let object = try validated(resource, namespace, config)
            try admit(resource, object)
            return (write(resource, id, object, previous: nil, manager: manager, operation: "Apply", owned: fields), true)
        }
        var managers = owners[id] ?? [:]
        var conflicts: [String] = []
        for (other, ownership) in managers where other != manager {
            for path in fields.intersection(ownership.fields)
            where FieldPaths.value(existing, at: path) != FieldPaths.value(config, at: path) {
                conflicts.append("conflict with \"\(other)\": \(FieldPaths.dotted(path))")
            }
        }
        if !conflicts.isEmpty && !force {
            throw APIFailure(code: 409, reason: "Conflict", message: "Apply failed with \(conflicts.count) conflict\(conflicts.count == 1 ? "" : "s"): " + conflicts.sorted().joined(separator: "\n"))
        }
        var object = existing
        let othersOwn = managers.filter { $0.key != manager }.values.reduce(into: Set<FieldPath>()) { $0.formUnion($1.fields) }
        for dropped in (managers[manager]?.fields ?? []).subtracting(fields) where !othersOwn.contains(dropped) {
            object = FieldPaths.removing(object, dropped)
        }
        for path in fields { object = FieldPaths.setting(object, path, FieldPaths.value(config, at: path) ?? .null) }
        object = try validated(resource, namespace, object)
        try admit(resource, object)
        for other in managers.keys where other != manager { managers[other]?.fields.subtract(fields) }
        owners[id] = managers.filter { !$0.value.fields.isEmpty }
        return (write(resource, id, object, previous: existing, manager: manager, operation: "Apply", owned: fields, replaceOwned: true), false)
    }

    func delete(_ resource: ServedResource, namespace: String?, name: String) throws(APIFailure) -> JSON {
        let id = key(resource, namespace, name)
        guard let existing = objects.removeValue(forKey: id) else { throw .notFound(resource, name) }
        owners[id] = nil
        revision += 1
        var gone = existing
        gone.set("metadata.resourceVersion", .string("\(revision)"))
        watches.publish(event("DELETED", resource, gone))
        if resource.kind == "CustomResourceDefinition" { crdResources.removeAll { $0.group == existing[path: "spec.group"]?.string && $0.kind == existing[path: "spec.names.kind"]?.string } }
        if resource.kind == "Namespace" { objects = objects.filter { $0.key.namespace != name } }
        return stamped(existing, resource)
    }

    /// What the lab's controllers write: status, or a whole object they own (no field ownership).
    /// An object read at an older resourceVersion is a conflict, as on a real API server: the write
    /// is dropped and the controller writes again from a fresh read on its next tick (a kubelet
    /// posting status never undoes a cordon made since it read the Node).
    func controllerWrite(_ resource: ServedResource, _ object: JSON) {
        let id = key(resource, resource.namespaced ? object.namespace : nil, object.name)
        guard objects[id] != object else { return }
        if let current = objects[id], let read = object[path: "metadata.resourceVersion"]?.string,
           read != current[path: "metadata.resourceVersion"]?.string { return }
        // An update of an object deleted since it was read is NotFound, as kube-apiserver answers a
        // PUT: a controller never brings back what a client deleted meanwhile.
        if objects[id] == nil, object[path: "metadata.resourceVersion"]?.string != nil { return }
        var stored = object
        revision += 1
        stored.set("metadata.resourceVersion", .string("\(revision)"))
        let type = objects[id] == nil ? "ADDED" : "MODIFIED"
        if objects[id] == nil { stored = Self.fresh(stored) }
        objects[id] = stored
        watches.publish(event(type, resource, stored))
        if resource.kind == "CustomResourceDefinition", object.condition("Established") == "True" { register(crd: object) }
    }

    // MARK: Internals

    private func key(_ resource: ServedResource, _ namespace: String?, _ name: String) -> ObjectKey {
        ObjectKey(group: resource.group, plural: resource.plural, namespace: resource.namespaced ? namespace : nil, name: name)
    }

    func register(crd: JSON) {
        for served in KubeResourceCatalog.resources(of: crd) where !crdResources.contains(served) {
            crdResources.removeAll { $0.group == served.group && $0.version == served.version && $0.plural == served.plural }
            crdResources.append(served)
        }
    }

    /// Checks identity and shape the way the API server's validation does, and normalises Secrets
    /// (`stringData` folded into base64 `data`).
    private func validated(_ resource: ServedResource, _ namespace: String?, _ body: JSON) throws(APIFailure) -> JSON {
        var object = body
        if object.kind.isEmpty { object["kind"] = .string(resource.kind) }
        if object.apiVersion.isEmpty { object["apiVersion"] = .string(resource.groupVersion) }
        guard object.kind == resource.kind, object.apiVersion == resource.groupVersion else {
            throw APIFailure(code: 400, reason: "BadRequest", message: "the API version in the data (\(object.apiVersion)) does not match the expected API version (\(resource.groupVersion)) or kind \(object.kind) is not \(resource.kind)")
        }
        let name = object.name
        guard name.range(of: #"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"#, options: .regularExpression) != nil, name.count <= 253 else {
            throw APIFailure(code: 422, reason: "Invalid", message: "\(resource.kind) \"\(name)\" is invalid: metadata.name: Invalid value: \"\(name)\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'")
        }
        if resource.namespaced {
            let ns = namespace ?? "default"
            if let given = object.namespace, given != ns {
                throw APIFailure(code: 400, reason: "BadRequest", message: "the namespace of the provided object does not match the namespace sent on the request")
            }
            object.set("metadata.namespace", .string(ns))
            guard objects[ObjectKey(group: "", plural: "namespaces", namespace: nil, name: ns)] != nil else {
                throw APIFailure(code: 404, reason: "NotFound", message: "namespaces \"\(ns)\" not found")
            }
        }
        if resource.kind == "Secret" {
            var data = object["data"]?.object ?? [:]
            for (key, value) in data {
                guard let text = value.string, Data(base64Encoded: text) != nil else {
                    throw APIFailure(code: 400, reason: "BadRequest", message: "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 0 (key \(key))")
                }
            }
            for (key, value) in object["stringData"]?.object ?? [:] { data[key] = .string(Data((value.string ?? "").utf8).base64EncodedString()) }
            object["stringData"] = nil
            if !data.isEmpty { object["data"] = .object(data) }
        }
        return object
    }

    /// Validating webhooks that match the resource must be reachable: a webhook whose Service has no
    /// ready endpoints fails the request, as the real API server does (unless failurePolicy Ignore).
    private func admit(_ resource: ServedResource, _ object: JSON) throws(APIFailure) {
        for configuration in all(group: "admissionregistration.k8s.io", plural: "validatingwebhookconfigurations") {
            for webhook in configuration["webhooks"]?.array ?? [] where webhook["failurePolicy"]?.string != "Ignore" {
                let matches = (webhook["rules"]?.array ?? []).contains { rule in
                    let groups = rule["apiGroups"]?.array?.compactMap(\.string) ?? []
                    let plurals = rule["resources"]?.array?.compactMap(\.string) ?? []
                    return (groups.contains("*") || groups.contains(resource.group)) && (plurals.contains("*") || plurals.contains(resource.plural))
                }
                guard matches, let service = webhook[path: "clientConfig.service"], let serviceName = service["name"]?.string else { continue }
                let serviceNamespace = service["namespace"]?.string ?? "default"
                let endpoints = objects[ObjectKey(group: "", plural: "endpoints", namespace: serviceNamespace, name: serviceName)]
                let ready = endpoints?["subsets"]?.array?.contains { !($0["addresses"]?.array ?? []).isEmpty } ?? false
                if !ready {
                    let hook = webhook["name"]?.string ?? "webhook"
                    throw APIFailure(code: 500, reason: "InternalError", message: "Internal error occurred: failed calling webhook \"\(hook)\": failed to call webhook: Post \"https://\(serviceName).\(serviceNamespace).svc:443/validate\": no endpoints available for service \"\(serviceName)\"")
                }
            }
        }
    }

    private func write(_ resource: ServedResource, _ id: ObjectKey, _ object: JSON, previous: JSON?, manager: String, operation: String,
                       owned: Set<FieldPath>, replaceOwned: Bool = false) -> JSON {
        var managers = owners[id] ?? [:]
        if !owned.isEmpty || replaceOwned {
            if operation == "Update" { for other in managers.keys where other != manager { managers[other]?.fields.subtract(owned) } }
            var mine = managers[manager] ?? Ownership(operation: operation, apiVersion: resource.groupVersion, fields: [])
            mine.operation = operation
            mine.fields = replaceOwned ? owned : mine.fields.union(owned)
            managers[manager] = mine
        }
        managers = managers.filter { !$0.value.fields.isEmpty }
        var stored = object
        if let previous {
            for field in ["uid", "creationTimestamp", "generation", "resourceVersion", "managedFields"] {
                if let value = previous[path: "metadata.\(field)"] { stored.set("metadata.\(field)", value) }
            }
            // A write that changes nothing (a re-apply) keeps the resource version, as the real server does.
            if stored == previous && managers == owners[id] ?? [:] { return stamped(previous, resource) }
            let specChanged = FieldPaths.changed(previous, stored).contains { $0.first != "metadata" && $0.first != "status" }
            if specChanged { stored.set("metadata.generation", .int((previous[path: "metadata.generation"]?.int ?? 1) + 1)) }
        }
        revision += 1
        if previous == nil { stored = Self.fresh(stored) }
        stored.set("metadata.resourceVersion", .string("\(revision)"))
        owners[id] = managers
        let now = Self.timestamp(Date())
        stored.set("metadata.managedFields", .array(managers.sorted { $0.key < $1.key }.map { name, ownership in
            .object(["manager": .string(name), "operation": .string(ownership.operation), "apiVersion": .string(ownership.apiVersion),
                     "time": .string(now), "fieldsType": "FieldsV1", "fieldsV1": FieldPaths.fieldsV1(ownership.fields)])
        }))
        objects[id] = stored
        watches.publish(event(previous == nil ? "ADDED" : "MODIFIED", resource, stored))
        return stamped(stored, resource)
    }

    private func stamped(_ object: JSON, _ resource: ServedResource) -> JSON {
        var object = object
        object["apiVersion"] = .string(resource.groupVersion)
        object["kind"] = .string(resource.kind)
        return object
    }

    static func fresh(_ object: JSON) -> JSON {
        var object = object
        object.set("metadata.uid", .string(UUID().uuidString.lowercased()))
        object.set("metadata.creationTimestamp", .string(timestamp(Date())))
        object.set("metadata.generation", .int(1))
        return object
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    /// JSON merge patch (RFC 7386): null removes, objects merge, anything else replaces.
    static func merge(_ base: JSON, _ patch: JSON) -> JSON {
        guard case let .object(changes) = patch else { return patch }
        var members = base.object ?? [:]
        for (key, value) in changes {
            if value == .null { members[key] = nil } else { members[key] = merge(members[key] ?? .null, value) }
        }
        return .object(members)
    }
}

extension KubeStore {
    /// Every object with its field owners: what etcd would hold for the API server.
    func snapshot() -> TwinSnapshot.KubeState {
        TwinSnapshot.KubeState(objects: objects.sorted { "\($0.key)" < "\($1.key)" }.map { key, object in
            .init(group: key.group, plural: key.plural, namespace: key.namespace, name: key.name, object: object,
                  owners: (owners[key] ?? [:]).mapValues { .init(operation: $0.operation, apiVersion: $0.apiVersion, fields: $0.fields.map { $0 }) })
        }, revision: revision)
    }

    /// etcd's keyspace is gone (every member's data destroyed): nothing is left, not even the
    /// namespaces, until an API server starts against a fresh etcd or a snapshot is restored.
    func wipeAll() {
        objects = [:]
        owners = [:]
        crdResources = []
        revision += 1
        watches.reset(at: revision)
    }

    /// What kube-apiserver creates at start against an empty etcd: the system namespaces, each
    /// with a new UID (the kube-system UID is what tools take as the cluster's identity).
    func seedNamespaces() {
        for namespace in ["default", "kube-system", "kube-public", "kube-node-lease"]
            where objects[ObjectKey(group: "", plural: "namespaces", namespace: nil, name: namespace)] == nil {
            controllerWrite(KubeResourceCatalog.builtIn[0], .object([
                "apiVersion": "v1", "kind": "Namespace", "metadata": .object(["name": .string(namespace)]),
                "status": .object(["phase": "Active"]),
            ]))
        }
    }

    /// `count` ConfigMaps of `bytes` bytes of data each in `namespace` (made if missing), written as a
    /// controller writes: a big keyspace to rehearse against (backups, lists). Returns how many were new.
    func load(namespace: String, count: Int, bytes: Int) -> Int {
        let namespaces = KubeResourceCatalog.builtIn.first { $0.plural == "namespaces" }!
        let configMaps = KubeResourceCatalog.builtIn.first { $0.plural == "configmaps" }!
        controllerWrite(namespaces, .object(["apiVersion": "v1", "kind": "Namespace", "metadata": .object(["name": .string(namespace)]),
                                             "status": .object(["phase": "Active"])]))
        let value = JSON.string(String(repeating: "x", count: bytes))
        var made = 0
        for index in 1...max(1, count) {
            let name = String(format: "load-%06d", index)
            guard objects[key(configMaps, namespace, name)] == nil else { continue }
            controllerWrite(configMaps, .object(["apiVersion": "v1", "kind": "ConfigMap",
                                                 "metadata": .object(["name": .string(name), "namespace": .string(namespace)]),
                                                 "data": .object(["value": value])]))
            made += 1
        }
        return made
    }

    /// A snapshot restored into a fresh etcd: exactly its objects, nothing written since.
    func replaceAll(_ state: TwinSnapshot.KubeState) {
        wipeAll()
        restore(state)
        revision = max(revision, state.revision) + 1
        watches.reset(at: revision)
    }

    func restore(_ state: TwinSnapshot.KubeState) {
        for item in state.objects {
            let key = ObjectKey(group: item.group, plural: item.plural, namespace: item.namespace, name: item.name)
            objects[key] = item.object
            owners[key] = item.owners.mapValues { Ownership(operation: $0.operation, apiVersion: $0.apiVersion, fields: Set($0.fields)) }
            if item.plural == "customresourcedefinitions", item.object.condition("Established") == "True" { register(crd: item.object) }
        }
        revision = max(revision, state.revision)
        watches.reset(at: revision)
    }
}
