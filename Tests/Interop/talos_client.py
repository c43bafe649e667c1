"""A Talos API client built on the talos-linux-api bindings (generated from Talos' own protos) over
grpclib and Python's TLS: the independent client that provision's simulated nodes must satisfy.

    talos_client.py --host H --port P [--ca CA --cert CERT --key KEY] CALL...

Without --ca it connects as talosctl --insecure does (no client certificate, chain not verified).
CALL is one of version, hostname, disks, apply:FILE, reset, bootstrap, kubeconfig, etcd-members, events:N.
Prints one JSON object per call: {"call", "ok", ...result} or {"call", "ok": false, "status"|"error"}.
"""
import argparse
import asyncio
import gzip
import io
import json
import ssl
import tarfile

from grpclib.client import Channel
from grpclib.exceptions import GRPCError

from talos_linux_api.v1_6_0 import machine, storage
import betterproto.lib.google.protobuf as betterproto_lib_google_protobuf

storage.betterproto_lib_google_protobuf = betterproto_lib_google_protobuf
Empty = betterproto_lib_google_protobuf.Empty


def context(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_alpn_protocols(["h2"])
    ctx.check_hostname = False
    if args.ca:
        ctx.load_verify_locations(args.ca)
        ctx.load_cert_chain(args.cert, args.key)
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def call(stub, disks, name):
    if name == "version":
        reply = (await stub.version(Empty(), timeout=15)).messages[0]
        return {"tag": reply.version.tag, "platform": reply.platform.name, "rbac": reply.features.rbac}
    if name == "hostname":
        return {"hostname": (await stub.hostname(Empty(), timeout=15)).messages[0].hostname}
    if name == "disks":
        reply = (await disks.disks(Empty(), timeout=15)).messages[0]
        return {"disks": [[d.device_name, d.size, d.model] for d in reply.disks]}
    if name.startswith("apply:"):
        data = open(name[6:], "rb").read()
        reply = await stub.apply_configuration(machine.ApplyConfigurationRequest(
            data=data, mode=machine.ApplyConfigurationRequestMode.AUTO), timeout=10)
        return {"mode": int(reply.messages[0].mode)}
    if name == "reset":
        reply = await stub.reset(machine.ResetRequest(graceful=True, reboot=True, mode=machine.ResetRequestWipeMode.SYSTEM_DISK,
            system_partitions_to_wipe=[machine.ResetPartitionSpec(label="STATE", wipe=True),
                                       machine.ResetPartitionSpec(label="EPHEMERAL", wipe=True)]), timeout=15)
        return {"actor": reply.messages[0].actor_id}
    if name == "bootstrap":
        await stub.bootstrap(machine.BootstrapRequest(), timeout=15)
        return {}
    if name == "etcd-members":
        reply = (await stub.etcd_member_list(machine.EtcdMemberListRequest(), timeout=15)).messages[0]
        return {"members": sorted(m.hostname for m in reply.members)}
    if name.startswith("events-raw:"):
        # The first N messages of MachineService/Events as sent, asking for everything kept.
        wanted, seen = int(name[11:]), []
        async for event in stub.events(machine.EventsRequest(tail_events=-1), timeout=30):
            seen.append({"type": event.data.type_url, "id": event.id, "actor": event.actor_id, "bytes": len(event.data.value)})
            if len(seen) >= wanted:
                break
        return {"events": seen}
    if name.startswith("events:"):
        # MachineService/Events: the stages of MachineStatusEvents as they stream, until N are seen,
        # the stream ends (the node went down) or 30 s pass.
        wanted, stages = int(name[7:]), []
        try:
            async for event in stub.events(machine.EventsRequest(tail_events=1), timeout=30):
                if event.data.type_url.endswith("machine.MachineStatusEvent"):
                    status = machine.MachineStatusEvent().parse(event.data.value)
                    stages.append(machine.MachineStatusEventMachineStage(status.stage).name)
                    if len(stages) >= wanted:
                        break
        except Exception as error:  # the node went down to reboot: its connection went with it
            return {"stages": stages, "ended": type(error).__name__}
        return {"stages": stages}
    if name == "kubeconfig":
        data = b""
        async for chunk in stub.kubeconfig(Empty(), timeout=10):
            data += chunk.bytes
        raw = gzip.decompress(data)
        # Talos' archive has no end-of-archive blocks; tarfile copes when reading a stream.
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r|") as archive:
            for member in archive:
                return {"name": member.name, "kubeconfig": archive.extractfile(member).read().decode()}
    raise SystemExit(f"unknown call {name}")


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=50000)
    parser.add_argument("--ca")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("calls", nargs="+")
    args = parser.parse_args()
    for name in args.calls:
        channel = Channel(args.host, args.port, ssl=context(args))
        stub, disks = machine.MachineServiceStub(channel), storage.StorageServiceStub(channel)
        try:
            result = {"call": name, "ok": True, **await call(stub, disks, name)}
        except GRPCError as error:
            result = {"call": name, "ok": False, "status": error.status.name, "message": error.message}
        except Exception as error:  # TLS and connection failures
            result = {"call": name, "ok": False, "error": f"{type(error).__name__}: {error}"}
        finally:
            channel.close()
        print(json.dumps(result), flush=True)


asyncio.run(main())
