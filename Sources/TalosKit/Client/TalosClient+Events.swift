import Foundation
import GRPCCore
import SwiftProtobuf

extension TalosClient {
    /// Waits, at most `timeout`, for the node's machine stage to be other than `known`, reading
    /// MachineService/Events: Talos sends the stage the machine is in, then each change as it
    /// happens, so a waiter learns of "running" when it happens rather than at its next poll.
    /// Returns the stage seen (nil when nothing changed in time, or the stream ended: a node that
    /// reboots closes it). Errors are the caller's to treat as "not yet".
    public func stageChange(from known: MachineStatus.Stage?, within timeout: Duration) async throws -> MachineStatus.Stage? {
        var streaming = options
        streaming.timeout = timeout
        var request = Machine_EventsRequest()
        request.tailEvents = 1
        do {
            return try await machine { service in
                try await service.events(request, options: streaming) { response -> MachineStatus.Stage? in
                    for try await event in response.messages {
                        guard event.data.typeURL.hasSuffix("machine.MachineStatusEvent"),
                              let status = try? Machine_MachineStatusEvent(unpackingAny: event.data) else { continue }
                        let stage = MachineStatus.Stage(status.stage)
                        if stage != known { return stage }
                    }
                    return nil
                }
            }
        } catch TalosError.timedOut {
            return nil
        }
    }
}

/// One table between the machine stages provision reads (COSI MachineStatus) and the ones Talos
/// streams (MachineStatusEvent): the lab writes events with it, the client reads them back.
extension Machine_MachineStatusEvent.MachineStage {
    public init(_ stage: MachineStatus.Stage) {
        switch stage {
        case .unknown: self = .unknown
        case .booting: self = .booting
        case .installing: self = .installing
        case .maintenance: self = .maintenance
        case .running: self = .running
        case .rebooting: self = .rebooting
        case .shuttingDown: self = .shuttingDown
        case .resetting: self = .resetting
        case .upgrading: self = .upgrading
        }
    }
}

extension MachineStatus.Stage {
    init(_ stage: Machine_MachineStatusEvent.MachineStage) {
        self = Self.allCases.first { Machine_MachineStatusEvent.MachineStage($0) == stage } ?? .unknown
    }
}
