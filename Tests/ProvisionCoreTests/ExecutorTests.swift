import Foundation
import Testing
@testable import ProvisionCore

@Suite struct ExecutorTests {
    @Test func globalConcurrencyBoundIsNeverExceeded() async throws {
        let h = Harness()
        // Work long enough that a loaded 2-core machine still starts the next step before one ends.
        let specs = (0..<20).map { (id: "s\($0)", deps: [String](), params: ["work": "100ms"]) }
        let summary = try await h.run(graph(specs), kinds: [TestStep(recorder: h.recorder)], options: .fast(concurrency: 3))
        #expect(summary.succeeded)
        #expect(summary.changed == 20)
        let peak = h.recorder.state.withLock { $0.maxRunning }
        #expect(peak <= 3)
        #expect(peak == 3, "independent steps should fill the bound")
    }

    @Test func perResourceBoundSerialisesStepsOnOneResource() async throws {
        let h = Harness()
        // Long enough that a loaded CI machine still starts storage-b's steps while storage-a's run.
        let specs = (0..<6).map { (id: "s\($0)", deps: [String](), params: ["work": "400ms", "resource": $0 < 4 ? "storage-a" : "storage-b"]) }
        let summary = try await h.run(graph(specs), kinds: [TestStep(recorder: h.recorder)], options: .fast(concurrency: 8))
        #expect(summary.succeeded)
        let peaks = h.recorder.state.withLock { $0.maxByResource }
        #expect(peaks["storage-a"] == 1)
        #expect(peaks["storage-b"] == 1)
        #expect(h.recorder.state.withLock { $0.maxRunning } >= 2, "different resources run together")
    }

    @Test func independentBranchesRunInParallel() async throws {
        let h = Harness()
        let specs = [
            (id: "a1", deps: [String](), params: ["work": "60ms"]), (id: "a2", deps: ["a1"], params: ["work": "60ms"]),
            (id: "a3", deps: ["a2"], params: ["work": "60ms"]),
            (id: "b1", deps: [String](), params: ["work": "60ms"]), (id: "b2", deps: ["b1"], params: ["work": "60ms"]),
            (id: "b3", deps: ["b2"], params: ["work": "60ms"]),
        ]
        let summary = try await h.run(graph(specs), kinds: [TestStep(recorder: h.recorder)], options: .fast())
        #expect(summary.succeeded)
        let intervals = h.recorder.state.withLock { $0.intervals }
        // Dependencies are respected: each step starts after its predecessor ended.
        for (step, dep) in [("a2", "a1"), ("a3", "a2"), ("b2", "b1"), ("b3", "b2")] {
            #expect(intervals[step]!.start >= intervals[dep]!.end)
        }
        // The branches overlap in time: some a-step ran while some b-step ran.
        let overlaps = ["a1", "a2", "a3"].contains { a in
            ["b1", "b2", "b3"].contains { b in intervals[a]!.start < intervals[b]!.end && intervals[b]!.start < intervals[a]!.end }
        }
        #expect(overlaps)
        // Makespan (from step timestamps) is set by the longer chain, not by both chains in series:
        // robust to a loaded machine, because scheduling gaps count in the chains' spans too.
        let start = intervals.values.map(\.start).min()!, end = intervals.values.map(\.end).max()!
        let spanA = intervals["a3"]!.end - intervals["a1"]!.start, spanB = intervals["b3"]!.end - intervals["b1"]!.start
        #expect((end - start) < spanA + spanB - .milliseconds(60))
    }

    @Test func transientErrorsAreRetriedPermanentOnesAreNot() async throws {
        let h = Harness()
        let flaky = TestStep(recorder: h.recorder, name: "test.flaky", failure: .transient(times: 2))
        let broken = TestStep(recorder: h.recorder, name: "test.broken", failure: .permanent)
        let g = StepGraph(graph([(id: "f", deps: [], params: [:])], kind: "test.flaky").instances
                          + graph([(id: "p", deps: [], params: [:])], kind: "test.broken").instances)
        let summary = try await h.run(g, kinds: [flaky, broken], options: .fast())
        #expect(summary.outcomes["f"] == .applied)
        #expect(summary.outcomes["p"] == .failed)
        let calls = h.recorder.state.withLock { $0.applyCalls }
        #expect(calls["f"] == 3)
        #expect(calls["p"] == 1)
        #expect(h.sink.all.filter { $0.kind == .stepRetrying && $0.step == "f" }.count == 2)
    }

    @Test func retryCapIsRespected() async throws {
        let h = Harness()
        let flaky = TestStep(recorder: h.recorder, failure: .transient(times: 100))
        var options = ExecutorOptions.fast()
        options.retry.maxAttempts = 3
        let summary = try await h.run(graph([(id: "f", deps: [], params: [:])]), kinds: [flaky], options: options)
        #expect(summary.outcomes["f"] == .failed)
        #expect(h.recorder.state.withLock { $0.applyCalls["f"] } == 3)
    }

    @Test func backoffGrowsAndStaysUnderTheCap() {
        let policy = RetryPolicy(maxAttempts: 10, baseDelay: .milliseconds(100), maxDelay: .seconds(2))
        for attempt in 1...10 {
            let ceiling = min(Duration.seconds(2), .milliseconds(100) * (1 << (attempt - 1)))
            for _ in 0..<50 { #expect(policy.delay(after: attempt) <= ceiling) }
        }
        let late = (0..<200).map { _ in policy.delay(after: 6) }
        #expect(late.contains { $0 > .milliseconds(400) }, "jitter spans the grown window")
    }

    @Test func aStepThatTimesOutIsReportedByName() async throws {
        let h = Harness()
        var g = graph([(id: "slow", deps: [], params: ["work": "60s"])])
        g = StepGraph(g.instances.map { var i = $0; i.timeout = .milliseconds(100); return i })
        let started = ContinuousClock.now
        let summary = try await h.run(g, kinds: [TestStep(recorder: h.recorder)], options: .fast())
        // Without the timeout the step would take 60 s. CPU-heavy tests running alongside (RSA-4096
        // keys, Python peers) can hold both pool threads for seconds, hence the wide margin.
        #expect(ContinuousClock.now - started < .seconds(30))
        #expect(summary.outcomes["slow"] == .failed)
        #expect(summary.errors["slow"]?.contains("step slow timed out after 100ms") == true)
    }

    @Test func failureBlocksDependentsButNotIndependentBranches() async throws {
        let h = Harness()
        let g = StepGraph(graph([(id: "bad", deps: [], params: [:])], kind: "test.broken").instances
                          + graph([(id: "after", deps: ["bad"], params: [:]), (id: "later", deps: ["after"], params: [:]),
                                   (id: "other", deps: [], params: [:])]).instances)
        let summary = try await h.run(g, kinds: [TestStep(recorder: h.recorder), TestStep(recorder: h.recorder, name: "test.broken", failure: .permanent)], options: .fast())
        #expect(summary.outcomes["bad"] == .failed)
        #expect(summary.outcomes["after"] == .blocked)
        #expect(summary.outcomes["later"] == .blocked)
        #expect(summary.outcomes["other"] == .applied)
        #expect(!summary.succeeded)
    }

    @Test func refusalIsReportedAsRefused() async throws {
        let h = Harness()
        let summary = try await h.run(graph([(id: "q", deps: [], params: [:])], kind: "test.refuse"),
                                      kinds: [TestStep(recorder: h.recorder, name: "test.refuse", failure: .refused)], options: .fast())
        #expect(summary.refused)
    }

    @Test func satisfiedStepsAreNotApplied() async throws {
        let h = Harness()
        h.recorder.state.withLock { $0.done = ["a"] }
        let summary = try await h.run(graph([(id: "a", deps: [], params: [:]), (id: "b", deps: ["a"], params: [:])]),
                                      kinds: [TestStep(recorder: h.recorder)], options: .fast())
        #expect(summary.outcomes["a"] == .satisfied)
        #expect(summary.outcomes["b"] == .applied)
        #expect(h.recorder.state.withLock { $0.applies["a"] } == nil)
    }

    @Test func dryRunObservesButNeverApplies() async throws {
        let h = Harness()
        var options = ExecutorOptions.fast()
        options.dryRun = true
        let summary = try await h.run(graph([(id: "a", deps: [], params: [:]), (id: "b", deps: ["a"], params: [:])]),
                                      kinds: [TestStep(recorder: h.recorder)], options: options)
        #expect(summary.outcomes["a"] == .pending)
        #expect(summary.outcomes["b"] == .pending)
        #expect(h.recorder.state.withLock { $0.applies.isEmpty })
    }

    @Test func untilStopsAfterTheNamedStep() async throws {
        let h = Harness()
        var options = ExecutorOptions.fast()
        options.until = "b"
        let summary = try await h.run(graph([(id: "a", deps: [], params: [:]), (id: "b", deps: ["a"], params: [:]), (id: "c", deps: ["b"], params: [:])]),
                                      kinds: [TestStep(recorder: h.recorder)], options: options)
        #expect(Set(summary.outcomes.keys) == ["a", "b"])
    }

    @Test func onlyRunsOneStepAndRefusesWhenItsDependencyIsNotDone() async throws {
        let h = Harness()
        var options = ExecutorOptions.fast()
        options.only = "b"
        let g = graph([(id: "a", deps: [], params: [:]), (id: "b", deps: ["a"], params: [:]), (id: "c", deps: ["b"], params: [:])])
        let first = try await h.run(g, kinds: [TestStep(recorder: h.recorder)], options: options)
        #expect(first.outcomes["a"] == .failed)
        #expect(first.errors["a"]?.contains("run without --only first") == true)
        #expect(first.outcomes["b"] == .blocked)
        _ = h.recorder.state.withLock { $0.done.insert("a") }
        let second = try await h.run(g, kinds: [TestStep(recorder: h.recorder)], options: options)
        #expect(second.outcomes["a"] == .satisfied)
        #expect(second.outcomes["b"] == .applied)
        #expect(second.outcomes["c"] == nil)
    }

    @Test func unknownUntilStepIsBadInput() async throws {
        let h = Harness()
        var options = ExecutorOptions.fast()
        options.until = "nope"
        await #expect(throws: InputError.self) {
            _ = try await h.run(graph([(id: "a", deps: [], params: [:])]), kinds: [TestStep(recorder: h.recorder)], options: options)
        }
    }

    @Test func cancellationLeavesNoStepMarkedRunning() async throws {
        let h = Harness()
        let journal = try Journal(path: h.directory + "/journal.sqlite")
        let specs = (0..<4).map { (id: "long\($0)", deps: [String](), params: ["work": "20s"]) } + [(id: "after", deps: ["long0"], params: [:])]
        let task = Task { try await h.run(graph(specs), kinds: [TestStep(recorder: h.recorder)], options: .fast(), journal: journal) }
        while h.recorder.state.withLock({ $0.running }) < 4 { try await Task.sleep(for: .milliseconds(5)) }
        task.cancel()
        let summary = try await task.value
        #expect(summary.interrupted)
        let attempts = try journal.allAttempts()
        #expect(!attempts.isEmpty)
        #expect(attempts.allSatisfy { $0.outcome != .running })
        #expect(attempts.filter { $0.stepID.hasPrefix("long") }.allSatisfy { $0.outcome == .interrupted })
        #expect(try journal.runs().first?.outcome == "interrupted")
    }

    @Test func resumeReobservesStepsTheJournalRecordsAsDone() async throws {
        let h = Harness()
        let journal = try Journal(path: h.directory + "/journal.sqlite")
        let g = graph([(id: "a", deps: [], params: [:]), (id: "b", deps: ["a"], params: [:])])
        _ = try await h.run(g, kinds: [TestStep(recorder: h.recorder)], options: .fast(), journal: journal)
        // Live state drifts: "a" is gone although the journal says it was applied.
        _ = h.recorder.state.withLock { $0.done.remove("a") }
        let second = try await h.run(g, kinds: [TestStep(recorder: h.recorder)], options: .fast(), journal: journal)
        #expect(second.outcomes["a"] == .applied, "re-observed, found missing, applied again")
        #expect(second.outcomes["b"] == .satisfied)
        #expect(h.recorder.state.withLock { $0.observes["a"] } == 2)
        #expect(h.sink.all.contains { $0.kind == .log && $0.level == .warning && ($0.message ?? "").contains("live state differs") })
    }

    @Test func outputsFlowToTheJournal() async throws {
        let h = Harness()
        let journal = try Journal(path: h.directory + "/journal.sqlite")
        _ = try await h.run(graph([(id: "a", deps: [], params: [:])]), kinds: [TestStep(recorder: h.recorder)], options: .fast(), journal: journal)
        let attempt = try #require(try journal.lastSuccess(step: "a"))
        #expect(attempt.decodedOutputs == ["node": "cluster"])
        #expect(attempt.inputsDigest == "d-a")
    }

    @Test func unavailableKindFailsBeforeAnythingRuns() async throws {
        let h = Harness()
        var catalog = StepCatalog()
        catalog.declare(StepKindInfo(name: "talos.apply-config", summary: "", estimate: .seconds(1)))
        let executor = Executor(graph: graph([(id: "a", deps: [], params: [:])], kind: "talos.apply-config"), catalog: catalog,
                                context: h.context(try Fixtures.inventory()), journal: nil, options: .fast())
        let error = await #expect(throws: StepError.self) { _ = try await executor.run(command: "t", playbook: "t") }
        #expect(error?.description == "step kind talos.apply-config is not available in this build")
        #expect(h.sink.all.isEmpty)
    }
}
