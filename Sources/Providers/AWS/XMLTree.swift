import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// A minimal element tree for the EC2 Query API's XML replies: parse by element name, never by
/// order, as AWS and moto differ in order and optional elements.
public final class XMLTree: @unchecked Sendable {
    // @unchecked: built once by the parser, read-only afterwards.
    public let name: String
    public private(set) var text = ""
    public private(set) var children: [XMLTree] = []

    init(name: String) { self.name = name }

    public func child(_ name: String) -> XMLTree? { children.first { $0.name == name } }
    public func all(_ name: String) -> [XMLTree] { children.filter { $0.name == name } }
    /// Text of a descendant by path, e.g. `instanceState/name`.
    public func value(_ path: String) -> String? {
        var node: XMLTree? = self
        for part in path.split(separator: "/") { node = node?.child(String(part)) }
        return node.map { $0.text.trimmingCharacters(in: .whitespacesAndNewlines) }
    }
    /// The `item` children of a set element, e.g. `instancesSet`.
    public func items(_ set: String) -> [XMLTree] { child(set)?.all("item") ?? [] }

    public static func parse(_ data: Data) throws -> XMLTree {
        let builder = Builder()
        let parser = XMLParser(data: data)
        parser.delegate = builder
        guard parser.parse(), let root = builder.root else {
            throw AWSError.malformed("the reply is not XML: \(String(decoding: data.prefix(200), as: UTF8.self))")
        }
        return root
    }

    final class Builder: NSObject, XMLParserDelegate {
        var root: XMLTree?
        var stack: [XMLTree] = []

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            let node = XMLTree(name: name)
            stack.last?.children.append(node)
            if root == nil { root = node }
            stack.append(node)
        }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            _ = stack.popLast()
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            stack.last?.text += string
        }
    }
}
