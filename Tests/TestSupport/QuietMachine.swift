/// Tests that emulate a whole machine (QEMU under TCG runs flat out) and tests that time a reaction
/// in milliseconds take this in turn, so the emulator never sits on a core the timing needs.
public enum QuietMachine {
    static let lock = TurnLock()

    public static func exclusive<T: Sendable>(_ body: @Sendable () async throws -> T) async rethrows -> T {
        try await lock.holding(body)
    }
}
