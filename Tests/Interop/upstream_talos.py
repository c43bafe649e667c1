"""An independent Talos peer generated, at test time, with grpcio-tools' protoc from Talos' own
v1.13.9 protos (Tests/Fixtures/talos-protos-v1.13.9, unmodified), messages for protobuf's runtime
and services for grpclib (over Python's TLS: grpcio's TLS offers no Ed25519 signatures, and every
Talos certificate is Ed25519). COSI's resource.proto is not Talos' (it comes from cosi-project)
and is taken from protos/cosi.

    upstream_talos.py compare                       our protos/ against upstream: every field number,
                                                    type and enum value must agree (exit 1 listing each one that does not)
    upstream_talos.py client --host H --port P --ca CA --cert CRT --key KEY --config FILE
                                                    a dry-run ApplyConfiguration and COSI Get of the
                                                    active machine config; prints one JSON object
    upstream_talos.py upgrade --host H --port P --ca CA --cert CRT --key KEY --image REF
                                                    ImageService/Pull then LifecycleService/Upgrade of REF
                                                    into the system containerd, each stream read to its
                                                    end; prints one JSON object (name, progress, messages, exit code)
    upstream_talos.py bootstrap --host H --port P --ca CA --cert CRT --key KEY
                                                    the stage and etcd service, EtcdMemberList and List of
                                                    /var/lib/etcd, Bootstrap, then the same until running,
                                                    and a second Bootstrap; prints one JSON object
    upstream_talos.py server --cert CRT --key KEY --client-ca CA --config FILE --ready FILE [--upgrade-exit N]
                                                    serves ApplyConfiguration (dry run: NO_REBOOT unless
                                                    the config has udev rules), Reboot, COSI Get, ImageService/Pull,
                                                    LifecycleService/Upgrade (ending with exit code N) and the
                                                    legacy MachineService/Upgrade; logs each call as a JSON line on stdout
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
UPSTREAM = os.path.join(ROOT, "Tests", "Fixtures", "talos-protos-v1.13.9")
OURS = os.path.join(ROOT, "protos")
UPSTREAM_FILES = ["common/common.proto", "google/rpc/status.proto", "machine/machine.proto", "machine/image.proto",
                  "machine/lifecycle.proto", "storage/storage.proto"]


def protoc(args):
    from grpc_tools import protoc as tool
    import grpc_tools
    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    code = tool.main(["protoc", f"-I{include}"] + args)
    if code != 0:
        sys.exit(f"protoc failed: {args}")


def generate():
    out = tempfile.mkdtemp(prefix="upstream-talos-")
    protoc([f"-I{UPSTREAM}", f"--python_out={out}", f"--grpclib_python_out={out}"] + UPSTREAM_FILES)
    protoc([f"-I{OURS}", f"--python_out={out}", f"--grpclib_python_out={out}", "cosi/resource.proto"])
    sys.path.insert(0, out)
    return out


def descriptors(include, files):
    from google.protobuf import descriptor_pb2
    out = tempfile.mktemp(suffix=".pb")
    protoc([f"-I{include}", f"--descriptor_set_out={out}", "--include_imports"] + files)
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(open(out, "rb").read())
    messages, enums, methods = {}, {}, {}

    def walk(prefix, message):
        name = f"{prefix}.{message.name}"
        messages[name] = {f.name: (f.number, f.type, f.type_name, f.label) for f in message.field}
        for nested in message.nested_type:
            walk(name, nested)
        for enum in message.enum_type:
            enums[f"{name}.{enum.name}"] = {v.name: v.number for v in enum.value}

    for file in fds.file:
        if file.package.startswith("google.protobuf"):
            continue
        for message in file.message_type:
            walk(file.package, message)
        for enum in file.enum_type:
            enums[f"{file.package}.{enum.name}"] = {v.name: v.number for v in enum.value}
        for service in file.service:
            for method in service.method:
                methods[f"/{file.package}.{service.name}/{method.name}"] = (method.input_type, method.output_type,
                                                                            method.client_streaming, method.server_streaming)
    return messages, enums, methods


def compare():
    ours_files = [os.path.relpath(os.path.join(d, f), OURS) for d, _, fs in os.walk(OURS) for f in fs if f.endswith(".proto")]
    ours = descriptors(OURS, sorted(f for f in ours_files if not f.startswith("cosi/")))
    upstream = descriptors(UPSTREAM, UPSTREAM_FILES)
    problems, checked = [], 0
    for kind, (mine, theirs) in zip(["message", "enum", "method"], zip(ours, upstream)):
        for name, members in mine.items():
            if name not in theirs:
                problems.append(f"{kind} {name} is not in Talos' protos")
                continue
            if kind == "method":
                checked += 1
                if members != theirs[name]:
                    problems.append(f"method {name}: ours {members}, Talos' {theirs[name]}")
                continue
            for member, value in members.items():
                checked += 1
                if member not in theirs[name]:
                    problems.append(f"{kind} {name}: {member} is not in Talos' protos")
                elif value != theirs[name][member]:
                    problems.append(f"{kind} {name}.{member}: ours {value}, Talos' {theirs[name][member]}")
    print(json.dumps({"checked": checked, "problems": problems}))
    sys.exit(1 if problems else 0)


def tls(cert, key, ca, server):
    import ssl
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    context.load_verify_locations(ca)
    context.verify_mode = ssl.CERT_REQUIRED
    # Talos node certificates name addresses and hostnames; Talos' own clients verify the chain only.
    context.check_hostname = False
    context.set_alpn_protocols(["h2"])
    return context


def complete(base):
    """The generated base with every method we do not serve answering Unimplemented."""
    from grpclib import GRPCError
    from grpclib.const import Status

    async def unimplemented(self, stream):
        raise GRPCError(Status.UNIMPLEMENTED, "not served by this peer")
    return type(base.__name__ + "Peer", (base,), {name: unimplemented for name in base.__abstractmethods__})


def client(args):
    generate()
    import asyncio
    from grpclib.client import Channel
    from machine import machine_pb2, machine_grpc
    from cosi import resource_pb2, resource_grpc

    async def run():
        channel = Channel(args.host, int(args.port), ssl=tls(args.cert, args.key, args.ca, server=False))
        try:
            reply = await machine_grpc.MachineServiceStub(channel).ApplyConfiguration(machine_pb2.ApplyConfigurationRequest(
                data=open(args.config, "rb").read(), mode=machine_pb2.ApplyConfigurationRequest.AUTO, dry_run=True), timeout=10)
            item = reply.messages[0]
            got = await resource_grpc.StateStub(channel).Get(
                resource_pb2.GetRequest(namespace="config", type="MachineConfigs.config.talos.dev", id="v1alpha1"), timeout=10)
            print(json.dumps({"mode": machine_pb2.ApplyConfigurationRequest.Mode.Name(item.mode), "details": item.mode_details,
                              "configType": got.resource.metadata.type, "configID": got.resource.metadata.id,
                              "configHasVersion": "version: v1alpha1" in got.resource.spec.yaml_spec}))
        finally:
            channel.close()
    asyncio.run(run())


def upgrade(args):
    generate()
    import asyncio
    from grpclib.client import Channel
    from common import common_pb2
    from machine import image_pb2, image_grpc, lifecycle_pb2, lifecycle_grpc

    async def run():
        channel = Channel(args.host, int(args.port), ssl=tls(args.cert, args.key, args.ca, server=False))
        # talosctl v1.13.9's default, --namespace system: the CRI containerd's system namespace (cmd/talosctl/cmd/talos/image.go).
        containerd = common_pb2.ContainerdInstance(driver=common_pb2.CRI, namespace=common_pb2.NS_SYSTEM)
        out = {"name": None, "progress": 0, "messages": [], "exitCode": None}
        try:
            async with image_grpc.ImageServiceStub(channel).Pull.open(timeout=60) as stream:
                await stream.send_message(image_pb2.ImageServicePullRequest(containerd=containerd, image_ref=args.image), end=True)
                async for reply in stream:
                    if reply.WhichOneof("response") == "name":
                        out["name"] = reply.name
                    else:
                        out["progress"] += 1
            async with lifecycle_grpc.LifecycleServiceStub(channel).Upgrade.open(timeout=120) as stream:
                await stream.send_message(lifecycle_pb2.LifecycleServiceUpgradeRequest(
                    containerd=containerd, source=lifecycle_pb2.InstallArtifactsSource(image_name=args.image)), end=True)
                async for reply in stream:
                    if reply.progress.WhichOneof("response") == "exit_code":
                        out["exitCode"] = reply.progress.exit_code
                    else:
                        out["messages"].append(reply.progress.message)
            print(json.dumps(out))
        finally:
            channel.close()
    asyncio.run(run())


def bootstrap(args):
    """What talosctl sees around a bootstrap: the stage and etcd before, EtcdMemberList's answer
    before, the etcd data directory (List), Bootstrap, then the stage and etcd until it runs."""
    generate()
    import asyncio
    import re
    from grpclib import GRPCError
    from grpclib.client import Channel
    from google.protobuf import empty_pb2
    from machine import machine_pb2, machine_grpc
    from cosi import resource_pb2, resource_grpc

    async def run():
        channel = Channel(args.host, int(args.port), ssl=tls(args.cert, args.key, args.ca, server=False))
        machine = machine_grpc.MachineServiceStub(channel)

        async def look():
            got = await resource_grpc.StateStub(channel).Get(
                resource_pb2.GetRequest(namespace="runtime", type="MachineStatuses.runtime.talos.dev", id="machine"), timeout=10)
            stage = re.search(r"^stage: (\S+)", got.resource.spec.yaml_spec, re.M).group(1)
            services = (await machine.ServiceList(empty_pb2.Empty(), timeout=10)).messages[0].services
            etcd = next((s for s in services if s.id == "etcd"), None)
            return {"stage": stage, "etcd": etcd.state if etcd else None, "etcdHealthUnknown": etcd.health.unknown if etcd else None}

        async def members():
            try:
                reply = await machine.EtcdMemberList(machine_pb2.EtcdMemberListRequest(), timeout=10)
                return {"members": [m.hostname for m in reply.messages[0].members]}
            except GRPCError as error:
                return {"code": error.status.name, "message": error.message}

        async def data_dir():
            names = []
            async with machine.List.open(timeout=10) as stream:
                await stream.send_message(machine_pb2.ListRequest(root="/var/lib/etcd"), end=True)
                async for info in stream:
                    names.append(info.relative_name)
            return names

        out = {}
        try:
            out["before"] = await look()
            out["membersBefore"] = await members()
            out["dataBefore"] = await data_dir()
            try:
                await machine.Bootstrap(machine_pb2.BootstrapRequest(), timeout=30)
                out["bootstrap"] = "OK"
            except GRPCError as error:
                out["bootstrap"] = f"{error.status.name}: {error.message}"
            after = await look()
            for _ in range(400):
                if after["stage"] == "running":
                    break
                await asyncio.sleep(0.05)
                after = await look()
            out["after"] = after
            out["membersAfter"] = await members()
            out["dataAfter"] = await data_dir()
            try:
                await machine.Bootstrap(machine_pb2.BootstrapRequest(), timeout=30)
                out["again"] = "OK"
            except GRPCError as error:
                out["again"] = f"{error.status.name}: {error.message}"
            print(json.dumps(out))
        finally:
            channel.close()
    asyncio.run(run())


def server(args):
    generate()
    import asyncio
    from grpclib import GRPCError
    from grpclib.const import Status
    from grpclib.server import Server
    from machine import machine_pb2, machine_grpc, image_pb2, image_grpc, lifecycle_pb2, lifecycle_grpc
    from cosi import resource_pb2, resource_grpc
    from common import common_pb2
    config = open(args.config).read()

    def log(**fields):
        print(json.dumps(fields), flush=True)

    class Machine(complete(machine_grpc.MachineServiceBase)):
        async def ApplyConfiguration(self, stream):
            request = await stream.recv_message()
            mode = request.mode
            if request.dry_run:
                mode = machine_pb2.ApplyConfigurationRequest.REBOOT if b"udev:" in request.data else machine_pb2.ApplyConfigurationRequest.NO_REBOOT
            log(method="ApplyConfiguration", mode=machine_pb2.ApplyConfigurationRequest.Mode.Name(request.mode), dry_run=request.dry_run)
            await stream.send_message(machine_pb2.ApplyConfigurationResponse(messages=[machine_pb2.ApplyConfiguration(
                mode=mode, mode_details="Dry run summary:\nNo changes." if request.dry_run else "Applied")]))

        async def Reboot(self, stream):
            request = await stream.recv_message()
            log(method="Reboot", mode=int(request.mode))
            await stream.send_message(machine_pb2.RebootResponse(messages=[machine_pb2.Reboot(actor_id="reboot-upstream-1")]))

        async def ImagePull(self, stream):
            request = await stream.recv_message()
            log(method="MachineService/ImagePull", reference=request.reference, namespace=common_pb2.ContainerdNamespace.Name(request.namespace))
            await stream.send_message(machine_pb2.ImagePullResponse(messages=[machine_pb2.ImagePull()]))

        async def Upgrade(self, stream):
            request = await stream.recv_message()
            log(method="MachineService/Upgrade", image=request.image, preserve=request.preserve, stage=request.stage, force=request.force)
            await stream.send_message(machine_pb2.UpgradeResponse(messages=[machine_pb2.Upgrade(ack="Upgrade request received", actor_id="upgrade-upstream-1")]))

    def instance(containerd):
        return f"{common_pb2.ContainerDriver.Name(containerd.driver)}/{common_pb2.ContainerdNamespace.Name(containerd.namespace)}"

    pulled = set()

    class Image(complete(image_grpc.ImageServiceBase)):
        async def Pull(self, stream):
            request = await stream.recv_message()
            log(method="ImageService/Pull", image=request.image_ref, containerd=instance(request.containerd))
            for layer in ["sha256:aaa", "sha256:bbb"]:
                await stream.send_message(image_pb2.ImageServicePullResponse(pull_progress=image_pb2.ImageServicePullProgress(
                    layer_id=layer, progress=image_pb2.ImageServicePullLayerProgress(status=image_pb2.ImageServicePullLayerProgress.DOWNLOAD_COMPLETE))))
            pulled.add((instance(request.containerd), request.image_ref))
            await stream.send_message(image_pb2.ImageServicePullResponse(name=request.image_ref))

    class Lifecycle(complete(lifecycle_grpc.LifecycleServiceBase)):
        async def Upgrade(self, stream):
            request = await stream.recv_message()
            log(method="LifecycleService/Upgrade", image=request.source.image_name, containerd=instance(request.containerd),
                pulledThere=(instance(request.containerd), request.source.image_name) in pulled)
            for text in ["validating installer", "installing into the inactive slot", "upgrade complete"]:
                await stream.send_message(lifecycle_pb2.LifecycleServiceUpgradeResponse(progress=lifecycle_pb2.LifecycleServiceInstallProgress(message=text)))
            # Talos ends the stream OK even when the installer failed: the exit code says so.
            await stream.send_message(lifecycle_pb2.LifecycleServiceUpgradeResponse(progress=lifecycle_pb2.LifecycleServiceInstallProgress(
                exit_code=int(args.upgrade_exit))))

    class State(complete(resource_grpc.StateBase)):
        async def Get(self, stream):
            request = await stream.recv_message()
            log(method="Get", namespace=request.namespace, type=request.type, id=request.id)
            if request.type != "MachineConfigs.config.talos.dev" or request.id not in ("v1alpha1", "persistent"):
                raise GRPCError(Status.NOT_FOUND, f"resource {request.type}/{request.id} doesn't exist")
            resource = resource_pb2.Resource(metadata=resource_pb2.Metadata(namespace="config", type=request.type, id=request.id),
                                             spec=resource_pb2.Spec(yaml_spec=config))
            await stream.send_message(resource_pb2.GetResponse(resource=resource))

    async def run():
        grpc_server = Server([Machine(), State(), Image(), Lifecycle()])
        await grpc_server.start("127.0.0.1", 0, ssl=tls(args.cert, args.key, args.client_ca, server=True))
        port = grpc_server._server.sockets[0].getsockname()[1]
        with open(args.ready + ".tmp", "w") as out:
            out.write(str(port))
        os.rename(args.ready + ".tmp", args.ready)
        await grpc_server.wait_closed()
    asyncio.run(run())


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("compare")
    c = sub.add_parser("client")
    for name in ["host", "port", "ca", "cert", "key", "config"]:
        c.add_argument("--" + name, required=True)
    c.add_argument("--name", default="cp1")
    u = sub.add_parser("upgrade")
    for name in ["host", "port", "ca", "cert", "key", "image"]:
        u.add_argument("--" + name, required=True)
    b = sub.add_parser("bootstrap")
    for name in ["host", "port", "ca", "cert", "key"]:
        b.add_argument("--" + name, required=True)
    s = sub.add_parser("server")
    for name in ["cert", "key", "client-ca", "config", "ready"]:
        s.add_argument("--" + name, required=True)
    s.add_argument("--upgrade-exit", default="0")
    args = parser.parse_args()
    {"compare": lambda: compare(), "client": lambda: client(args), "upgrade": lambda: upgrade(args), "bootstrap": lambda: bootstrap(args),
     "server": lambda: server(args)}[args.command]()


if __name__ == "__main__":
    main()
