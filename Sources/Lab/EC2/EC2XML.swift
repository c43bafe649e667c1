import Foundation
import ProvisionCore

/// The few XML shapes the EC2 Query API answers with, built as a tree and rendered escaped.
indirect enum EC2XML: Sendable {
    case text(String, String)
    case element(String, [EC2XML])

    static func list(_ name: String, _ items: [[EC2XML]]) -> EC2XML {
        .element(name, items.map { .element("item", $0) })
    }

    func render(into out: inout String) {
        switch self {
        case let .text(name, value):
            out += "<\(name)>\(Self.escape(value))</\(name)>"
        case let .element(name, children):
            out += "<\(name)>"
            for child in children { child.render(into: &out) }
            out += "</\(name)>"
        }
    }

    /// `<ActionResponse xmlns=...><requestId/>...</ActionResponse>`, as EC2 and moto reply.
    static func response(_ action: String, requestID: String, _ body: [EC2XML]) -> String {
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<\(action)Response xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
        EC2XML.text("requestId", requestID).render(into: &out)
        for child in body { child.render(into: &out) }
        out += "</\(action)Response>"
        return out
    }

    static func error(code: String, message: String, requestID: String) -> String {
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        EC2XML.element("Response", [
            .element("Errors", [.element("Error", [.text("Code", code), .text("Message", message)])]),
            .text("RequestID", requestID),
        ]).render(into: &out)
        return out
    }

    static func escape(_ text: String) -> String { XMLText.escape(text) }
}
