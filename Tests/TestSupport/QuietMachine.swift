/// Tests that emulate a whole machine (QEMU under TCG runs flat out) and tests that time a reaction
/// in milliseconds take this in turn, so the emulator never sits on a core the timing needs.
public actor QuietMachine {
    public static let shared = QuietMachine()
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        if !busy { busy = true; return }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
    }

    public static func exclusive<T: Sendable>(_ body: @Sendable () async throws -> T) async rethrows -> T {
        await shared.acquire()
        do {
            let value = try await body()
            await shared.release()
            return value
        } catch {
            await shared.release()
            throw error
        }
    }
}
