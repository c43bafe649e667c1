"""The Talos rollout of the demo at lab time scale 1 (v1.13.2 -> v1.13.9, the minis from v1.12.6 by
the legacy path; workers --max-parallel 3): makespan against the critical path read from the lab's
record (each node's upgrade, from its first upgrade call to running on the new boot: the control
planes in sequence plus the slowest worker), and peak memory."""
import json, shutil, time
from common import run, demo_project

project = demo_project(time_scale=1)
state = f"{project}/state"
inventory = f"{project}/inventories/demo.yaml"
text = open(inventory).read()
up_ms = run(["up", "demo", "--state-dir", state], project)[0]
open(inventory, "w").write(text.replace("talosVersion: v1.13.2", "talosVersion: v1.13.9").replace("talosVersion: v1.12.6", "talosVersion: v1.13.9"))
started = int(time.time() * 1000)
makespan, peak, _, _ = run(["upgrade", "demo", "--yes", "--max-parallel", "3", "--state-dir", state], project)
record = [json.loads(line) for line in open(f"{state}/lab/record.jsonl") if line.strip()]
record = [e for e in record if e["t"] >= started]


def span(node):
    first = min(e["t"] for e in record if e.get("node") == node and e["event"] == "call")
    boots = [e for e in record if e.get("node") == node and e["event"] == "stage" and e["t"] > first]
    new_boot = next(e["bootID"] for e in boots if e["stage"] == "booting")
    back = next(e["t"] for e in boots if e["stage"] == "running" and e["bootID"] == new_boot)
    return back - first


controlplanes, workers = ["cp1", "cp2", "cp3"], ["mini01", "mini02", "w1"]
spans = {node: span(node) for node in controlplanes + workers}
critical = sum(spans[n] for n in controlplanes) + max(spans[n] for n in workers)
print(f"up demo at time scale 1                 {up_ms / 1000:7.1f} s")
print(f"Talos rollout of the demo, scale 1      makespan {makespan / 1000:6.1f} s   critical path {critical / 1000:6.1f} s   ratio {makespan / critical:4.2f}   peak {peak:6.1f} MB")
print("  per node (first upgrade call to running on the new boot): " + ", ".join(f"{n} {spans[n] / 1000:.1f} s" for n in controlplanes + workers))
shutil.rmtree(project)
