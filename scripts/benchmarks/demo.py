"""`provision up demo` from an empty state directory (the newcomer's first command, on the
in-process lab), then again (nothing to do on the saved twin), then the live plan of it (warm)."""
import statistics, tempfile
from common import REPO, run, median_of

work = tempfile.mkdtemp(prefix="bench-demo-")
runs = []
for i in range(3):
    state = f"{work}/demo-{i}"
    runs.append((run(["up", "demo", "--state-dir", state], REPO)[0], run(["up", "demo", "--state-dir", state], REPO)[0]))
print(f"up demo, empty state directory          median {statistics.median(r[0] for r in runs):7.1f} ms   target < 60 s")
print(f"up demo again (nothing to do)           median {statistics.median(r[1] for r in runs):7.1f} ms")
plan_ms, plan_mb = median_of(["plan", "demo", "--state-dir", f"{work}/demo-0"], REPO, 5)
print(f"plan demo, converged (warm)             median {plan_ms:7.1f} ms   peak {plan_mb:6.1f} MB")
