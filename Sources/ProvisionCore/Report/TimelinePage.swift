import Foundation

/// `provision report`: one self-contained HTML page for a run (no network, no external script or
/// style): what ran and how it ended, the Gantt chart with the critical path outlined, the critical
/// path step by step, the ten slowest steps, and every step with its attempts.
public struct TimelinePage {
    public let timeline: RunTimeline

    public init(timeline: RunTimeline) { self.timeline = timeline }

    public func render() -> String {
        let run = timeline.run
        let formatter = ISO8601DateFormatter()
        let busy = timeline.bars.reduce(0) { $0 + $1.duration }
        let totals: [(String, String)] = [
            ("command", run.command), ("inventory", run.inventory), ("playbook", run.playbook), ("run", run.id),
            ("host", "\(run.host), pid \(run.pid)"), ("started", formatter.string(from: run.startedAt)),
            ("outcome", run.outcome ?? "unfinished (still running, or killed)"),
            ("makespan", seconds(timeline.makespan)), ("critical path", run.graph == nil ? "unknown: this run was journaled before runs kept their step graph"
                : "\(seconds(timeline.criticalSeconds)) over \(timeline.criticalPath.count) steps"),
            ("steps", "\(timeline.bars.count): \(timeline.count(.applied)) changed, \(timeline.count(.satisfied)) already done, \(timeline.count(.failed) + timeline.count(.refused)) failed, \(timeline.count(.blocked)) not run"),
            ("retries", "\(timeline.retries)"), ("step time", "\(seconds(busy)) in all (\(String(format: "%.1f", busy / max(timeline.makespan, 0.001)))x the makespan: steps ran side by side)"),
        ]
        let critical = timeline.criticalPath.compactMap { id in timeline.bars.first { $0.step == id } }
        var html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>provision: \(escape(run.command)) (\(escape(run.id)))</title>
            <style>
            body{font:14px/1.4 sans-serif;margin:24px;color:#222}h1{font-size:20px}h2{font-size:16px;margin-top:28px}
            table{border-collapse:collapse}td,th{padding:2px 10px 2px 0;text-align:left;vertical-align:top}th{color:#555;font-weight:normal}
            .num{text-align:right;font-variant-numeric:tabular-nums}.failed,.refused{color:#a50f15}.crit{color:#d94801;font-weight:bold}
            .chart{overflow-x:auto;border:1px solid #eee;padding:4px}.key span{display:inline-block;width:12px;height:10px;margin:0 4px 0 12px}
            </style></head><body>
            <h1>\(escape(run.command))</h1>
            <table class="totals">\(totals.map { "<tr><th>\($0.0)</th><td>\(escape($0.1))</td></tr>" }.joined())</table>
            <h2>Timeline</h2>
            <p class="key"><span style="background:#6baed6"></span>changed<span style="background:#d9d9d9"></span>already done<span style="background:#fb6a4a"></span>failed<span style="background:#fdae6b"></span>interrupted<span style="border:2px solid #d94801"></span>critical path<span style="background:#a50f15"></span>failed attempt</p>
            <div class="chart">\(TimelineSVG(timeline: timeline).render(standalone: false))</div>
            <h2>Critical path</h2>
            <table class="critical-path"><tr><th>step</th><th class="num">start</th><th class="num">took</th><th>outcome</th></tr>
            """
        for bar in critical {
            html += "<tr class=\"crit-row\"><td class=\"crit\">\(escape(bar.step))</td><td class=\"num\">\(seconds(bar.start))</td><td class=\"num\">\(seconds(bar.duration))</td><td>\(bar.outcome.rawValue)</td></tr>"
        }
        html += "</table>\n<h2>Ten slowest steps</h2>\n<table class=\"slowest\"><tr><th>step</th><th>kind</th><th class=\"num\">took</th><th>outcome</th></tr>"
        for bar in timeline.slowest(10) {
            html += "<tr><td>\(escape(bar.step))</td><td>\(escape(bar.kind))</td><td class=\"num\">\(seconds(bar.duration))</td><td>\(bar.outcome.rawValue)\(bar.critical ? " <span class=\"crit\">critical</span>" : "")</td></tr>"
        }
        html += "</table>\n<h2>Every step</h2>\n<table class=\"steps\"><tr><th>step</th><th>kind</th><th class=\"num\">start</th><th class=\"num\">took</th><th class=\"num\">attempts</th><th>outcome</th></tr>"
        for bar in timeline.bars {
            html += "<tr><td>\(escape(bar.step))</td><td>\(escape(bar.kind))</td><td class=\"num\">\(seconds(bar.start))</td><td class=\"num\">\(seconds(bar.duration))</td>"
                + "<td class=\"num\">\(bar.segments.count)</td><td class=\"\(bar.outcome.rawValue)\">\(bar.outcome.rawValue)\(bar.error.map { ": " + escape(String($0.prefix(300))) } ?? "")</td></tr>"
        }
        html += "</table>\n</body></html>\n"
        return html
    }
}
