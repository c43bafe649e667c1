import Foundation
import Synchronization

/// Remembers every secret value resolved during a run and blanks it out of any text before that text
/// reaches a terminal, a log file, the journal or a JSON event. One per run, shared by every sink.
public final class Redactor: Sendable {
    /// Registered values, longest first, so a secret that contains another is masked whole
    /// (sorted when registered, not on every line logged).
    private let secrets = Mutex<[String]>([])

    public static let mask = "«redacted»"

    public init() {}

    /// Values shorter than 4 characters are not registered: masking them would shred ordinary text,
    /// and no real credential is that short.
    public func register(_ secret: String) {
        let trimmed = secret.trimmingWhitespace()
        guard trimmed.count >= 4 else { return }
        secrets.withLock { list in
            for value in [secret, trimmed] where !list.contains(value) {
                let length = value.utf8.count
                list.insert(value, at: list.firstIndex { $0.utf8.count < length } ?? list.endIndex)
            }
        }
    }

    public func redact(_ text: String) -> String {
        let values = secrets.withLock { $0 }
        guard !values.isEmpty else { return text }
        var result = text
        for secret in values where result.contains(secret) {
            result = result.replacingOccurrences(of: secret, with: Self.mask)
        }
        return result
    }
}
