import Foundation
import Providers

/// The lab's EC2 Query endpoint: plain HTTP on a loopback address (as moto serves), every request
/// checked for a valid SigV4 signature from the lab's key pair before it reaches `SimulatedEC2`.
public final class LabEC2Server: Sendable {
    let server: LabHTTPServer
    public var port: Int { server.port }

    public init(host: String, port: Int, ec2: SimulatedEC2, credentials: AWSCredentials, region: String) async throws {
        let verifier = SigV4Verifier(credentials: credentials, region: region)
        server = try await LabHTTPServer(host: host, port: port) { request in
            let (status, xml) = await Self.answer(request, ec2: ec2, verifier: verifier)
            return LabHTTPResponse(status: status, contentType: "text/xml;charset=UTF-8", body: Data(xml.utf8))
        }
    }

    public func close() async { await server.close() }

    static func answer(_ request: LabHTTPRequest, ec2: SimulatedEC2, verifier: SigV4Verifier) async -> (Int, String) {
        let requestID = UUID().uuidString.lowercased()
        let headers = request.headers.map { ($0.name, $0.value) }
        if let failure = verifier.verify(method: request.method.rawValue, path: request.path, query: request.query, headers: headers, body: request.body) {
            return (failure.status, EC2XML.error(code: failure.code, message: failure.message, requestID: requestID))
        }
        let form = request.method == .POST ? String(decoding: request.body, as: UTF8.self) : request.query
        do {
            let (action, xml) = try await ec2.perform(QueryParameters(form: form))
            if !action.hasPrefix("Describe") {
                ec2.cluster.directory.record.mutation("ec2", action)
                await ec2.cluster.directory.commit()
            }
            return (200, EC2XML.response(action, requestID: requestID, xml))
        } catch {
            return (error.status, EC2XML.error(code: error.code, message: error.message, requestID: requestID))
        }
    }
}

extension SimulatedEC2 {
    /// Dispatches one Query action. Unknown actions are EC2's `InvalidAction`.
    func perform(_ p: QueryParameters) async throws(Failure) -> (String, [EC2XML]) {
        let action = try p.required("Action")
        switch action {
        case "RunInstances": return (action, try await runInstances(p))
        case "DescribeInstances": return (action, try describeInstances(p))
        case "TerminateInstances": return (action, try await terminateInstances(p))
        case "CreateTags": return (action, try createTags(p))
        case "CancelSpotInstanceRequests": return (action, try cancelSpotInstanceRequests(p))
        case "DescribeSpotInstanceRequests": return (action, try describeSpotInstanceRequests(p))
        default: throw Failure(code: "InvalidAction", message: "The action \(action) is not valid for this web service.")
        }
    }
}
