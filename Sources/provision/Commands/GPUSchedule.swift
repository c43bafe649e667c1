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

extension GPU {
    struct Schedule: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "schedule",
            abstract: "Print the crontab lines (and systemd timers) that run each pool's schedule and the sweep.",
            discussion: """
                Each pool's `schedule.up` launches it for its defaultTTL and `schedule.down` tears it down; `gpu sweep` runs every 15 minutes so an instance past its expiry never outlives a missed `down`. Paste the crontab lines with `crontab -e`, or install the printed units with `systemctl --user enable --now provision-*.timer`.

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
                let loader = Loader(output: output)
                let inv = try loader.inventory(inventory)
                let binary = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
                let project = URL(fileURLWithPath: inv.directory).deletingLastPathComponent().path
                let log = loader.stateDirectory(global, inventory: inv) + "/logs/cron.jsonl"
                var jobs: [(name: String, cron: String, command: String)] = []
                for pool in inv.gpuPools {
                    let target = "\(inv.name)/\(pool.name.value)"
                    if let up = pool.scheduleUp?.value {
                        jobs.append(("gpu-up-\(inv.name)-\(pool.name.value)", up, "gpu up \(target) --ttl \(DurationText.format(pool.defaultTTL.value))"))
                    }
                    if let down = pool.scheduleDown?.value { jobs.append(("gpu-down-\(inv.name)-\(pool.name.value)", down, "gpu down \(target)")) }
                }
                jobs.append(("gpu-sweep-\(inv.name)", "*/15 * * * *", "gpu sweep \(inv.name)"))
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
                output.result("# provision GPU jobs for \(inv.name) (crontab -e); JSON lines go to \(log)")
                for job in jobs {
                    output.result("\(job.cron) cd \(project) && \(binary) \(job.command) --json >> \(log) 2>&1")
                }
                if inv.gpuPools.allSatisfy({ $0.scheduleUp == nil && $0.scheduleDown == nil }) {
                    output.note("no pool of \(inv.name) has a schedule; only the sweep is scheduled")
                }
            }
        }
    }
}
