import Dispatch
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Write end of the self-pipe the signal handler writes to. Set once, before the handler is
/// installed, and only read afterwards (from the handler, where only async-signal-safe calls are
/// allowed), which is why a plain global is safe here.
nonisolated(unsafe) private var signalPipeWrite: Int32 = -1

/// Cancels the run on the first SIGINT/SIGTERM (steps stop, the journal is flushed, exit 130);
/// a second signal exits at once.
///
/// It installs a real handler rather than SIG_IGN: an ignored signal stays ignored in every child
/// (a command we run could then not be stopped), while a handler is reset to default on exec.
final class SignalWatcher {
    private let source: any DispatchSourceRead
    private let fds: [Int32]

    init(onSignal: @escaping @Sendable () -> Void) {
        var pipeFDs: [Int32] = [0, 0]
        pipe(&pipeFDs)
        _ = fcntl(pipeFDs[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(pipeFDs[1], F_SETFD, FD_CLOEXEC)
        _ = fcntl(pipeFDs[1], F_SETFL, O_NONBLOCK)
        fds = pipeFDs
        signalPipeWrite = pipeFDs[1]
        for number in [SIGINT, SIGTERM] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { _ in
                var byte: UInt8 = 1
                _ = write(signalPipeWrite, &byte, 1)
            }
            sigemptyset(&action.sa_mask)
            sigaction(number, &action, nil)
        }
        let count = Counter()
        source = DispatchSource.makeReadSource(fileDescriptor: pipeFDs[0], queue: .global())
        source.setEventHandler { [fd = pipeFDs[0]] in
            var buffer = [UInt8](repeating: 0, count: 16)
            let received = max(1, read(fd, &buffer, buffer.count))
            for _ in 0..<received {
                if count.increment() > 1 {
                    FileHandle.standardError.write(Data("\ninterrupted again: exiting now\n".utf8))
                    exit(130)
                }
            }
            FileHandle.standardError.write(Data("\ninterrupting: stopping steps and saving the journal (Ctrl-C again to exit now)\n".utf8))
            onSignal()
        }
        source.resume()
    }

    func stop() {
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
        source.cancel()
    }
}

/// A tiny thread-safe counter for the signal handler's event handler.
final class Counter: Sendable {
    private let value = Mutex(0)
    func increment() -> Int { value.withLock { $0 += 1; return $0 } }
}
