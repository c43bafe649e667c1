import ArgumentParser
import ProvisionCore

/// Runs a command body and turns `Exit` into the process exit code.
func runCommand(_ body: () async throws(Exit) -> Void) async throws {
    do {
        try await body()
    } catch {
        throw ExitCode(error.status.rawValue)
    }
}
