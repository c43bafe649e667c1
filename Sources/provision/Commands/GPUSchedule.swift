import ArgumentParser
import Foundation
import ProvisionCore

/// Cron expressions as systemd's OnCalendar, for the simple schedules pools use (fixed minute and
/// hour, any day of month and month, optional days of week); nil when a schedule needs a human.
enum CronCalendar {
    static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]

    static func onCalendar(_ cron: String) -> String? {
        let fields = cron.split(separator: " ").map(String.init)
        guard fields.count == 5, let minute = Int(fields[0]), (0...59).contains(minute), let hour = Int(fields[1]), (0...23).contains(hour),
              fields[2] == "*", fields[3] == "*" else { return nil }
        var weekdays = ""
        if fields[4] != "*" {
            var names: [String] = []
            for part in fields[4].split(separator: ",") {
                let bounds = part.split(separator: "-").compactMap { Int($0) }
                guard !bounds.isEmpty, bounds.count <= 2, bounds.allSatisfy({ (0...7).contains($0) }) else { return nil }
                names.append(bounds.count == 2 ? "\(days[bounds[0]])..\(days[bounds[1]])" : days[bounds[0]])
            }
            weekdays = names.joined(separator: ",") + " "
        }
        return String(format: "%@*-*-* %02d:%02d:00", weekdays, hour, minute)
    }
}

/// A job cron or systemd runs: its unit name, its five-field schedule and provision's arguments.
struct ScheduledJob {
    var name: String
    var cron: String
    var command: String

    /// Each GPU pool's `schedule.up`/`schedule.down`, and the sweep every 15 minutes.
    static func gpu(_ inv: Inventory) -> [ScheduledJob] {
        var jobs: [ScheduledJob] = []
        for pool in inv.gpuPools {
            let target = "\(inv.name)/\(pool.name.value)"
            if let up = pool.scheduleUp?.value {
                jobs.append(.init(name: "gpu-up-\(inv.name)-\(pool.name.value)", cron: up, command: "gpu up \(target) --ttl \(DurationText.format(pool.defaultTTL.value))"))
            }
            if let down = pool.scheduleDown?.value { jobs.append(.init(name: "gpu-down-\(inv.name)-\(pool.name.value)", cron: down, command: "gpu down \(target)")) }
        }
        jobs.append(.init(name: "gpu-sweep-\(inv.name)", cron: "*/15 * * * *", command: "gpu sweep \(inv.name)"))
        return jobs
    }

    /// `backup.schedule`: a backup set (retention follows it).
    static func backup(_ inv: Inventory) -> [ScheduledJob] {
        guard let cron = inv.backup?.schedule?.value else { return [] }
        return [.init(name: "backup-\(inv.name)", cron: cron, command: "backup \(inv.name)")]
    }

    /// Prints the jobs as crontab lines (JSON lines appended to the state's cron log), as systemd
    /// user units, or as one `--json` document.
    static func print(_ jobs: [ScheduledJob], inventory inv: Inventory, systemd: Bool, global: GlobalOptions, output: Output, title: String) {
        let loader = Loader(output: output)
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        let project = URL(fileURLWithPath: inv.directory).deletingLastPathComponent().path
        let log = loader.stateDirectory(global, inventory: inv) + "/logs/cron.jsonl"
        if global.json {
            output.document(["inventory": inv.name, "jobs": jobs.map { ["name": $0.name, "schedule": $0.cron, "command": "\(binary) \($0.command) --json"] }])
            return
        }
        if systemd {
            for job in jobs {
                let calendar = job.cron == "*/15 * * * *" ? "*:0/15" : CronCalendar.onCalendar(job.cron)
                output.result("""
                    # ~/.config/systemd/user/provision-\(job.name).service
                    [Unit]
                    Description=provision \(job.command)
                    [Service]
                    Type=oneshot
                    WorkingDirectory=\(project)
                    ExecStart=\(binary) \(job.command) --json
                    # ~/.config/systemd/user/provision-\(job.name).timer
                    [Timer]
                    \(calendar.map { "OnCalendar=\($0)" } ?? "# OnCalendar= translate \"\(job.cron)\" by hand")
                    Persistent=true
                    [Install]
                    WantedBy=timers.target

                    """)
            }
            return
        }
        output.result("# \(title) for \(inv.name) (crontab -e); JSON lines go to \(log)")
        for job in jobs {
            output.result("\(job.cron) cd \(project) && \(binary) \(job.command) --json >> \(log) 2>&1")
        }
    }
}

extension GPU {
    struct Schedule: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "schedule",
            abstract: "Print the crontab lines (and systemd timers) that run each pool's schedule and the sweep.",
            discussion: """
                Each pool's `schedule.up` launches it for its defaultTTL and `schedule.down` tears it down; `gpu sweep` runs every 15 minutes so an instance past its expiry never outlives a missed `down`. Paste the crontab lines with `crontab -e`, or install the printed units with `systemctl --user enable --now provision-*.timer`. `provision schedule` prints these and the backup's.

                Examples:
                  provision gpu schedule homelab
                  provision gpu schedule homelab --systemd
                """)

        @OptionGroup var global: GlobalOptions
        @Argument(help: "Inventory name or path.") var inventory: String
        @Flag(help: "Print systemd service and timer units instead of crontab lines.") var systemd = false

        func run() async throws {
            try await runCommand { () throws(Exit) in
                let output = Output(json: global.json)
                let inv = try Loader(output: output).inventory(inventory)
                ScheduledJob.print(ScheduledJob.gpu(inv), inventory: inv, systemd: systemd, global: global, output: output, title: "provision GPU jobs")
                if !global.json, !systemd, inv.gpuPools.allSatisfy({ $0.scheduleUp == nil && $0.scheduleDown == nil }) {
                    output.note("no pool of \(inv.name) has a schedule; only the sweep is scheduled")
                }
            }
        }
    }
}

struct Schedule: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule",
        abstract: "Print the crontab lines (or systemd timers) for everything an inventory runs on a schedule: backups, GPU pools, the sweep.",
        discussion: """
            `backup.schedule` takes a backup set (retention follows it); each GPU pool's `schedule.up` and `schedule.down` launch and tear it down, and `gpu sweep` runs every 15 minutes so an instance past its expiry never outlives a missed `down`. Output of each run goes to the state directory's logs/cron.jsonl as JSON lines. Runs that overlap wait for the inventory lock, never interleave.

            Examples:
              provision schedule homelab                 crontab lines (crontab -e)
              provision schedule homelab --systemd       user units: systemctl --user enable --now provision-*.timer
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "Inventory name or path.") var inventory: String
    @Flag(help: "Print systemd service and timer units instead of crontab lines.") var systemd = false

    func run() async throws {
        try await runCommand { () throws(Exit) in
            let output = Output(json: global.json)
            let inv = try Loader(output: output).inventory(inventory)
            let jobs = ScheduledJob.backup(inv) + ScheduledJob.gpu(inv)
            ScheduledJob.print(jobs, inventory: inv, systemd: systemd, global: global, output: output, title: "provision jobs")
            if !global.json, inv.backup?.schedule == nil {
                output.note(inv.backup == nil ? "\(inv.name) has no `backup:` section: no backup is scheduled" : "`backup.schedule` is not set: no backup is scheduled")
            }
        }
    }
}
