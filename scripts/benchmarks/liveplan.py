"""The live plan at size: `up` of a generated 3 + 50 node lab (simulator in process), then `plan`
of it converged: time and peak memory."""
from common import run, median_of, lab_project

lab = lab_project("lab53", 50)
built, built_mb, _, _ = run(["up", "lab53", "--state-dir", f"{lab}/state"], lab)
print(f"up, 3 + 50 node lab, empty state        {built:7.1f} ms   peak {built_mb:6.1f} MB")
plan_ms, plan_mb = median_of(["plan", "lab53", "--state-dir", f"{lab}/state"], lab, 3)
print(f"plan, 3 + 50 node lab, converged        median {plan_ms:7.1f} ms   peak {plan_mb:6.1f} MB")
