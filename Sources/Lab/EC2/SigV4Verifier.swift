import Foundation
import Providers

/// Checks an incoming request's SigV4 signature the way EC2 does, by signing the same canonical
/// request with the key pair the lab issued: an unknown key is AuthFailure, a wrong secret or a
/// tampered request SignatureDoesNotMatch.
struct SigV4Verifier: Sendable {
    let credentials: AWSCredentials
    let region: String

    func verify(method: String, path: String, query: String, headers: [(String, String)], body: Data) -> SimulatedEC2.Failure? {
        guard let authorization = headers.first(where: { $0.0.lowercased() == "authorization" })?.1,
              authorization.hasPrefix("AWS4-HMAC-SHA256 ") else {
            return .init(code: "MissingAuthenticationToken", message: "Request is missing Authentication Token", status: 400)
        }
        var fields: [String: String] = [:]
        for part in authorization.dropFirst("AWS4-HMAC-SHA256 ".count).split(separator: ",") {
            let pair = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if pair.count == 2 { fields[String(pair[0])] = String(pair[1]) }
        }
        let scope = (fields["Credential"] ?? "").split(separator: "/").map(String.init)
        guard scope.count == 5, let signedHeaders = fields["SignedHeaders"], let signature = fields["Signature"] else {
            return .init(code: "IncompleteSignature", message: "Authorization header requires Credential, SignedHeaders and Signature", status: 400)
        }
        guard scope[0] == credentials.accessKeyID else {
            return .init(code: "AuthFailure", message: "AWS was not able to validate the provided access credentials", status: 401)
        }
        guard scope[2] == region, scope[3] == "ec2" else {
            return .init(code: "AuthFailure", message: "Credential should be scoped to a valid region, not '\(scope[2])'", status: 401)
        }
        let names = Set(signedHeaders.split(separator: ";").map(String.init))
        let signed = headers.filter { names.contains($0.0.lowercased()) }.map { (name: $0.0, value: $0.1) }
        let request = SigV4Signer.Request(method: method, path: path, query: query, headers: signed, body: body)
        let expected = SigV4Signer(credentials: credentials, region: region, service: "ec2").authorization(request)
        guard expected.hasSuffix("Signature=\(signature)") else {
            return .init(code: "SignatureDoesNotMatch",
                         message: "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
                         status: 403)
        }
        return nil
    }
}
