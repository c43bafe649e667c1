import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A started child process whose exit can be awaited.
///
/// Children are spawned from a fresh thread that has cleared its signal mask: `Process.run()` spawns
/// from the calling thread, a child inherits that thread's mask, and Swift's concurrency and Dispatch
/// threads block nearly every signal, so a child started from one has SIGCHLD and SIGTERM blocked (a
/// shell's `wait` never wakes, `kill -TERM` does nothing). Exit is reported through
/// `terminationHandler`, which fires at once, where `waitUntilExit()` polls.
public final class ChildProcess: Sendable {
    private enum State {
        case running([CheckedContinuation<Int32, Never>])
        case exited(Int32)
    }

    private let state = Mutex(State.running([]))
    public let process: Process

    private init(_ process: Process) { self.process = process }

    public static func launch(_ process: Process) async throws -> ChildProcess {
        let child = ChildProcess(process)
        process.terminationHandler = { finished in child.finish(finished.terminationStatus) }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let thread = Thread {
                var empty = sigset_t()
                sigemptyset(&empty)
                pthread_sigmask(SIG_SETMASK, &empty, nil)
                do {
                    try process.run()
                    continuation.resume()
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            thread.start()
        }
        return child
    }

    /// The exit status (or signal number for a killed child).
    public func exited() async -> Int32 {
        await withCheckedContinuation { continuation in
            let done: Int32? = state.withLock { state in
                switch state {
                case let .exited(status): return status
                case var .running(waiters):
                    waiters.append(continuation)
                    state = .running(waiters)
                    return nil
                }
            }
            if let done { continuation.resume(returning: done) }
        }
    }

    private func finish(_ status: Int32) {
        let waiters: [CheckedContinuation<Int32, Never>] = state.withLock { state in
            guard case let .running(waiters) = state else { return [] }
            state = .exited(status)
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: status) }
    }
}
