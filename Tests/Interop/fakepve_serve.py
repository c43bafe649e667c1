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

Where fakepve answers faster than PVE, these make it answer as PVE does (pve-manager, qemu-server):
--pve-version V       /version reports V (8.3.2, 9.0.10, ...).
--pvestatd-secs S     /cluster/resources takes VM names and power states from a cache refreshed every
                      S real seconds, as PVE fills them from pvestatd's RRD cache (every 10 s;
                      PVE/API2Tools.pm extract_vm_stats): a VM newer than the last refresh has no name
                      and status 'unknown' there.
--create-secs N       a create takes N PVE seconds (an import-from copy), and until it is done its
                      config holds only `lock: create`, so its name is 'VM <vmid>' in every listing
                      (qemu-server API2/Qemu.pm create_vm, QemuServer.pm vmstatus).
--grants JSON         ACL entries [[userid, path, privilege...], ...]; once any is given only granted
                      privileges hold (GET /access/permissions reports them).
"""
import argparse
import asyncio
import hashlib
import json
import os
import ssl
import tempfile
import time

from aiohttp import web

from fakepve import FakePve, qemu
from fakepve.certs import make_cert


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--ready", required=True)
    parser.add_argument("--faults", default="[]")
    parser.add_argument("--guest", default="{}")
    parser.add_argument("--time-scale", type=float, default=0.0)
    parser.add_argument("--pve-version", default=None)
    parser.add_argument("--pvestatd-secs", type=float, default=0.0)
    parser.add_argument("--create-secs", type=float, default=0.0)
    parser.add_argument("--grants", default="[]")
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
    if args.create_secs:
        named = qemu.FakeVm

        class CreatingVm(named):
            """PVE reads a VM's name from its config, which holds only `lock: create` until the create is done."""
            @property
            def name(self):
                return "VM {0}".format(self.vmid) if getattr(self, "lock", None) == "create" else self._name

            @name.setter
            def name(self, value):
                self._name = value
        qemu.FakeVm = CreatingVm
        copy = FakePve.ceph_io

        async def slow_create(self, vm, keys=None):
            if vm.lock == "create":
                await self.pause(args.create_secs)
            return await copy(self, vm, keys)
        FakePve.ceph_io = slow_create
    if args.pvestatd_secs:
        resources = FakePve._resources
        # pvestatd runs on its own clock from the start: the first cycle is now, with nothing in it yet.
        cache = {"at": time.monotonic(), "vms": {}}

        async def cached_resources(self, request):
            now = time.monotonic()
            if now - cache["at"] >= args.pvestatd_secs:
                cache["at"] = now
                cache["vms"] = {vm.vmid: (vm.name, vm.status) for vm in self.vms}
            reply = await resources(self, request)
            body = json.loads(reply.body)
            for item in body.get("data") or []:
                if item.get("type") != "qemu":
                    continue
                name, status = cache["vms"].get(item["vmid"], (None, "unknown"))
                item["status"] = status
                if name is None:
                    item.pop("name", None)
                else:
                    item["name"] = name
            return web.json_response(body)
        FakePve._resources = cached_resources
    pve = FakePve(host=args.host, port=8006, password=os.environ.get("PVE_TEST_PASSWORD", "secret"))
    pve.time_scale = args.time_scale
    if args.pve_version:
        pve.version = args.pve_version
        pve.release_version = ".".join(args.pve_version.split(".")[:2])
    for grant in json.loads(args.grants):
        pve.grant(*grant)
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
