"""End-to-end harness: ONE moto server per test session on 127.0.0.1 (random free
port), reached by the real CLI only through ``AWS_ENDPOINT_URL``; a VPC and subnets
created in it; environment files pointing at them."""

from __future__ import annotations

import contextlib
import io
import os
import socket
from pathlib import Path

import boto3
import pytest
import yaml

from k3s_infra.config import read_document
from tests.support import moto_shims, node_boot
from tests.support.emulated_account import ACCOUNT, AMI_PARAMETER, AMI_PARAMETER_ARM64, REGION
from tests.support.k3s_release import write_release



def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _k3s_cache(tmp_path_factory) -> Path:
    """Every deploy stages the K3s release files (deploy/artifacts.py) and no test may reach
    GitHub: a cache holding a stand-in release of the default version, as an earlier download
    would have left it (tests/support/k3s_release.py; checked on reuse like any cache)."""
    cache = tmp_path_factory.mktemp("k3s-cache")
    version = read_document(Path(__file__).resolve().parents[2] / "environments" / "defaults.yaml")["k3s"]["version"]
    write_release(cache / "k3s" / version)
    return cache


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory):
    from moto.server import ThreadedMotoServer

    moto_shims.apply()
    node_boot.apply()  # nodes tag themselves ready, as boot.sh's last step does
    node_boot.apply_ssm_agent()  # nodes' SSM Agent: online, and Run Command of a snapshot save
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL", endpoint)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", REGION)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            mp.delenv(name, raising=False)
        mp.setenv("AWS_CONFIG_FILE", os.devnull)
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        mp.setenv("K3S_INFRA_CACHE", str(_k3s_cache(tmp_path_factory)))
        yield endpoint
    server.stop()


@pytest.fixture(scope="session")
def aws(moto_endpoint):
    """boto3 clients on the test server (the test's own view, independent of the product)."""
    session = boto3.Session(region_name=REGION)

    class Clients:
        def __getattr__(self, service):
            return session.client(service, endpoint_url=moto_endpoint)

    return Clients()


@pytest.fixture(scope="session")
def network(aws):
    ec2 = aws.ec2
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=az)["Subnet"]["SubnetId"]
               for i, az in enumerate((f"{REGION}a", f"{REGION}b"))]
    # Realistic routes, as pre-flight checks them: public subnets to an internet gateway,
    # the node (private) subnets out through a NAT gateway.
    public = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{10 + i}.0/24", AvailabilityZone=az)["Subnet"]["SubnetId"]
              for i, az in enumerate((f"{REGION}a", f"{REGION}b"))]
    gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
    public_table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=public_table, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
    nat = ec2.create_nat_gateway(SubnetId=public[0], AllocationId=ec2.allocate_address(Domain="vpc")["AllocationId"])
    private_table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=private_table, DestinationCidrBlock="0.0.0.0/0",
                     NatGatewayId=nat["NatGateway"]["NatGatewayId"])
    for subnet in public:
        ec2.associate_route_table(RouteTableId=public_table, SubnetId=subnet)
    # A third zone's node subnet, for files with three or more servers (write_env).
    third = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24", AvailabilityZone=f"{REGION}c")["Subnet"]["SubnetId"]
    for subnet in (*subnets, third):
        ec2.associate_route_table(RouteTableId=private_table, SubnetId=subnet)
    # moto 5.2.5 already serves the public AL2023 parameters of both architectures (x86_64 and
    # arm64 images); check, since node stacks need them.
    for parameter in (AMI_PARAMETER, AMI_PARAMETER_ARM64):
        aws.ssm.get_parameter(Name=parameter)
    return {"vpc_id": vpc, "subnets": subnets, "public_subnets": public, "third_zone_subnet": third}


@pytest.fixture(scope="session")
def write_env(network, tmp_path_factory):
    """Write environments/<base>.yaml (parents merged) with the test network and overrides."""
    folder = tmp_path_factory.mktemp("environments")

    def _write(file_name: str, base: str = "dev", **overrides) -> Path:
        doc = read_document(Path(__file__).resolve().parents[2] / "environments" / f"{base}.yaml")
        doc["account_id"] = ACCOUNT
        doc["region"] = REGION
        if "create" not in doc["network"]:  # a managed network (network.create) is made by the deploy
            doc["network"]["vpc_id"] = network["vpc_id"]
            doc["network"]["subnets"] = [{"id": s, "az": f"{REGION}{z}"} for s, z in zip(network["subnets"], "ab")]
            if "public_subnets" in doc["network"]:
                doc["network"]["public_subnets"] = [{"id": s, "az": f"{REGION}{z}"}
                                                    for s, z in zip(network["public_subnets"], "ab")]
        for key, value in overrides.items():
            doc[key] = value
        # Three or more servers need a third zone: no zone may hold a majority (model/placement.py).
        if "create" not in doc["network"] and "network" not in overrides and \
                doc.get("servers", {}).get("count", 3) >= 3:
            doc["network"]["subnets"].append({"id": network["third_zone_subnet"], "az": f"{REGION}c"})
        path = folder / file_name
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    return _write


class Result:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


@pytest.fixture(scope="session")
def cli(moto_endpoint):
    """Run the real CLI in-process (same entry point as the console script)."""
    from k3s_infra.cli import main

    def _run(*argv: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
        return Result(code, out.getvalue(), err.getvalue())

    return _run
