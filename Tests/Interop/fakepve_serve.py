"""Starts fakepve (PyPI fakepve[crypto], a Proxmox VE API fake with PVE's real schema) for tests.

    fakepve_serve.py --host 127.0.0.x --ready FILE [--faults JSON] [--guest JSON] [--time-scale S]

The API token comes from the environment (PVE_TEST_TOKEN = 'root@pam!orch=SECRET'), never argv, and
so does root@pam's password for ticket sign-in (PVE_TEST_PASSWORD).
FILE receives the server certificate's SHA-256 fingerprint (uppercase, colon-separated, as PVE shows
it) once the server listens. --faults: a JSON list of fail() calls, e.g.
[{"method": "POST", "suffix": "/nodes/pve1/qemu", "error": "...", "times": 1}].
--guest: attributes every VM created over the API gets, e.g. {"shutdown_secs": 120} (a guest that
ignores ACPI for two minutes) or {"agent": {}} (a running QEMU guest agent). --time-scale: PVE's task
durations scaled (0, the default, finishes every task at once; 1 takes PVE's own time).
"""
import argparse
import asyncio
import hashlib
import json
import os
import ssl
import tempfile

from fakepve import FakePve, qemu
from fakepve.certs import make_cert


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--ready", required=True)
    parser.add_argument("--faults", default="[]")
    parser.add_argument("--guest", default="{}")
    parser.add_argument("--time-scale", type=float, default=0.0)
    args = parser.parse_args()
    guest = json.loads(args.guest)
    if guest:
        base = qemu.FakeVm

        class GuestVm(base):
            def __init__(self, *a, **k):
                super().__init__(*a, **k)
                for key, value in guest.items():
                    setattr(self, key, value)
        qemu.FakeVm = GuestVm
    pve = FakePve(host=args.host, port=8006, password=os.environ.get("PVE_TEST_PASSWORD", "secret"))
    pve.time_scale = args.time_scale
    token_id, secret = os.environ["PVE_TEST_TOKEN"].split("=", 1)
    pve.apitokens[token_id] = secret
    for fault in json.loads(args.faults):
        pve.fail(**fault)
    directory = tempfile.mkdtemp(prefix="fakepve-")
    certfile, keyfile, _ = make_cert(directory, hosts=(args.host,))
    der = ssl.PEM_cert_to_DER_cert(open(certfile).read())
    fingerprint = ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
    await pve.start(certfile, keyfile)
    with open(args.ready + ".tmp", "w") as out:
        out.write(fingerprint)
    os.rename(args.ready + ".tmp", args.ready)
    await asyncio.Event().wait()


asyncio.run(main())
