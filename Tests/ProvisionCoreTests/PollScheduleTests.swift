import Testing
@testable import ProvisionCore

/// Waits look again soon after they start and back off to their cap, so a condition that turns
/// true is seen within the cap (250 ms at most in a run) without polling hot for minutes.
@Suite struct PollScheduleTests {
    @Test func pausesStartAt100msAndGrowByHalfToTheCap() {
        var schedule = PollSchedule(cap: .milliseconds(250))
        let pauses = (0..<5).map { _ in schedule.next() }
        #expect(pauses == [.milliseconds(100), .milliseconds(150), .milliseconds(225), .milliseconds(250), .milliseconds(250)])
    }

    @Test func aCapBelowTheStartIsTheOnlyPause() {
        var schedule = PollSchedule(cap: .milliseconds(40))
        #expect((0..<3).map { _ in schedule.next() } == [.milliseconds(40), .milliseconds(40), .milliseconds(40)])
        var zero = PollSchedule(cap: .zero)
        #expect(zero.next() == .milliseconds(1), "never a zero pause: a wait must not spin")
    }
}
