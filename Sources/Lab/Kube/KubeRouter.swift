import Foundation
import KubeKit
import NIOHTTP1
import TalosKit

/// Maps kube-apiserver's URL space onto the store: discovery, `/version`, and for every served kind
/// get/list/create/replace/patch (server-side apply, merge patch)/delete, `status` and pod eviction.
struct KubeRouter: Sendable {
    let store: KubeStore
    let kubernetesVersion: String
    let endpoint: String
    /// Where the control planes are: `/version` answers with the oldest kube-apiserver that runs
    /// (during a rolling upgrade the load balancer may land on either).
    var directory: SimulatedDirectory?

    func serverVersion() async -> String {
        var versions: [String] = []
        for machine in await directory?.all ?? [] {
            for component in await machine.componentStatus where component.name == "kube-apiserver" && component.ready { versions.append(component.version) }
        }
        return versions.compactMap(KubernetesReleases.Version.init).min()?.description ?? kubernetesVersion
    }

    func respond(_ request: LabHTTPRequest) async -> LabHTTPResponse {
        guard let client = request.client else { return reply(APIFailure(code: 401, reason: "Unauthorized", message: "Unauthorized").status, 401) }
        let parts = request.path.split(separator: "/").map { String($0).removingPercentEncoding ?? String($0) }
        do {
            if let answer = try await discovery(parts, request) { return answer }
            guard client.groups.contains("system:masters") else {
                throw APIFailure(code: 403, reason: "Forbidden", message: "User \"\(client.user)\" cannot \(request.method.rawValue.lowercased()) \(request.path)")
            }
            return try await resource(parts, request, manager: Self.query(request.query)["fieldManager"] ?? client.user)
        } catch let failure as APIFailure {
            return reply(failure.status, failure.code)
        } catch {
            return reply(APIFailure(code: 500, reason: "InternalError", message: "\(error)").status, 500)
        }
    }

    // MARK: Discovery

    func discovery(_ parts: [String], _ request: LabHTTPRequest) async throws -> LabHTTPResponse? {
        guard request.method == .GET else { return nil }
        let served = await store.served
        switch parts {
        case ["version"]:
            let gitVersion = await serverVersion()
            let version = gitVersion.dropFirst().split(separator: ".")
            return reply(.object(["major": .string(String(version.first ?? "1")), "minor": .string(String(version.dropFirst().first ?? "0")),
                                  "gitVersion": .string(gitVersion), "platform": "linux/amd64", "goVersion": "go1.24"]))
        case ["healthz"], ["readyz"], ["livez"]:
            return LabHTTPResponse(status: 200, contentType: "text/plain", body: Data("ok".utf8))
        case ["api"]:
            return reply(.object(["kind": "APIVersions", "versions": ["v1"],
                                  "serverAddressByClientCIDRs": [.object(["clientCIDR": "0.0.0.0/0", "serverAddress": .string(endpoint)])]]))
        case ["apis"]:
            return reply(.object(["kind": "APIGroupList", "apiVersion": "v1", "groups": .array(groups(served))]))
        case ["api", "v1"]:
            return reply(resourceList("v1", served.filter { $0.group.isEmpty }))
        case ["openapi", "v3"]:
            return reply(KubeOpenAPI.index(served))
        default:
            if parts.count == 2, parts[0] == "apis", let group = groups(served).first(where: { $0["name"]?.string == parts[1] }) {
                var object = group
                object["kind"] = "APIGroup"
                object["apiVersion"] = "v1"
                return reply(object)
            }
            if parts.count >= 4, parts[0] == "openapi", parts[1] == "v3" {
                let groupVersion = parts[2] == "api" ? parts[3] : parts.dropFirst(3).joined(separator: "/")
                return reply(KubeOpenAPI.document(groupVersion, served))
            }
            if parts.count == 3, parts[0] == "apis" {
                let list = served.filter { $0.group == parts[1] && $0.version == parts[2] }
                if list.isEmpty { throw APIFailure(code: 404, reason: "NotFound", message: "the server could not find the requested resource") }
                return reply(resourceList("\(parts[1])/\(parts[2])", list))
            }
            return nil
        }
    }

    func groups(_ served: [ServedResource]) -> [JSON] {
        var order: [String] = []
        var versions: [String: [String]] = [:]
        for resource in served where !resource.group.isEmpty {
            if versions[resource.group] == nil { order.append(resource.group) }
            if !(versions[resource.group] ?? []).contains(resource.version) { versions[resource.group, default: []].append(resource.version) }
        }
        return order.map { group in
            let list = (versions[group] ?? []).map { JSON.object(["groupVersion": .string("\(group)/\($0)"), "version": .string($0)]) }
            return .object(["name": .string(group), "versions": .array(list), "preferredVersion": list.first ?? .null])
        }
    }

    func resourceList(_ groupVersion: String, _ list: [ServedResource]) -> JSON {
        .object(["kind": "APIResourceList", "apiVersion": "v1", "groupVersion": .string(groupVersion),
                 "resources": .array(list.flatMap { $0.discovery.array ?? [] })])
    }

    // MARK: Objects

    func resource(_ parts: [String], _ request: LabHTTPRequest, manager: String) async throws -> LabHTTPResponse {
        let (group, version, rest): (String, String, ArraySlice<String>)
        if parts.count >= 3, parts[0] == "api" { (group, version, rest) = ("", parts[1], parts[2...]) } else if parts.count >= 4, parts[0] == "apis" {
            (group, version, rest) = (parts[1], parts[2], parts[3...])
        } else {
            throw APIFailure(code: 404, reason: "NotFound", message: "the server could not find the requested resource")
        }
        var segments = Array(rest)
        var namespace: String?
        if segments.count >= 3, segments[0] == "namespaces", await store.resource(group: group, version: version, plural: segments[2])?.namespaced == true {
            namespace = segments[1]
            segments.removeFirst(2)
        }
        guard let resource = await store.resource(group: group, version: version, plural: segments[0]) else {
            throw APIFailure(code: 404, reason: "NotFound", message: "the server could not find the requested resource")
        }
        let name = segments.count > 1 ? segments[1] : nil
        let sub = segments.count > 2 ? segments[2] : nil
        let query = Self.query(request.query)
        let table = (request.headers.first(name: "Accept") ?? "").contains("as=Table")
        switch (request.method, name, sub) {
        case (.GET, nil, _) where query["watch"] == "true" || query["watch"] == "1":
            let events = try await store.watch(resource, namespace: namespace, labelSelector: query["labelSelector"], fieldSelector: query["fieldSelector"],
                                               resourceVersion: query["resourceVersion"])
            return Self.watchResponse(events, resource: resource, table: table, timeout: .seconds(Int(query["timeoutSeconds"] ?? "") ?? 1800))
        case (.GET, nil, _):
            let list = try await store.list(resource, namespace: namespace, labelSelector: query["labelSelector"], fieldSelector: query["fieldSelector"])
            return reply(table ? KubeTables.table(resource, list["items"]?.array ?? []) : list)
        case let (.GET, name?, _):
            let object = try await store.get(resource, namespace: namespace, name: name)
            return reply(table ? KubeTables.table(resource, [object]) : object)
        case (.POST, nil, _):
            return reply(try await store.create(resource, namespace: namespace, try body(request), manager: manager), 201)
        case let (.POST, name?, "eviction") where resource.kind == "Pod":
            return reply(try await KubeEviction.evict(store: store, namespace: namespace ?? "default", pod: name), 201)
        case let (.PUT, name?, "status"):
            var object = try await store.get(resource, namespace: namespace, name: name)
            object["status"] = try body(request)["status"]
            await store.controllerWrite(resource, object)
            return reply(try await store.get(resource, namespace: namespace, name: name))
        case let (.PUT, name?, nil):
            return reply(try await store.replace(resource, namespace: namespace, name: name, try body(request), manager: manager))
        case let (.PATCH, name?, nil):
            let type = request.headers.first(name: "Content-Type") ?? ""
            if type.hasPrefix("application/apply-patch") {
                guard query["fieldManager"] != nil else {
                    throw APIFailure(code: 400, reason: "BadRequest", message: "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch")
                }
                let (object, created) = try await store.apply(resource, namespace: namespace, name: name, try body(request), manager: manager,
                                                              force: query["force"] == "true")
                return reply(object, created ? 201 : 200)
            }
            guard type.hasPrefix("application/merge-patch") || type.hasPrefix("application/strategic-merge-patch") else {
                throw APIFailure(code: 415, reason: "UnsupportedMediaType", message: "the lab accepts apply, merge and strategic-merge patches, not \(type)")
            }
            return reply(try await store.mergePatch(resource, namespace: namespace, name: name, try body(request), manager: manager))
        case let (.DELETE, name?, nil):
            return reply(try await store.delete(resource, namespace: namespace, name: name))
        default:
            throw APIFailure(code: 405, reason: "MethodNotAllowed", message: "\(request.method.rawValue) is not supported on \(request.path)")
        }
    }

    func body(_ request: LabHTTPRequest) throws(APIFailure) -> JSON {
        if request.headers.first(name: "Content-Type")?.hasPrefix(KubeProtobuf.contentType) == true {
            do { return try KubeProtobuf.decode(request.body) } catch {
                throw APIFailure(code: 415, reason: "UnsupportedMediaType", message: error.message)
            }
        }
        guard let object = try? Manifest.value(String(decoding: request.body, as: UTF8.self)), object.object != nil else {
            throw APIFailure(code: 400, reason: "BadRequest", message: "the request body is not a JSON or YAML object")
        }
        return object
    }

    static func query(_ text: String) -> [String: String] {
        var values: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0) }
            values[parts[0]] = parts.count > 1 ? parts[1] : ""
        }
        return values
    }

    /// A watch's reply: one JSON event per line (`{"type":..., "object":...}`) as changes happen,
    /// until `timeout` (the request's timeoutSeconds); an expired start is a single ERROR event
    /// carrying 410 Expired, as kube-apiserver answers it.
    static func watchResponse(_ events: AsyncStream<KubeWatches.Event>?, resource: ServedResource, table: Bool, timeout: Duration) -> LabHTTPResponse {
        func line(_ type: String, _ object: JSON) -> Data { JSON.object(["type": .string(type), "object": object]).data() + Data("\n".utf8) }
        guard let events else {
            let expired = APIFailure(code: 410, reason: "Expired", message: "too old resource version")
            return LabHTTPResponse(status: 200, contentType: "application/json", body: line("ERROR", expired.status))
        }
        let (stream, continuation) = AsyncStream<Data>.makeStream(bufferingPolicy: .unbounded)
        let pump = Task {
            for await event in events {
                continuation.yield(line(event.type, table ? KubeTables.table(resource, [event.object]) : event.object))
            }
            continuation.finish()
        }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            continuation.finish()
        }
        continuation.onTermination = { _ in
            pump.cancel()
            timer.cancel()
        }
        return LabHTTPResponse(status: 200, contentType: "application/json", body: Data(), stream: stream)
    }

    func reply(_ object: JSON, _ status: Int = 200) -> LabHTTPResponse {
        LabHTTPResponse(status: status, contentType: "application/json", body: object.data())
    }
}
