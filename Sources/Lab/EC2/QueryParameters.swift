import Foundation

/// An EC2 Query request's parameters (form body or query string), with EC2's numbered-list forms:
/// `InstanceId.1`, `Filter.1.Value.2`, `Tag.1.Key`.
struct QueryParameters: Sendable {
    private var values: [String: String] = [:]

    init(form: String) {
        for pair in form.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = Self.decode(parts[0]), value = parts.count > 1 ? Self.decode(parts[1]) : ""
            values[key] = value
        }
    }

    static func decode(_ text: Substring) -> String {
        String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(text)
    }

    subscript(key: String) -> String? { values[key] }

    func required(_ key: String) throws(SimulatedEC2.Failure) -> String {
        guard let value = values[key], !value.isEmpty else {
            throw SimulatedEC2.Failure(code: "MissingParameter", message: "The request must contain the parameter \(key)")
        }
        return value
    }

    /// `PREFIX.1`, `PREFIX.2`, ... up to the first gap.
    func indexed(_ prefix: String) -> [String] {
        var list: [String] = []
        for index in 1... {
            guard let value = values["\(prefix).\(index)"] else { break }
            list.append(value)
        }
        return list
    }

    /// `PREFIX.N.Key` / `PREFIX.N.Value` pairs.
    func tags(_ prefix: String) -> [(String, String)] {
        var list: [(String, String)] = []
        for index in 1... {
            guard let key = values["\(prefix).\(index).Key"] else { break }
            list.append((key, values["\(prefix).\(index).Value"] ?? ""))
        }
        return list
    }
}
