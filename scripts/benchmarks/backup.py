"""`provision backup` of a lab etcd holding 10,000 extra keys, at two value sizes, to moto_server:
time, peak memory and snapshot size. The snapshot is streamed (Talos -> file -> age -> multipart
upload), so the peak should not grow with the snapshot."""
import json, os, signal, subprocess, time
from common import BINARY, run, demo_project, serve

host, port = "127.0.0.91", 5000
moto = subprocess.Popen(["moto_server", "-H", host, "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
endpoint = f"http://{host}:{port}/"
try:
    for _ in range(100):
        if subprocess.run(["python3", "-c", f"import socket; socket.create_connection(('{host}', {port}), 1)"], capture_output=True).returncode == 0:
            break
        time.sleep(0.2)
    subprocess.run(["python3", "-c", f"""import boto3
boto3.client("s3", endpoint_url="{endpoint}", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x").create_bucket(Bucket="bench-backups")"""], check=True)

    def measure(count, size):
        project = demo_project()
        subprocess.run(["age-keygen", "-o", f"{project}/identity.txt"], check=True, capture_output=True)
        recipient = subprocess.run(["age-keygen", "-y", f"{project}/identity.txt"], capture_output=True, text=True, check=True).stdout.strip()
        for name, value in [("s3-access-key", "AKIDBENCH"), ("s3-secret-key", "bench-secret")]:
            with open(f"{project}/lab/{name}", "w") as f:
                f.write(value)
            os.chmod(f"{project}/lab/{name}", 0o600)
        with open(f"{project}/inventories/demo.yaml", "a") as f:
            f.write(f"""
backup:
  endpoint: {endpoint}
  region: us-east-1
  bucket: bench-backups
  prefix: {count}x{size}
  pathStyle: true
  accessKeyID: file:../lab/s3-access-key
  secretAccessKey: file:../lab/s3-secret-key
  recipients: [{recipient}]
  identity: file:../identity.txt
  retention: {{keepLast: 3, keepDaily: 0}}
""")
        state = f"{project}/state"
        lab = serve(project, state)
        try:
            run(["up", "demo", "--state-dir", state], project)
            if count:
                run(["lab", "load", "demo", "--count", str(count), "--size", str(size), "--state-dir", state], project)
            elapsed, peak, cpu, _ = run(["backup", "demo", "--state-dir", state], project)
            listed = json.loads(run(["backup", "list", "demo", "--json", "--state-dir", state], project)[3].stdout)
            return elapsed, peak, cpu, listed["sets"][0]["bytes"]
        finally:
            lab.send_signal(signal.SIGINT)
            lab.wait(60)

    rows = [(0, 0), (10000, 100), (10000, 10240), (10000, 20480)]
    for count, size in rows:
        elapsed, peak, cpu, total = measure(count, size)
        label = "demo as built" if not count else f"+{count} keys of {size} B"
        print(f"backup, {label:24s} set {total / 1048576:7.1f} MiB   {elapsed / 1000:6.2f} s   cpu {cpu:5.2f} s   peak {peak:6.1f} MB")
finally:
    moto.terminate()
    moto.wait(30)
