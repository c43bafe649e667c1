import Foundation
import GRPCCore
import SwiftProtobuf

extension TalosClient {
    /// Waits, at most `timeout`, for the node's machine stage to be other than `known`. Talos'
    /// MachineService/Events sends a hello, then (asked for no backlog) only what happens next,
    /// of every kind (talos v1.13.9 v1alpha1_server.go Events), so the stage is read from COSI
    /// MachineStatus once the stream is open, and the stream then wakes the waiter on the change.
    /// Returns the stage seen (nil when nothing changed in time, or the stream ended: a node that
    /// reboots closes it). Errors are the caller's to treat as "not yet".
    public func stageChange(from known: MachineStatus.Stage?, within timeout: Duration) async throws -> MachineStatus.Stage? {
        var streaming = options
        streaming.timeout = timeout
        do {
            return try await machine { service in
                try await service.events(Machine_EventsRequest(), options: streaming) { response -> MachineStatus.Stage? in
                    for try await event in response.messages {
                        if event.data.typeURL.isEmpty {
                            // The hello: from here on nothing is missed, so the stage now is worth reading.
                            let now = try await machineStatus().stage
                            if now != known { return now }
                            continue
                        }
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

    /// How a sequence a request started ended, as its events tell.
    public enum SequenceOutcome: Sendable, Equatable {
        /// It got past stopping every service (what `talosctl reset --wait` takes for success).
        case pastStopAllServices
        /// It failed: Talos' message.
        case failed(String)
        /// The stream ended or the time ran out before either.
        case unknown
    }

    /// Follows the events of the sequence `actor` started (the id a Reset or Upgrade answered) from
    /// its start, read from the node's whole backlog, for at most `timeout`: the failure Talos
    /// reports only on this stream (the RPC answered long before), or the point past which it goes
    /// on to its end (talosctl's `stopAllServices` condition, cmd/talosctl/pkg/talos/action). A
    /// successful reset also ends with an error event, for its own reboot, after that point: it is
    /// never read as a failure here.
    public func sequenceOutcome(actor: String, within timeout: Duration) async throws -> SequenceOutcome {
        var streaming = options
        streaming.timeout = timeout
        var request = Machine_EventsRequest()
        request.tailEvents = -1
        do {
            return try await machine { service in
                try await service.events(request, options: streaming) { response -> SequenceOutcome in
                    var started = false
                    for try await event in response.messages {
                        let type = event.data.typeURL
                        if type.hasSuffix("machine.SequenceEvent"), event.actorID == actor,
                           let sequence = try? Machine_SequenceEvent(unpackingAny: event.data) {
                            if sequence.action == .start { started = true }
                            if started, sequence.hasError, !sequence.error.message.isEmpty { return .failed(sequence.error.message) }
                        } else if started, type.hasSuffix("machine.TaskEvent"), let task = try? Machine_TaskEvent(unpackingAny: event.data),
                                  task.task == "stopAllServices" {
                            return .pastStopAllServices
                        }
                    }
                    return .unknown
                }
            }
        } catch TalosError.timedOut {
            return .unknown
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
