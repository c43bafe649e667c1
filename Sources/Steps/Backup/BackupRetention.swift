import Foundation

/// Which sets retention removes: all but the newest `keepLast` complete sets and the newest complete
/// set of each of the last `keepDaily` days (UTC). The newest complete set is never removed, and an
/// incomplete set (a killed upload) only once a newer complete one exists. Only called after a
/// successful upload, so a failing backup never thins what is there.
public enum BackupRetention {
    public static func expired(_ sets: [BackupSet], keepLast: Int, keepDaily: Int, now: Date = Date()) -> [BackupSet] {
        let newestFirst = sets.sorted { $0.date > $1.date }
        let complete = newestFirst.filter(\.complete)
        guard let newest = complete.first else { return [] }
        var kept = Set(complete.prefix(max(1, keepLast)).map(\.name))
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let today = calendar.startOfDay(for: now)
        var daysSeen: Set<Date> = []
        for set in complete {
            let day = calendar.startOfDay(for: set.date)
            guard let age = calendar.dateComponents([.day], from: day, to: today).day, age < keepDaily else { continue }
            if daysSeen.insert(day).inserted { kept.insert(set.name) }
        }
        return newestFirst.filter { set in
            if kept.contains(set.name) { return false }
            return set.complete || set.date < newest.date
        }
    }
}
