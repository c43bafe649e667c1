import Foundation
import Testing
import TestSupport
@testable import Providers

/// Every case of the official SigV4 test suite (botocore's aws4_testsuite, Apache-2.0, copied unchanged
/// into Tests/Fixtures with its LICENSE and NOTICE): our canonical request, string to sign and Authorization header.
@Suite struct SigV4Tests {
    static let suite = "\(repositoryRoot)/Tests/Fixtures/aws-sigv4-testsuite"
    static let signer = SigV4Signer(credentials: AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                                    region: "us-east-1", service: "service")

    /// Case folders: any directory holding NAME.req and NAME.authz.
    static var cases: [String] {
        let enumerator = FileManager.default.enumerator(atPath: suite)
        var found: [String] = []
        while let path = enumerator?.nextObject() as? String {
            if path.hasSuffix(".req") { found.append(String(path.dropLast(4))) }
        }
        return found.sorted()
    }

    @Test func theSuiteIsThere() {
        #expect(Self.cases.count >= 30, "expected the 30+ official cases under \(Self.suite)")
    }

    @Test(arguments: cases)
    func reproducesTheOfficialVector(_ name: String) throws {
        func read(_ ext: String) throws -> String { try String(contentsOfFile: "\(Self.suite)/\(name).\(ext)", encoding: .utf8) }
        var request = try parse(try read("req"))
        let expectedCanonical = try read("creq")
        // Session-token cases: the .req omits the token; the .creq shows whether it is signed.
        if let tokenLine = expectedCanonical.split(separator: "\n").first(where: { $0.hasPrefix("x-amz-security-token:") }),
           !request.headers.contains(where: { $0.name.lowercased() == "x-amz-security-token" }) {
            request.headers.append(("X-Amz-Security-Token", String(tokenLine.dropFirst("x-amz-security-token:".count))))
        }
        #expect(Self.signer.canonicalRequest(request) == expectedCanonical)
        #expect(Self.signer.stringToSign(request) == (try read("sts")))
        #expect(Self.signer.authorization(request) == (try read("authz")))
    }

    @Test func signAddsDateAndTokenAndSignsThem() {
        let signer = SigV4Signer(credentials: AWSCredentials(accessKeyID: "AKID", secretAccessKey: "secret", sessionToken: "token"), region: "us-east-1", service: "ec2")
        var request = SigV4Signer.Request(method: "POST", headers: [("Host", "127.0.0.1:45000")], body: Data("Action=DescribeInstances".utf8))
        signer.sign(&request, date: Date(timeIntervalSince1970: 1_440_938_160))
        let authorization = request.headers.first { $0.name == "Authorization" }?.value ?? ""
        #expect(request.headers.contains { $0.name == "X-Amz-Date" && $0.value == "20150830T123600Z" })
        #expect(authorization.contains("Credential=AKID/20150830/us-east-1/ec2/aws4_request"))
        #expect(authorization.contains("SignedHeaders=host;x-amz-date;x-amz-security-token"))
        #expect(!authorization.contains("secret"))
    }

    /// The .req format: request line, headers (a line starting with whitespace continues the previous
    /// value), a blank line, the body.
    func parse(_ text: String) throws -> SigV4Signer.Request {
        var lines = text.components(separatedBy: "\n")
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count >= 3 else { throw PeerError("bad request line") }
        let target = requestLine[1..<(requestLine.count - 1)].joined(separator: " ")
        let (path, query) = target.firstIndex(of: "?").map { (String(target[..<$0]), String(target[target.index(after: $0)...])) } ?? (target, "")
        var headers: [(name: String, value: String)] = []
        var bodyLines: [String] = []
        var inBody = false
        for line in lines {
            if inBody { bodyLines.append(line); continue }
            if line.isEmpty { inBody = true; continue }
            if line.first == " " || line.first == "\t", !headers.isEmpty {
                headers[headers.count - 1].value += "\n" + line
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { throw PeerError("bad header \(line)") }
            headers.append((String(line[..<colon]), String(line[line.index(after: colon)...])))
        }
        return SigV4Signer.Request(method: String(requestLine[0]), path: path, query: query, headers: headers, body: Data(bodyLines.joined(separator: "\n").utf8))
    }
}
