"""Helpers the benchmark scripts share: run the release binary, time it, read its peak memory, copy
the demo project into a scratch folder. Every benchmark talks to loopback only."""
import os, resource, shutil, subprocess, sys, tempfile, time

BINARY = sys.argv[1]
REPO = os.getcwd()
os.environ["PROVISION_ALLOWED_NETWORKS"] = "127.0.0.0/8"


def run(args, cwd, ok=(0,), env=None):
    """One run: (milliseconds, peak RSS in MB, CPU seconds, CompletedProcess), from /usr/bin/time."""
    start = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", BINARY] + args, cwd=cwd, capture_output=True,
                            env=env or os.environ.copy())
    elapsed = (time.perf_counter() - start) * 1000
    if result.returncode not in ok:
        sys.exit(f"{args} exited {result.returncode}: {result.stderr.decode()[-1200:]}")
    rss, user, system = result.stderr.decode().strip().split("\n")[-1].split()
    return elapsed, int(rss) / 1024, float(user) + float(system), result


def median_of(args, cwd, runs, ok=(0, 2)):
    """Median milliseconds and largest peak RSS (MB) over `runs` runs."""
    results = [run(args, cwd, ok) for _ in range(runs)]
    times = sorted(r[0] for r in results)
    return times[len(times) // 2], max(r[1] for r in results)


def demo_project(time_scale=None, extra=""):
    """A scratch copy of the demo project (inventory, lab files, images, playbooks)."""
    project = tempfile.mkdtemp(prefix="bench-")
    for folder in ["inventories", "images", "lab", "playbooks"]:
        shutil.copytree(f"{REPO}/{folder}", f"{project}/{folder}", ignore=shutil.ignore_patterns(".*"))
    path = f"{project}/inventories/demo.yaml"
    text = open(path).read()
    if time_scale is not None:
        text = text.replace("timeScale: 0.02", f"timeScale: {time_scale}")
    open(path, "w").write(text + extra)
    return project


def serve(project, state):
    """`provision lab serve demo` in the background, once its EC2 endpoint answers."""
    lab = subprocess.Popen([BINARY, "lab", "serve", "demo", "--state-dir", state], cwd=project,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in lab.stdout:
        if line.startswith("ec2  "):
            return lab
    sys.exit("the lab did not start")


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def lab_project(name, workers, time_scale=0.02, subnet=30, extra="", disk="1GiB"):
    """A generated lab inventory: 3 control planes and `workers` workers as libvirt test-driver VMs
    on 127.SUBNET.x.y, Cilium, no foundation, no GPU pool. Returns the project folder."""
    project = tempfile.mkdtemp(prefix=f"bench-{name}-")
    for folder in ["inventories", "images", "playbooks"]:
        os.makedirs(f"{project}/{folder}")
    open(f"{project}/images/vm.yaml", "w").write(open(f"{REPO}/images/proxmox-vm.yaml").read())
    for entry in os.listdir(f"{REPO}/playbooks"):
        if entry.endswith(".yaml"):
            open(f"{project}/playbooks/{entry}", "w").write(open(f"{REPO}/playbooks/{entry}").read())
    nodes = []
    for i in range(3 + workers):
        role = "controlplane" if i < 3 else "worker"
        a, b = divmod(i + 11, 250)
        nodes.append(f"""  - name: n{i:03d}
    role: {role}
    image: vm
    address: 127.{subnet}.{a}.{b + 1}
    machine: {{provider: lab-libvirt, cpus: 2, memory: 2GiB, disk: {disk}, mac: "52:54:00:{subnet:02x}:{i // 256:02x}:{i % 256:02x}"}}
    install: {{disk: /dev/vda}}
""")
    open(f"{project}/inventories/{name}.yaml", "w").write(f"""apiVersion: provision/v1
kind: Inventory
cluster:
  name: {name}
  talosVersion: v1.13.2
  kubernetesVersion: v1.34.2
  endpoint: https://127.{subnet}.0.10:6443
  vip: 127.{subnet}.0.10
  nodeCIDR: 127.{subnet}.0.0/16
  gateway: 127.{subnet}.0.1
  nameservers: [127.{subnet}.0.1]
cni:
  kind: cilium
  apiServer: kubeprism
secrets:
  encryption: plaintext
providers:
  lab-libvirt:
    kind: libvirt
    uri: test:///default
    storagePool: default-pool
    imageFactory: http://127.{subnet}.0.3:45100
images:
  vm:
    schematic: ../images/vm.yaml
    platform: nocloud
nodes:
{"".join(nodes)}lab:
  timeScale: {time_scale}
{extra}""")
    return project
