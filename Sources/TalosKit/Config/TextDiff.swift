/// A unified line diff, as `diff -u` and Talos' dry-run apply print one: what `plan` shows for a
/// node whose config differs, and what the lab answers a dry-run apply with.
public enum TextDiff {
    /// `nil` when the texts are equal; otherwise hunks with `context` lines around each change.
    public static func unified(_ old: String, _ new: String, oldName: String = "a", newName: String = "b", context: Int = 3) -> String? {
        let a = lines(old), b = lines(new)
        guard a != b else { return nil }
        let script = edits(a, b)
        var out = "--- \(oldName)\n+++ \(newName)\n"
        // Group edits into hunks: changed lines plus `context` unchanged lines around them.
        var index = 0
        while index < script.count {
            guard let change = script[index...].firstIndex(where: { $0.kind != .same }) else { break }
            var end = change
            var lastChange = change
            while end < script.count {
                if script[end].kind != .same { lastChange = end }
                if end - lastChange > 2 * context { break }
                end += 1
            }
            let start = max(index, change - context)
            let stop = min(script.count, lastChange + context + 1)
            let hunk = script[start..<stop]
            let oldStart = (hunk.first { $0.kind != .insert }?.old ?? 0) + 1
            let newStart = (hunk.first { $0.kind != .delete }?.new ?? 0) + 1
            let oldCount = hunk.filter { $0.kind != .insert }.count, newCount = hunk.filter { $0.kind != .delete }.count
            out += "@@ -\(oldCount == 0 ? oldStart - 1 : oldStart),\(oldCount) +\(newCount == 0 ? newStart - 1 : newStart),\(newCount) @@\n"
            for edit in hunk {
                switch edit.kind {
                case .same: out += " " + a[edit.old] + "\n"
                case .delete: out += "-" + a[edit.old] + "\n"
                case .insert: out += "+" + b[edit.new] + "\n"
                }
            }
            index = stop
        }
        return out
    }

    struct Edit {
        enum Kind { case same, delete, insert }
        var kind: Kind
        var old: Int
        var new: Int
    }

    static func lines(_ text: String) -> [String] {
        var parts = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if parts.last == "" { parts.removeLast() }
        return parts
    }

    /// Longest-common-subsequence edit script, after trimming the common prefix and suffix (configs
    /// differ in a few lines, so the table stays small).
    static func edits(_ a: [String], _ b: [String]) -> [Edit] {
        var prefix = 0
        while prefix < a.count, prefix < b.count, a[prefix] == b[prefix] { prefix += 1 }
        var suffix = 0
        while suffix < a.count - prefix, suffix < b.count - prefix, a[a.count - 1 - suffix] == b[b.count - 1 - suffix] { suffix += 1 }
        let middleA = Array(a[prefix..<(a.count - suffix)]), middleB = Array(b[prefix..<(b.count - suffix)])
        let n = middleA.count, m = middleB.count
        var table = [[Int]](repeating: [Int](repeating: 0, count: m + 1), count: n + 1)
        if n > 0, m > 0 {
            for i in stride(from: n - 1, through: 0, by: -1) {
                for j in stride(from: m - 1, through: 0, by: -1) {
                    table[i][j] = middleA[i] == middleB[j] ? table[i + 1][j + 1] + 1 : max(table[i + 1][j], table[i][j + 1])
                }
            }
        }
        var script = (0..<prefix).map { Edit(kind: .same, old: $0, new: $0) }
        var i = 0, j = 0
        while i < n || j < m {
            if i < n, j < m, middleA[i] == middleB[j] {
                script.append(Edit(kind: .same, old: prefix + i, new: prefix + j)); i += 1; j += 1
            } else if i < n, j == m || table[i + 1][j] >= table[i][j + 1] {
                script.append(Edit(kind: .delete, old: prefix + i, new: prefix + j)); i += 1
            } else {
                script.append(Edit(kind: .insert, old: prefix + i, new: prefix + j)); j += 1
            }
        }
        for k in 0..<suffix { script.append(Edit(kind: .same, old: a.count - suffix + k, new: b.count - suffix + k)) }
        return script
    }
}
