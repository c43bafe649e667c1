import ArgumentParser
import Foundation
import ProvisionCore

struct Report: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "A run as one self-contained HTML page: a Gantt chart per node, the critical path, the slowest steps.",
        discussion: """
            Reads the run from the journal (nothing is contacted) and writes one HTML file that needs no network, script or stylesheet from elsewhere: the totals (makespan, steps by outcome, retries), a Gantt chart with a row per node and a bar per step (retries as segments under the bar, failures red), the critical path outlined (the chain of steps, each waiting on the one before, that made the run as long as it was), that path step by step, the ten slowest steps and every step with its attempts. --svg writes the chart alone as SVG.

            RUN is `last` (the default), a run id as `provision status` lists it, or its start of a few characters. Without INVENTORY the state directory comes from --state-dir or PROVISION_STATE_DIR, or is the one inventory in inventories/ that has a journal.

            Examples:
              provision report demo                        the last run, written to the state directory's reports/
              provision report demo last --output run.html
              provision report homelab 20261206T031500Z --svg run.svg
              provision report last --state-dir /var/lib/provision/homelab
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "Inventory name or path, then optionally the run; or just the run.") var words: [String] = []
    @Option(help: ArgumentHelp("Where to write the HTML page (default: STATE/reports/RUN.html).", valueName: "file")) var output: String?
    @Option(help: ArgumentHelp("Also write the chart alone as SVG here.", valueName: "file")) var svg: String?

    static func looksLikeRun(_ text: String) -> Bool { text == "last" || text.range(of: #"^[0-9]{8}T"#, options: .regularExpression) != nil }

    func run() async throws {
        try await runCommand { () throws(Exit) in
            let out = Output(json: global.json)
            guard words.count <= 2 else {
                out.failure("give at most an inventory and a run, e.g. `provision report demo last`", key: "usage")
                throw Exit(status: .badInput)
            }
            let (stateDirectory, runWord) = try locate(out)
            let path = stateDirectory + "/journal.sqlite"
            guard FileManager.default.fileExists(atPath: path) else {
                out.failure("no journal at \(path): nothing has run with this state directory yet", key: "report.no-journal")
                throw Exit(status: .badInput)
            }
            let journal: Journal
            do throws(JournalError) { journal = try Journal(path: path) } catch {
                out.failure(error.description, key: "journal.unreadable")
                throw Exit(status: .failed)
            }
            let runs = (try? journal.runs(limit: 100_000)) ?? []
            let chosen = runWord == "last" ? runs.first : runs.first { $0.id == runWord } ?? runs.first { $0.id.hasPrefix(runWord) }
            guard let run = chosen else {
                out.failure("no run `\(runWord)` in \(path); the newest: \(runs.prefix(5).map(\.id).joined(separator: ", "))", key: "report.no-run")
                throw Exit(status: .badInput)
            }
            let timeline = RunTimeline(run: run, attempts: (try? journal.attempts(run: run.id)) ?? [])
            let page = output.map { PathText.resolve($0, relativeTo: FileManager.default.currentDirectoryPath) }
                ?? "\(stateDirectory)/reports/\(run.id).html"
            do {
                try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: page).deletingLastPathComponent().path, withIntermediateDirectories: true)
                try TimelinePage(timeline: timeline).render().write(toFile: page, atomically: true, encoding: .utf8)
                if let svg {
                    try TimelineSVG(timeline: timeline).render().write(toFile: PathText.resolve(svg, relativeTo: FileManager.default.currentDirectoryPath),
                                                                        atomically: true, encoding: .utf8)
                }
            } catch {
                out.failure("cannot write the report: \(error.localizedDescription)", key: "report.write")
                throw Exit(status: .failed)
            }
            if global.json {
                out.document(["run": run.id, "page": page, "svg": svg ?? NSNull(), "makespanSeconds": timeline.makespan,
                              "criticalPath": timeline.criticalPath, "steps": timeline.bars.count])
            } else {
                out.result(page)
                out.note("\(run.command): \(timeline.bars.count) steps in \(String(format: "%.1f", timeline.makespan)) s; "
                         + (run.graph == nil ? "no critical path (journaled before runs kept their step graph)" : "critical path \(timeline.criticalPath.count) steps"))
            }
        }
    }

    /// The state directory and the run word from what was typed.
    func locate(_ out: Output) throws(Exit) -> (String, String) {
        let loader = Loader(output: out)
        var words = self.words
        let runWord = words.count == 2 || (words.count == 1 && Self.looksLikeRun(words[0])) ? words.removeLast() : "last"
        if let name = words.first {
            let inv = try loader.inventory(name)
            return (loader.stateDirectory(global, inventory: inv), runWord)
        }
        if let explicit = global.stateDir ?? ProcessInfo.processInfo.environment["PROVISION_STATE_DIR"] { return (explicit, runWord) }
        let withJournal = ProjectLocator().availableInventories().compactMap { name -> String? in
            guard let path = try? ProjectLocator().inventoryPath(name), let (inv, _) = try? InventoryParser.load(path: path) else { return nil }
            let directory = loader.stateDirectory(global, inventory: inv)
            return FileManager.default.fileExists(atPath: directory + "/journal.sqlite") ? directory : nil
        }
        guard withJournal.count == 1 else {
            out.failure(withJournal.isEmpty ? "no inventory here has run yet; name one: `provision report INVENTORY`"
                                            : "several inventories have runs; name one: `provision report INVENTORY [RUN]`", key: "usage")
            throw Exit(status: .badInput)
        }
        return (withJournal[0], runWord)
    }
}
