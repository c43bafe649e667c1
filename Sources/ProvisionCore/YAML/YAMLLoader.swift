import Foundation
import Yams

/// Reads YAML files defensively: size, binary content, nesting depth and alias expansion are bounded
/// before and while parsing, so hostile or broken input yields a diagnostic, never a crash or a hang.
public struct YAMLLoader: Sendable {
    public var maxBytes = 4 * 1024 * 1024
    public var maxDepth = 64
    public var maxNodes = 200_000

    public init() {}

    /// Loads one YAML document from a file.
    public func load(path: String) throws(InputError) -> YAMLNode {
        let url = URL(fileURLWithPath: path)
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        guard let attributes else {
            throw InputError("input.not-found", at: SourceLocation(file: path, line: 1, column: 1),
                             "file not found", fix: "check the path, or run `provision validate` with an inventory name from inventories/")
        }
        if let size = attributes[.size] as? Int, size > maxBytes {
            throw InputError("input.too-large", at: SourceLocation(file: path, line: 1, column: 1),
                             "file is \(size) bytes; the limit is \(maxBytes) bytes",
                             fix: "split the file; an inventory this large is almost certainly not the intended file")
        }
        guard let data = try? Data(contentsOf: url) else {
            throw InputError("input.unreadable", at: SourceLocation(file: path, line: 1, column: 1),
                             "file cannot be read", fix: "check its permissions")
        }
        return try load(data: data, file: path)
    }

    public func load(data: Data, file: String) throws(InputError) -> YAMLNode {
        let start = SourceLocation(file: file, line: 1, column: 1)
        if data.count > maxBytes {
            throw InputError("input.too-large", at: start, "input is \(data.count) bytes; the limit is \(maxBytes) bytes",
                             fix: "split the file")
        }
        if data.contains(0) {
            throw InputError("input.binary", at: start, "file contains NUL bytes: it is binary, not YAML",
                             fix: "point at the YAML file, not a compiled or compressed one")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw InputError("input.binary", at: start, "file is not valid UTF-8 text", fix: "save the file as UTF-8")
        }
        return try load(text: text, file: file)
    }

    public func load(text: String, file: String) throws(InputError) -> YAMLNode {
        let start = SourceLocation(file: file, line: 1, column: 1)
        if let deep = Self.firstOverlyNestedLine(text, limit: 1024) {
            throw InputError("input.too-deep", at: SourceLocation(file: file, line: deep, column: 1),
                             "nesting is deeper than \(maxDepth) levels", fix: "flatten the structure; no provision file nests this deep")
        }
        let root: Node?
        do {
            var documents = try Yams.compose_all(yaml: text).makeIterator()
            root = documents.next()
            if let error = documents.error { throw error }
            if root != nil, documents.next() != nil {
                throw InputError("yaml.multiple-documents", at: start, "file holds more than one YAML document",
                                 fix: "keep one document per file (remove the extra `---`)")
            }
            if let error = documents.error { throw error }
        } catch let error as InputError {
            throw error
        } catch let error as YamlError {
            throw Self.diagnose(error, file: file, text: text)
        } catch {
            throw InputError("yaml.syntax", at: start, "YAML could not be parsed: \(error)", fix: "fix the YAML syntax")
        }
        guard let root else {
            throw InputError("input.empty", at: start, "file is empty", fix: "start from inventories/demo.yaml or the example in README.md")
        }
        var budget = maxNodes
        return try convert(root, file: file, depth: 0, budget: &budget)
    }

    private func convert(_ node: Node, file: String, depth: Int, budget: inout Int) throws(InputError) -> YAMLNode {
        let location = SourceLocation(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
        budget -= 1
        if budget < 0 {
            throw InputError("input.too-many-nodes", at: location, "file expands to more than \(maxNodes) values (aliases?)",
                             fix: "remove alias chains that multiply content")
        }
        if depth > maxDepth {
            throw InputError("input.too-deep", at: location, "nesting is deeper than \(maxDepth) levels", fix: "flatten the structure")
        }
        switch node {
        case let .scalar(scalar):
            return YAMLNode(.scalar(scalar.string, plain: scalar.style == .plain || scalar.style == .any), at: location)
        case let .mapping(mapping):
            var pairs: [(key: YAMLNode, value: YAMLNode)] = []
            for (key, value) in mapping {
                let k = try convert(key, file: file, depth: depth + 1, budget: &budget)
                let v = try convert(value, file: file, depth: depth + 1, budget: &budget)
                pairs.append((k, v))
            }
            return YAMLNode(.mapping(pairs), at: location)
        case let .sequence(sequence):
            var items: [YAMLNode] = []
            for item in sequence { items.append(try convert(item, file: file, depth: depth + 1, budget: &budget)) }
            return YAMLNode(.sequence(items), at: location)
        case let .alias(alias):
            throw InputError("yaml.alias", at: location, "unresolved alias *\(alias.anchor.rawValue)",
                             fix: "define the anchor before using it")
        }
    }

    /// Cheap textual scan that bounds nesting before libyaml and Yams recurse on it.
    /// Counts indentation plus open flow brackets; any legitimate file stays far below the limit.
    static func firstOverlyNestedLine(_ text: String, limit: Int) -> Int? {
        var flowDepth = 0
        var line = 1
        var atLineStart = true
        var indent = 0
        var quote: Character?
        for character in text {
            if character == "\n" {
                line += 1
                atLineStart = true
                indent = 0
                continue
            }
            if atLineStart {
                if character == " " || character == "-" || character == "\t" {
                    indent += 1
                    if indent > limit { return line }
                    continue
                }
                atLineStart = false
            }
            if let open = quote {
                if character == open { quote = nil }
                continue
            }
            switch character {
            case "\"", "'": if flowDepth > 0 { quote = character }
            case "[", "{":
                flowDepth += 1
                if flowDepth > limit { return line }
            case "]", "}": flowDepth = max(0, flowDepth - 1)
            default: break
            }
        }
        return nil
    }

    static func diagnose(_ error: YamlError, file: String, text: String) -> InputError {
        func at(_ mark: Mark) -> SourceLocation { SourceLocation(file: file, line: mark.line, column: mark.column) }
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            // Name where the construct began as well as where the parser gave up, as PyYAML and
            // yamllint do: an unclosed `[` is found only lines later, past comments and blank lines.
            guard let context, context.mark.line != mark.line || context.mark.column != mark.column else {
                return InputError("yaml.syntax", at: at(mark), "YAML syntax error: \(problem)",
                                  fix: "check indentation and quoting on this line and the one above")
            }
            return InputError("yaml.syntax", at: at(mark),
                              "YAML syntax error \(context.text) at \(context.mark.line):\(context.mark.column): \(problem) at \(mark.line):\(mark.column)",
                              fix: "check the construct that begins at line \(context.mark.line), column \(context.mark.column) (an unclosed bracket or quote?) and the lines up to here")
        case let .duplicatedKeysInMapping(duplicates, context):
            let second = duplicates.first.flatMap { secondOccurrence(of: $0, after: context.mark, in: text, file: file) }
            return InputError("yaml.duplicate-key", at: second ?? at(context.mark),
                              "key \(duplicates.map { "`\($0)`" }.joined(separator: ", ")) appears twice in one mapping",
                              fix: "remove or rename one of them")
        case let .reader(problem, _, _, _):
            return InputError("input.binary", at: SourceLocation(file: file, line: 1, column: 1),
                              "file is not readable text: \(problem)", fix: "save the file as UTF-8 text")
        default:
            return InputError("yaml.syntax", at: SourceLocation(file: file, line: 1, column: 1),
                              "YAML could not be parsed: \(error)", fix: "fix the YAML syntax")
        }
    }

    /// Yams names the first of two duplicate keys; the second is the one a user just added, so point
    /// there: the next line at the same indentation that starts with `key:`.
    static func secondOccurrence(of key: String, after first: Mark, in text: String, file: String) -> SourceLocation? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard first.line >= 1, first.line <= lines.count else { return nil }
        let indent = first.column - 1
        for index in first.line..<lines.count {
            let line = lines[index]
            let leading = line.prefix { $0 == " " }.count
            if leading < indent, !line.trimmingWhitespace().isEmpty, !line.trimmingWhitespace().hasPrefix("#") { return nil }
            if leading == indent, line.dropFirst(indent).hasPrefix(key + ":") { return SourceLocation(file: file, line: index + 1, column: first.column) }
        }
        return nil
    }
}
