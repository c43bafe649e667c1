"""`provision machines up` of five Proxmox VMs against Ansible's community.proxmox.proxmox_kvm doing
the same create (disk imported from the same image, grown to 16 GiB) and start, on fakepve at time
scale 1 (PVE's own task durations), first run and converged re-run. Ansible comes from PyPI into
the bench's own virtual environment (.build-bench/venv). Both start from the same state: no VMs,
the Talos disk image already on the storage (a warm-up run downloads it, then its VMs are deleted)."""
import json, os, shutil, ssl, subprocess, sys, tempfile, time, urllib.parse, urllib.request
from common import BINARY, REPO, run

HOST, SECRET = "127.0.0.93", "bench-token-secret"
TOKEN = "root@pam!bench"
VENV = f"{REPO}/.build-bench/venv"
if not os.path.exists(f"{VENV}/bin/ansible-playbook"):
    subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    subprocess.run([f"{VENV}/bin/pip", "install", "-q", "--disable-pip-version-check", "ansible", "proxmoxer", "requests"], check=True)

work = tempfile.mkdtemp(prefix="bench-ansible-")
ready = f"{work}/ready"
pve = subprocess.Popen([sys.executable, f"{REPO}/Tests/Interop/fakepve_serve.py", "--host", HOST, "--ready", ready, "--time-scale", "1"],
                       env={**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "PVE_TEST_TOKEN": f"{TOKEN}={SECRET}"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE


def api(method, path, form=None):
    data = None if form is None else "&".join(f"{k}={urllib.parse.quote(str(v), safe='')}" for k, v in form.items()).encode()
    request = urllib.request.Request(f"https://{HOST}:8006/api2/json{path}", data=data, method=method,
                                     headers={"Authorization": f"PVEAPIToken={TOKEN}={SECRET}"})
    with urllib.request.urlopen(request, context=context, timeout=120) as reply:
        return json.loads(reply.read())["data"]


def wait_task(upid):
    while api("GET", f"/nodes/pve1/tasks/{urllib.parse.quote(upid, safe='')}/status")["status"] != "stopped":
        time.sleep(0.2)


def delete_all():
    for vm in api("GET", "/cluster/resources?type=vm"):
        vmid = vm["vmid"]
        if vm.get("status") == "running":
            wait_task(api("POST", f"/nodes/pve1/qemu/{vmid}/status/stop", {}))
        wait_task(api("DELETE", f"/nodes/pve1/qemu/{vmid}?purge=1"))


try:
    for _ in range(200):
        if os.path.exists(ready):
            break
        time.sleep(0.1)
    fingerprint = open(ready).read().strip()
    api("PUT", "/storage/local", {"content": "iso,vztmpl,backup,import"})
    for folder in ["inventories", "images", "playbooks"]:
        os.makedirs(f"{work}/{folder}")
    shutil.copy(f"{REPO}/images/proxmox-vm.yaml", f"{work}/images/vm.yaml")
    shutil.copy(f"{REPO}/playbooks/machines-up.yaml", f"{work}/playbooks/machines-up.yaml")
    nodes = "".join(f"""  - name: vm{i}
    role: {"controlplane" if i < 3 else "worker"}
    image: vm
    address: 127.1.0.{11 + i}
    machine: {{provider: pve, cpus: 2, memory: 2GiB, disk: 16GiB, mac: "bc:24:11:00:00:{11 + i:02x}"}}
    install: {{disk: /dev/sda}}
""" for i in range(5))
    open(f"{work}/inventories/pve.yaml", "w").write(f"""apiVersion: provision/v1
kind: Inventory
cluster: {{name: bench, talosVersion: v1.13.2, kubernetesVersion: v1.34.2, endpoint: "https://127.1.0.10:6443",
          vip: 127.1.0.10, nodeCIDR: 127.1.0.0/24, gateway: 127.1.0.1, podCIDR: 10.244.0.0/16, serviceCIDR: 10.96.0.0/12}}
secrets: {{encryption: plaintext}}
providers:
  pve:
    kind: proxmox
    endpoint: https://{HOST}:8006
    node: pve1
    tokenID: "{TOKEN}"
    tokenSecret: env:BENCH_PVE_SECRET
    fingerprint: {fingerprint}
    vmIDRange: 9000-9099
images:
  vm: {{schematic: ../images/vm.yaml, platform: nocloud}}
nodes:
{nodes}""")
    os.environ["BENCH_PVE_SECRET"] = SECRET
    command = ["machines", "up", "pve", "--state-dir", f"{work}/state"]
    run(command, work)                      # warm-up: downloads the image once
    volume = next(v["volid"] for v in api("GET", "/nodes/pve1/storage/local/content?content=import"))
    delete_all()
    first = run(command, work)[0] / 1000
    again = run(command, work)[0] / 1000
    delete_all()

    tasks = [{"vmid": 9000 + i, "name": f"vm{i}", "mac": f"BC:24:11:00:00:{11 + i:02X}"} for i in range(5)]
    common = {"api_host": HOST, "api_port": 8006, "api_user": "root@pam", "api_token_id": "bench", "api_token_secret": SECRET,
              "validate_certs": False, "node": "pve1"}
    playbook = [{"hosts": "localhost", "gather_facts": False, "connection": "local", "tasks": [
        {"name": "create", "loop": tasks, "community.proxmox.proxmox_kvm": {**common, "vmid": "{{ item.vmid }}", "name": "{{ item.name }}",
         "cores": 2, "memory": 2048, "machine": "q35", "bios": "ovmf", "cpu": "host", "balloon": 0, "scsihw": "virtio-scsi-pci",
         "efidisk0": {"storage": "local-lvm", "format": "raw", "efitype": "4m", "pre_enrolled_keys": False},
         "scsi": {"scsi0": f"local-lvm:0,import-from={volume},discard=on,ssd=1"}, "net": {"net0": "virtio={{ item.mac }},bridge=vmbr0"},
         "serial": {"serial0": "socket"}, "ostype": "l26", "boot": "order=scsi0", "tags": ["talos", "bench"], "state": "present"}},
        {"name": "grow", "loop": tasks, "community.proxmox.proxmox_disk": {**common, "vmid": "{{ item.vmid }}", "disk": "scsi0", "size": "16G",
                                                                            "state": "resized"}},
        {"name": "start", "loop": tasks, "community.proxmox.proxmox_kvm": {**common, "vmid": "{{ item.vmid }}", "state": "started"}},
    ]}]
    for key in ["node"]:
        playbook[0]["tasks"][1]["community.proxmox.proxmox_disk"].pop(key)
    open(f"{work}/site.yml", "w").write(json.dumps(playbook))
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "ANSIBLE_PYTHON_INTERPRETER": f"{VENV}/bin/python", "ANSIBLE_LOCALHOST_WARNING": "False",
           "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False", "PATH": f"{VENV}/bin:" + os.environ["PATH"]}

    def ansible():
        started = time.perf_counter()
        result = subprocess.run([f"{VENV}/bin/ansible-playbook", "-i", "localhost,", f"{work}/site.yml"], env=env, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit("ansible-playbook failed:\n" + result.stdout[-3000:] + result.stderr[-2000:])
        return time.perf_counter() - started

    ansible_first = ansible()
    ansible_again = ansible()
    running = [vm for vm in api("GET", "/cluster/resources?type=vm") if vm.get("status") == "running"]
    assert len(running) == 5, f"Ansible left {len(running)} VMs running"
    print(f"five Proxmox VMs, fakepve at scale 1   provision {first:6.2f} s   Ansible {ansible_first:6.2f} s   ({ansible_first / first:4.1f}x)   target >= 3x")
    print(f"converged re-run                       provision {again:6.2f} s   Ansible {ansible_again:6.2f} s   ({ansible_again / again:4.1f}x)   target >= 10x")
finally:
    pve.terminate()
    pve.wait(30)
