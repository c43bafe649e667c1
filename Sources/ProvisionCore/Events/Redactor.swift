import Foundation
import Synchronization

/// Remembers every secret value resolved during a run and blanks it out of any text before that text
/// reaches a terminal, a log file, the journal or a JSON event. One per run, shared by every sink.
public final class Redactor: Sendable {
    private let secrets = Mutex<Set<String>>([])

    public static let mask = "«redacted»"

    public init() {}

    /// Values shorter than 4 characters are not registered: masking them would shred ordinary text,
    /// and no real credential is that short.
    public func register(_ secret: String) {
        let trimmed = secret.trimmingWhitespace()
        guard trimmed.count >= 4 else { return }
        secrets.withLock { set in
            set.insert(secret)
            set.insert(trimmed)
        }
    }

    public func redact(_ text: String) -> String {
        let values = secrets.withLock { $0 }
        guard !values.isEmpty else { return text }
        var result = text
        // Longest first, so a secret that contains another is masked whole.
        for secret in values.sorted(by: { $0.count > $1.count }) where result.contains(secret) {
            result = result.replacingOccurrences(of: secret, with: Self.mask)
        }
        return result
    }
}
