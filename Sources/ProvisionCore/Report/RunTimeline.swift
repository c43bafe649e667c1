import Foundation

/// One run laid out in time from its journal rows: a bar per step (first attempt's start to last
/// attempt's end, each attempt a segment so retries show), the run's makespan, and the critical
/// path as it happened: from the step that finished last, back through whichever dependency
/// finished last before it, to a step that needed nothing. That chain is what made the run as long
/// as it was; shortening anything off it would not have helped.
public struct RunTimeline: Sendable {
    public struct Segment: Sendable, Equatable {
        public var start: Double
        public var end: Double
        public var outcome: Journal.Outcome
    }

    public struct Bar: Sendable {
        public var step: String
        public var node: String?
        public var kind: String
        /// Seconds since the run started.
        public var start: Double
        public var end: Double
        public var outcome: Journal.Outcome
        public var segments: [Segment]
        public var error: String?
        public var critical = false

        public var duration: Double { end - start }
        public var retries: Int { max(0, segments.count - 1) }
        /// The row this bar is drawn in: its node, or `(cluster)` for a cluster-wide step.
        public var row: String { node ?? "(cluster)" }
    }

    public let run: Journal.Run
    public private(set) var bars: [Bar]
    public let makespan: Double
    /// Step ids, first to last.
    public private(set) var criticalPath: [String] = []

    public init(run: Journal.Run, attempts: [Journal.Attempt]) {
        self.run = run
        let origin = run.startedAt
        let end = run.finishedAt ?? attempts.compactMap(\.finishedAt).max() ?? origin
        var bars: [Bar] = []
        let byStep = Dictionary(grouping: attempts.filter { $0.runID == run.id }, by: \.stepID)
        for (step, rows) in byStep {
            let ordered = rows.sorted { ($0.startedAt, $0.id) < ($1.startedAt, $1.id) }
            let segments = ordered.map { row in
                Segment(start: row.startedAt.timeIntervalSince(origin), end: (row.finishedAt ?? end).timeIntervalSince(origin), outcome: row.outcome)
            }
            guard let first = ordered.first, let last = ordered.last, let firstSegment = segments.first else { continue }
            bars.append(Bar(step: step, node: first.node, kind: first.kind, start: firstSegment.start, end: segments.map(\.end).max() ?? firstSegment.end,
                            outcome: last.outcome, segments: segments, error: ordered.last { $0.error != nil }?.error))
        }
        bars.sort { ($0.start, $0.step) < ($1.start, $1.step) }
        self.bars = bars
        makespan = max(end.timeIntervalSince(origin), bars.map(\.end).max() ?? 0)
        criticalPath = Self.criticalPath(bars, graph: run.decodedGraph)
        let critical = Set(criticalPath)
        for index in self.bars.indices where critical.contains(self.bars[index].step) { self.bars[index].critical = true }
    }

    static func criticalPath(_ bars: [Bar], graph: [String: [String]]) -> [String] {
        let byID = Dictionary(uniqueKeysWithValues: bars.map { ($0.step, $0) })
        guard var current = bars.filter({ $0.outcome != .blocked }).max(by: { $0.end < $1.end }) else { return [] }
        var path = [current.step]
        var seen: Set<String> = [current.step]
        while let previous = (graph[current.step] ?? []).compactMap({ byID[$0] }).filter({ !seen.contains($0.step) }).max(by: { $0.end < $1.end }) {
            path.append(previous.step)
            seen.insert(previous.step)
            current = previous
        }
        return path.reversed()
    }

    /// The rows of the chart: nodes in the order their first step started, the cluster row first.
    public var rows: [String] {
        var seen: [String] = []
        for bar in bars where !seen.contains(bar.row) { seen.append(bar.row) }
        return seen.filter { $0 == "(cluster)" } + seen.filter { $0 != "(cluster)" }
    }

    /// Steps that took longest, longest first.
    public func slowest(_ count: Int) -> [Bar] {
        Array(bars.filter { $0.outcome != .blocked }.sorted { $0.duration > $1.duration }.prefix(count))
    }

    public var retries: Int { bars.reduce(0) { $0 + $1.retries } }

    public func count(_ outcome: Journal.Outcome) -> Int { bars.filter { $0.outcome == outcome }.count }

    /// Length of the critical path: from its first step's start to its last step's end.
    public var criticalSeconds: Double {
        let critical = bars.filter(\.critical)
        guard let first = critical.map(\.start).min(), let last = critical.map(\.end).max() else { return 0 }
        return last - first
    }
}
