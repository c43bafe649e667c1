import Foundation
import KubeKit

/// Label and field selectors as the API server parses them: `a=b`, `a==b`, `a!=b`, `a`, `!a`,
/// `a in (x,y)`, `a notin (x,y)`, comma-separated, all must hold.
struct ObjectSelector: Sendable {
    enum Requirement: Sendable {
        case equals(String, String), notEquals(String, String), exists(String), absent(String)
        case within(String, Set<String>), notWithin(String, Set<String>)
    }

    let requirements: [Requirement]

    init(_ text: String) throws(APIFailure) {
        var parts: [String] = []
        var depth = 0, current = ""
        for character in text {
            if character == "(" { depth += 1 } else if character == ")" { depth -= 1 }
            if character == ",", depth == 0 { parts.append(current); current = "" } else { current.append(character) }
        }
        parts.append(current)
        var requirements: [Requirement] = []
        for raw in parts.map({ $0.trimmingCharacters(in: .whitespaces) }) where !raw.isEmpty {
            requirements.append(try Self.requirement(raw))
        }
        self.requirements = requirements
    }

    static func requirement(_ text: String) throws(APIFailure) -> Requirement {
        func set(_ list: Substring) -> Set<String> {
            Set(list.trimmingCharacters(in: CharacterSet(charactersIn: "() ")).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        }
        if let range = text.range(of: " notin ") { return .notWithin(String(text[..<range.lowerBound]), set(text[range.upperBound...])) }
        if let range = text.range(of: " in ") { return .within(String(text[..<range.lowerBound]), set(text[range.upperBound...])) }
        if let range = text.range(of: "!=") { return .notEquals(String(text[..<range.lowerBound]), String(text[range.upperBound...])) }
        if let range = text.range(of: "==") { return .equals(String(text[..<range.lowerBound]), String(text[range.upperBound...])) }
        if let range = text.range(of: "=") { return .equals(String(text[..<range.lowerBound]), String(text[range.upperBound...])) }
        if text.hasPrefix("!") { return .absent(String(text.dropFirst())) }
        guard text.range(of: #"^[A-Za-z0-9./_-]+$"#, options: .regularExpression) != nil else {
            throw APIFailure(code: 400, reason: "BadRequest", message: "unable to parse requirement: \(text)")
        }
        return .exists(text)
    }

    func matches(labels: [String: JSON]) -> Bool { matches { labels[$0]?.string } }

    /// Field selectors address dotted paths (`metadata.name`, `spec.nodeName`, `status.phase`).
    func matches(fields object: JSON) -> Bool {
        matches { path in
            guard let value = object[path: path] else { return path == "spec.nodeName" || path == "status.phase" ? "" : nil }
            switch value {
            case let .string(text): return text
            case let .bool(flag): return flag ? "true" : "false"
            case let .int(number): return "\(number)"
            default: return nil
            }
        }
    }

    private func matches(_ value: (String) -> String?) -> Bool {
        requirements.allSatisfy { requirement in
            switch requirement {
            case let .equals(key, wanted): return value(key) == wanted
            case let .notEquals(key, unwanted): return value(key) != unwanted
            case let .exists(key): return value(key) != nil
            case let .absent(key): return value(key) == nil
            case let .within(key, set): return value(key).map(set.contains) ?? false
            case let .notWithin(key, set): return !(value(key).map(set.contains) ?? false)
            }
        }
    }
}
