import Foundation

/// The run as a Gantt chart in SVG: a row per node (the cluster's own steps first), a bar per
/// step, attempts as segments (failed ones red), the critical path outlined. Self-contained:
/// styles inline, hover text in `<title>`, no script and nothing fetched.
public struct TimelineSVG {
    public let timeline: RunTimeline
    public var width = 1200.0
    let label = 150.0
    let lane = 16.0
    let gap = 8.0
    let axis = 28.0

    public init(timeline: RunTimeline) { self.timeline = timeline }

    /// Bars of a row spread over lanes so overlapping steps stay visible.
    func lanes(_ row: String) -> [(RunTimeline.Bar, Int)] {
        var ends: [Double] = []
        return timeline.bars.filter { $0.row == row }.map { bar in
            let index = ends.firstIndex { $0 <= bar.start } ?? ends.count
            if index == ends.count { ends.append(bar.end) } else { ends[index] = bar.end }
            return (bar, index)
        }
    }

    public func render(standalone: Bool = true) -> String {
        let span = max(timeline.makespan, 0.001)
        let chart = width - label - 20
        func x(_ seconds: Double) -> Double { label + chart * seconds / span }
        var body: [String] = []
        var y = axis
        for row in timeline.rows {
            let placed = lanes(row)
            let height = Double((placed.map(\.1).max() ?? 0) + 1) * lane
            body.append(#"<g class="row"><text class="label" x="4" y="\#(fmt(y + 12))">\#(escape(row))</text>"#)
            body.append(#"<line class="rule" x1="0" x2="\#(fmt(width))" y1="\#(fmt(y + height + gap / 2))" y2="\#(fmt(y + height + gap / 2))"/>"#)
            for (bar, index) in placed {
                let top = y + Double(index) * lane + 2
                var classes = ["bar", bar.outcome.rawValue]
                if bar.critical { classes.append("critical") }
                if bar.retries > 0 { classes.append("retried") }
                let title = "\(bar.step) (\(bar.kind)): \(seconds(bar.duration)), \(bar.outcome.rawValue)"
                    + (bar.retries > 0 ? ", \(bar.retries) retr\(bar.retries == 1 ? "y" : "ies")" : "") + (bar.critical ? ", on the critical path" : "")
                    + (bar.error.map { "\n" + $0 } ?? "")
                body.append(#"<g class="\#(classes.joined(separator: " "))" data-step="\#(escape(bar.step))"><title>\#(escape(title))</title>"#)
                let barWidth = max(2, x(bar.end) - x(bar.start))
                body.append(#"<rect class="span" x="\#(fmt(x(bar.start)))" y="\#(fmt(top))" width="\#(fmt(barWidth))" height="\#(fmt(lane - 4))"/>"#)
                // The step's name inside its bar when it fits (the node is the row already).
                let name = bar.step.split(separator: "@").first.map(String.init) ?? bar.step
                if barWidth > Double(name.count) * 6 + 6 {
                    body.append(#"<text class="name" x="\#(fmt(x(bar.start) + 3))" y="\#(fmt(top + lane - 7))">\#(escape(name))</text>"#)
                }
                if bar.segments.count > 1 {
                    for segment in bar.segments {
                        body.append(#"<rect class="attempt \#(segment.outcome.rawValue)" x="\#(fmt(x(segment.start)))" y="\#(fmt(top + lane - 7))" width="\#(fmt(max(1, x(segment.end) - x(segment.start))))" height="3"/>"#)
                    }
                }
                body.append("</g>")
            }
            body.append("</g>")
            y += height + gap
        }
        var ticks: [String] = []
        let step = Self.tickStep(span)
        var tick = 0.0
        while tick <= span + 1e-9 {
            ticks.append(#"<line class="tick" x1="\#(fmt(x(tick)))" x2="\#(fmt(x(tick)))" y1="\#(fmt(axis - 6))" y2="\#(fmt(y))"/><text class="time" x="\#(fmt(x(tick)))" y="\#(fmt(axis - 10))">\#(seconds(tick))</text>"#)
            tick += step
        }
        let height = y + 10
        let style = """
            <style>
            .label{font:12px sans-serif;fill:#222}.time{font:10px sans-serif;fill:#666;text-anchor:middle}
            .tick{stroke:#eee}.rule{stroke:#ddd}.name{font:9px sans-serif;fill:#08306b;pointer-events:none}
            .bar .span{fill:#9ecae1}.bar.satisfied .span{fill:#d9d9d9}.bar.applied .span{fill:#6baed6}
            .bar.failed .span,.bar.refused .span{fill:#fb6a4a}.bar.blocked .span{fill:#fff;stroke:#bbb;stroke-dasharray:2 2}
            .bar.interrupted .span,.bar.abandoned .span{fill:#fdae6b}.bar.critical .span{stroke:#d94801;stroke-width:2}
            .attempt{fill:#31a354}.attempt.failed{fill:#a50f15}
            </style>
            """
        let open = #"<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="\#(fmt(width))" height="\#(fmt(height))" viewBox="0 0 \#(fmt(width)) \#(fmt(height))">"#
        let header = standalone ? #"<?xml version="1.0" encoding="UTF-8"?>"# + "\n" : ""
        return header + open + "\n" + style + "\n" + (ticks + body).joined(separator: "\n") + "\n</svg>\n"
    }

    static func tickStep(_ span: Double) -> Double {
        for candidate in [0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600] where span / candidate <= 12 { return candidate }
        return 7200
    }

    func fmt(_ value: Double) -> String { String(format: "%.1f", value) }
}

/// Seconds for people: `420 ms`, `3.2 s`, `4m05s`.
func seconds(_ value: Double) -> String {
    if value < 1 { return "\(Int((value * 1000).rounded())) ms" }
    if value < 120 { return String(format: "%.1f s", value) }
    return "\(Int(value) / 60)m\(String(format: "%02d", Int(value) % 60))s"
}

/// Text safe inside XML and HTML elements and attributes.
func escape(_ text: String) -> String { XMLText.escape(text) }
