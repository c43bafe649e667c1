"""A small Talos API peer built on the talos-linux-api bindings (generated from Talos' own protos).

It serves MachineService over TLS with an Ed25519 certificate, as a Talos node does, so provision's
Swift client is tested against an independent gRPC and TLS stack. Usage:

    talos_peer.py --cert CERT --key KEY [--client-ca CA [--client-cert optional]] [--bind ADDR]
                  [--port N] --ready FILE   (writes the bound port to FILE)

In maintenance mode (no --client-ca) no client certificate is asked for. With --client-cert
optional one is asked for but not insisted on: what a proxy or a misconfigured node does, and what
provision must never mistake for maintenance mode. Each call is appended as one JSON line to
stdout, so tests can check what the client sent (and that nothing was sent).
"""
import argparse
import os
import asyncio
import json
import ssl
import sys

from grpclib.server import Server
from grpclib import GRPCError
from grpclib.const import Status

from talos_linux_api.v1_6_0 import machine, common, storage
import betterproto.lib.google.protobuf as betterproto_lib_google_protobuf

# talos-linux-api 0.1.0's storage module uses this name without importing it.
storage.betterproto_lib_google_protobuf = betterproto_lib_google_protobuf


def log(**fields):
    print(json.dumps(fields), flush=True)


class Peer(machine.MachineServiceBase):
    async def version(self, _empty):
        log(method="Version")
        return machine.VersionResponse(messages=[machine.Version(
            version=machine.VersionInfo(tag="v1.13.2", arch="amd64", os="Talos"),
            platform=machine.PlatformInfo(name="metal", mode="metal"))])

    async def hostname(self, _empty):
        log(method="Hostname")
        return machine.HostnameResponse(messages=[machine.Hostname(hostname="cp1")])

    async def apply_configuration(self, request):
        log(method="ApplyConfiguration", mode=int(request.mode), dry_run=request.dry_run, data=request.data.decode())
        return machine.ApplyConfigurationResponse(messages=[machine.ApplyConfiguration(mode=request.mode, mode_details="applied")])

    async def bootstrap(self, request):
        log(method="Bootstrap")
        raise GRPCError(Status.ALREADY_EXISTS, "etcd data directory is not empty")

    async def reset(self, request):
        log(method="Reset", graceful=request.graceful, reboot=request.reboot,
            partitions=[[p.label, p.wipe] for p in request.system_partitions_to_wipe], mode=int(request.mode))
        return machine.ResetResponse(messages=[machine.Reset(actor_id="reset-1")])

    async def etcd_member_list(self, request):
        log(method="EtcdMemberList")
        return machine.EtcdMemberListResponse(messages=[machine.EtcdMembers(members=[
            machine.EtcdMember(id=11, hostname="cp1", peer_urls=["https://127.0.0.11:2380"]),
            machine.EtcdMember(id=12, hostname="cp2", peer_urls=["https://127.0.0.12:2380"], is_learner=True)])])


class Storage(storage.StorageServiceBase):
    async def disks(self, _empty):
        log(method="Disks")
        return storage.DisksResponse(messages=[storage.Disks(disks=[
            storage.Disk(device_name="/dev/nvme0n1", size=512_000_000_000, model="Samsung SSD", serial="S4EW",
                         type=storage.DiskDiskType.NVME, bus_path="/pci0000:00/0000:00:1d.0/nvme"),
            storage.Disk(device_name="/dev/sda", size=32_000_000_000, model="USB Flash", type=storage.DiskDiskType.SSD,
                         bus_path="/pci0000:00/usb1/1-1", subsystem="/sys/class/block")])])


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--client-ca")
    parser.add_argument("--client-cert", choices=["required", "optional"], default="required")
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--ready", required=True)
    args = parser.parse_args()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(args.cert, args.key)
    context.set_alpn_protocols(["h2"])
    if args.client_ca:
        context.verify_mode = ssl.CERT_REQUIRED if args.client_cert == "required" else ssl.CERT_OPTIONAL
        context.load_verify_locations(args.client_ca)
    server = Server([Peer(), Storage()])
    await server.start(args.bind, args.port, ssl=context)
    port = server._server.sockets[0].getsockname()[1]
    with open(args.ready + ".tmp", "w") as out:  # written whole, then renamed: readers never see it empty
        out.write(str(port))
    os.rename(args.ready + ".tmp", args.ready)
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
