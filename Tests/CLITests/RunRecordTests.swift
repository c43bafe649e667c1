import Foundation
import ProvisionCore
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import TestSupport

/// What a run leaves to look at: `--metrics-file` checked by Prometheus' own `promtool`, and the
/// `provision report` page opened by headless Chromium with the network off.
@Suite(.serialized) struct RunRecordTests {
    /// Samples of `name` in a metrics file: labels text -> value.
    func samples(_ text: String, _ name: String) -> [String: Double] {
        var found: [String: Double] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix(name + "{") || line.hasPrefix(name + " ") {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let value = Double(parts[1]) else { continue }
            found[String(parts[0].dropFirst(name.count))] = value
        }
        return found
    }

    func promtool(_ path: String) async throws -> Subprocess.Result {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try await Subprocess.run(["promtool", "check", "metrics"], stdin: text)
    }

    @Test(.timeLimit(.minutes(5))) func metricsOfUpAndGPUUpPassPromtool() async throws {
        let state = temporaryDirectory()
        let up = state + "/up.prom", gpu = state + "/gpu.prom"
        try await DemoLabLock.exclusive {
            let built = try await CLI.run(["up", "demo", "--state-dir", state, "--metrics-file", up], timeout: .seconds(150))
            #expect(built.status == 0, "\(built.stderr)")
            let launched = try await CLI.run(["gpu", "up", "demo/gpu", "--ttl", "4h", "--state-dir", state, "--metrics-file", gpu], timeout: .seconds(150))
            #expect(launched.status == 0, "\(launched.stderr)")
        }
        for path in [up, gpu] {
            let checked = try await promtool(path)
            #expect(checked.status == 0, "promtool (Debian's prometheus, from scripts/bootstrap) accepts \(path): \(checked.stdout)\(checked.stderr)")
            let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
            #expect(mode == 0o644, "readable by node_exporter")
        }
        let upText = try String(contentsOfFile: up, encoding: .utf8)
        let run = #"{inventory="demo",playbook="up"}"#
        let duration = try #require(samples(upText, "provision_run_duration_seconds")[run])
        #expect(duration > 0.5 && duration < 150, "\(duration)")
        #expect(samples(upText, "provision_run_success")[run] == 1)
        let steps = samples(upText, "provision_run_steps")
        #expect((steps[#"{inventory="demo",outcome="applied",playbook="up"}"#] ?? 0) >= 20, "\(steps)")
        #expect(steps[#"{inventory="demo",outcome="failed",playbook="up"}"#] == 0)
        #expect(samples(upText, "provision_run_retries")[run] != nil)
        let success = try #require(samples(upText, "provision_run_last_success_timestamp_seconds")[run])
        #expect(abs(success - Date().timeIntervalSince1970) < 300)
        #expect(samples(upText, "provision_gpu_instances_running")[#"{inventory="demo",pool="gpu"}"#] == 0)

        let gpuText = try String(contentsOfFile: gpu, encoding: .utf8)
        #expect(samples(gpuText, "provision_run_success")[#"{inventory="demo",playbook="gpu-up"}"#] == 1, "\(gpuText)")
        #expect(samples(gpuText, "provision_gpu_instances_running")[#"{inventory="demo",pool="gpu"}"#] == 1, "\(gpuText)")
        let expiry = samples(gpuText, "provision_gpu_instance_expiry_seconds")
        #expect(expiry.count == 1 && expiry.values.allSatisfy { $0 > 4 * 3600 - 600 && $0 <= 4 * 3600 }, "seconds to the 4h expiry: \(expiry)")
    }

    @Test(.timeLimit(.minutes(5))) func reportPageRendersOfflineInChromium() async throws {
        let state = temporaryDirectory()
        try await DemoLabLock.exclusive {
            let built = try await CLI.run(["up", "demo", "--state-dir", state], timeout: .seconds(150))
            #expect(built.status == 0, "\(built.stderr)")
        }
        let page = state + "/out/run.html", svg = state + "/out/run.svg"
        let made = try await CLI.run(["report", "demo", "last", "--state-dir", state, "--output", page, "--svg", svg, "--json"])
        #expect(made.status == 0, "\(made.stderr)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(made.stdout.utf8)) as? [String: Any])
        let steps = try #require(summary["steps"] as? Int)
        let critical = try #require(summary["criticalPath"] as? [String])
        #expect(steps >= 30, "\(summary)")
        #expect(critical.last == "verify", "the run ends with verify: \(critical)")

        let html = try String(contentsOfFile: page, encoding: .utf8)
        for external in ["src=", "href=", "url(", "@import", "<script"] {
            #expect(!html.contains(external), "self-contained: no \(external)")
        }
        // Headless Chromium (Debian's, from scripts/bootstrap) with every connection refused.
        let offline = ["--headless", "--no-sandbox", "--disable-gpu", "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"]
        let dom = try await Subprocess.run(["chromium"] + offline + ["--dump-dom", "file://" + page])
        #expect(dom.status == 0, "chromium rendered the page: \(dom.stderr.suffix(400))")
        let bars = dom.stdout.components(separatedBy: #"<g class="bar "#).count - 1
        #expect(bars == steps, "one bar per step: \(bars) of \(steps)")
        let marked = try NSRegularExpression(pattern: #"<g class="bar [^"]*\bcritical\b"#)
            .numberOfMatches(in: dom.stdout, range: NSRange(dom.stdout.startIndex..., in: dom.stdout))
        #expect(marked == critical.count, "the critical path is marked: \(marked) of \(critical.count)")
        #expect(dom.stdout.contains("<h2>Critical path</h2>"))
        let shot = state + "/out/run.png"
        let screenshot = try await Subprocess.run(["chromium"] + offline + ["--window-size=1400,1200", "--screenshot=" + shot, "file://" + page])
        #expect(screenshot.status == 0, "\(screenshot.stderr.suffix(400))")
        let size = (try? FileManager.default.attributesOfItem(atPath: shot)[.size] as? Int) ?? 0
        #expect(size > 10_000, "a screenshot of the page (\(size) bytes at \(shot))")

        let parser = XMLParser(data: try Data(contentsOf: URL(fileURLWithPath: svg)))
        #expect(parser.parse(), "the SVG is well-formed XML: \(parser.parserError.map { "\($0)" } ?? "")")
        let svgText = try String(contentsOfFile: svg, encoding: .utf8)
        #expect(svgText.components(separatedBy: #"<g class="bar "#).count - 1 == steps)
    }

    @Test func reportOfNothingSaysSo() async throws {
        let state = temporaryDirectory()
        let none = try await CLI.run(["report", "demo", "--state-dir", state])
        #expect(none.status == 64 && none.stderr.contains("nothing has run"), "\(none.stderr)")
    }
}
