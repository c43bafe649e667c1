"""Drives an EC2 endpoint with boto3 (the real AWS SDK) and prints what it saw as JSON.

    ec2_shapes.py --endpoint http://127.0.0.x:PORT/

Credentials come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), never argv.
The output has, per call, the set of key paths boto3 parsed ("Instances[].State.Name"), so the
lab's endpoint can be compared with moto's shape for shape, plus a few facts and error codes.
"""
import argparse
import json

import boto3
import botocore


def paths(value, prefix=""):
    """Every key path in a parsed response; lists become [], empty containers are kept."""
    out = set()
    if isinstance(value, dict):
        if not value:
            out.add(prefix)
        for key, child in value.items():
            if key == "ResponseMetadata":
                continue
            out |= paths(child, prefix + "." + key if prefix else key)
    elif isinstance(value, list):
        if not value:
            out.add(prefix)
        for child in value:
            out |= paths(child, prefix + "[]")
    else:
        out.add(prefix)
    return out


def error_code(call):
    try:
        call()
    except botocore.exceptions.ClientError as error:
        return error.response["Error"]["Code"]
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    args = parser.parse_args()
    config = botocore.config.Config(retries={"max_attempts": 1})
    ec2 = boto3.client("ec2", endpoint_url=args.endpoint, region_name="us-east-1", config=config)
    shapes, facts = {}, {}
    tags = [{"Key": "provision:pool", "Value": "gpu"}, {"Key": "provision:cluster", "Value": "demo"}]
    launch = dict(ImageId="ami-0123456789abcdef0", InstanceType="g5.xlarge", MinCount=1, MaxCount=1,
                  UserData="machine: {type: worker}", ClientToken="shape-launch-1",
                  MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},
                  InstanceMarketOptions={"MarketType": "spot", "SpotOptions": {"SpotInstanceType": "one-time"}},
                  TagSpecifications=[{"ResourceType": "instance", "Tags": tags}, {"ResourceType": "volume", "Tags": tags}])
    run = ec2.run_instances(**launch)
    shapes["RunInstances"] = sorted(paths(run))
    instance = run["Instances"][0]
    facts["launchTags"] = sorted((t["Key"], t["Value"]) for t in instance.get("Tags", []))
    facts["httpTokens"] = instance["MetadataOptions"]["HttpTokens"]
    again = ec2.run_instances(**launch)
    facts["sameClientTokenSameInstance"] = again["Instances"][0]["InstanceId"] == instance["InstanceId"]

    for _ in range(6):
        ec2.run_instances(ImageId="ami-0123456789abcdef0", InstanceType="t3.micro", MinCount=1, MaxCount=1)
    described = ec2.describe_instances(Filters=[{"Name": "tag:provision:pool", "Values": ["gpu"]}])
    shapes["DescribeInstances"] = sorted(paths(described))
    facts["taggedIDs"] = [i["InstanceId"] for r in described["Reservations"] for i in r["Instances"]]
    pages = list(ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": 5}))
    facts["pages"] = len(pages)
    facts["pagedInstances"] = sum(len(r["Instances"]) for page in pages for r in page["Reservations"])

    created = ec2.create_tags(Resources=[instance["InstanceId"]], Tags=[{"Key": "provision:expires-at", "Value": "2026-11-23T12:00:00Z"}])
    shapes["CreateTags"] = sorted(paths(created))
    tagged = ec2.describe_instances(InstanceIds=[instance["InstanceId"]])["Reservations"][0]["Instances"][0]
    facts["expiresTag"] = [t["Value"] for t in tagged["Tags"] if t["Key"] == "provision:expires-at"]

    request_id = instance.get("SpotInstanceRequestId")
    if request_id is None:  # moto launches spot instances without a request; make one to cancel
        request_id = ec2.request_spot_instances(InstanceCount=1, Type="persistent", LaunchSpecification={
            "ImageId": "ami-0123456789abcdef0", "InstanceType": "g5.xlarge"})["SpotInstanceRequests"][0]["SpotInstanceRequestId"]
    cancelled = ec2.cancel_spot_instance_requests(SpotInstanceRequestIds=[request_id])
    shapes["CancelSpotInstanceRequests"] = sorted(paths(cancelled))
    facts["cancelState"] = cancelled["CancelledSpotInstanceRequests"][0]["State"]

    terminated = ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
    shapes["TerminateInstances"] = sorted(paths(terminated))
    facts["terminateStates"] = [terminated["TerminatingInstances"][0]["PreviousState"]["Name"],
                                terminated["TerminatingInstances"][0]["CurrentState"]["Name"]]

    facts["errors"] = {
        "describeUnknown": error_code(lambda: ec2.describe_instances(InstanceIds=["i-0000000000000000a"])),
        "terminateUnknown": error_code(lambda: ec2.terminate_instances(InstanceIds=["i-0000000000000000a"])),
    }
    print(json.dumps({"shapes": shapes, "facts": facts}))


main()
