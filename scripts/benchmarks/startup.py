"""`--help` cold start; validate and the static plan of a generated 500-node inventory; the secrets
bundle and 100 rendered configs. The generated inventories are only parsed, never run."""
import os, statistics, tempfile
from common import BINARY, REPO, run, median_of

work = tempfile.mkdtemp(prefix="bench-startup-")
for folder in ["inventories", "images", "playbooks"]:
    os.makedirs(f"{work}/{folder}")
open(f"{work}/images/vm.yaml", "w").write("customization:\n  systemExtensions:\n    officialExtensions:\n      - siderolabs/qemu-guest-agent\n")
for name in os.listdir(f"{REPO}/playbooks"):
    open(f"{work}/playbooks/{name}", "w").write(open(f"{REPO}/playbooks/{name}").read())


def inventory(name, count):
    nodes = []
    for i in range(count):
        role = "controlplane" if i < 3 else "worker"
        a, b = divmod(i + 11, 250)
        nodes.append(f"""  - name: node{i:03d}
    role: {role}
    image: vm
    address: 127.20.{a}.{b + 1}
    machine: {{provider: pve, cpus: 4, memory: 8GiB, disk: 64GiB, mac: "bc:24:11:00:{i // 256:02x}:{i % 256:02x}"}}
    install: {{disk: /dev/sda}}
""")
    open(f"{work}/inventories/{name}.yaml", "w").write(f"""apiVersion: provision/v1
kind: Inventory
cluster:
  name: {name}
  talosVersion: v1.13.2
  kubernetesVersion: v1.34.2
  endpoint: https://127.20.0.10:6443
  vip: 127.20.0.10
  nodeCIDR: 127.20.0.0/16
  gateway: 127.20.0.1
secrets:
  encryption: plaintext
providers:
  pve:
    kind: proxmox
    endpoint: https://127.0.0.1:8006
    node: pve1
    tokenSecret: env:PVE_TOKEN
    fingerprint: {":".join(["AA"] * 32)}
    vmIDRange: 1000-2999
images:
  vm:
    schematic: ../images/vm.yaml
nodes:
{"".join(nodes)}""")


inventory("big", 500)
inventory("hundred", 100)
help_ms, _ = median_of(["--help"], work, 50)
validate_ms, validate_mb = median_of(["validate", "big"], work, 10)
plan_ms, plan_mb = median_of(["plan", "big", "--graph", "--json", "--state-dir", f"{work}/state"], work, 10)
runs = []
for i in range(5):
    state = f"{work}/state-{i}"
    runs.append((run(["secrets", "init", "hundred", "--state-dir", state], work)[0],
                 run(["config", "render", "hundred", "--all", "--output", f"{work}/configs-{i}", "--state-dir", state], work)[0]))
print(f"provision --help (cold start)           median {help_ms:7.1f} ms   target < 25 ms")
print(f"validate, 500 nodes                     median {validate_ms:7.1f} ms   peak {validate_mb:6.1f} MB")
print(f"plan --graph --json, 500 nodes (static) median {plan_ms:7.1f} ms   peak {plan_mb:6.1f} MB   target < 1 s, < 100 MB")
print(f"secrets init (bundle incl. RSA-4096)    median {statistics.median(r[0] for r in runs):7.1f} ms")
print(f"config render --all, 100 nodes          median {statistics.median(r[1] for r in runs):7.1f} ms   (schema-checked, written 0600)")
print(f"bundle + 100 configs                    median {statistics.median(r[0] + r[1] for r in runs):7.1f} ms   target < 2 s")
