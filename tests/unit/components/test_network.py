"""The managed network (k3s_infra/components/network.py, ``network.create``): a VPC with a
public and a private subnet per zone in disjoint CIDRs, public subnets routed to the internet
gateway, private ones through one NAT, one per zone (each zone through its own) or none (then
interface endpoints for every AWS API the nodes call, reachable on 443 from the VPC), an S3
gateway endpoint on the private route tables, flow logs; every node stack takes the private
subnets through the same parameters a brought network fills (with three servers the first
server the first zone's, the others the rest); cfn-lint clean in each variant.
"""

from __future__ import annotations

import ipaddress

import pytest
import yaml

from k3s_infra.config import validate
from k3s_infra.render import render, write


def _variant(env_document, tmp_path, nat: str, zones: int = 3):
    document = env_document("staging")
    document["network"]["create"] |= {"nat_gateways": nat, "availability_zones": zones}
    if zones < 3:  # three servers need three zones (k3s_infra/model/placement.py)
        document["servers"] = {**document["servers"], "count": 1}
    rendering = render(validate(document, "staging.yaml"))
    folder = write(rendering, tmp_path / nat)
    templates = {s.stack_id: yaml.safe_load((folder / s.file).read_text()) for s in rendering.stacks}
    return rendering, folder, templates


def _by_type(template: dict, type_: str) -> dict[str, dict]:
    return {k: v["Properties"] for k, v in template["Resources"].items() if v["Type"] == type_}


def _default_routes(network: dict) -> dict[str, dict]:
    """Route table -> its 0.0.0.0/0 route."""
    return {p["RouteTableId"]["Ref"]: p for p in _by_type(network, "AWS::EC2::Route").values()
            if p["DestinationCidrBlock"] == "0.0.0.0/0"}


def _table_of(network: dict, subnet: str) -> str:
    (table,) = [p["RouteTableId"]["Ref"] for p in _by_type(network, "AWS::EC2::SubnetRouteTableAssociation").values()
                if p["SubnetId"] == {"Ref": subnet}]
    return table


@pytest.mark.parametrize("nat,zones", [("one", 3), ("per-az", 3), ("none", 2)])
def test_managed_network_routes(env_document, tmp_path, linter, nat, zones):
    rendering, folder, templates = _variant(env_document, tmp_path, nat, zones)
    network = templates["Network"]
    (vpc,) = _by_type(network, "AWS::EC2::VPC").values()
    assert vpc["CidrBlock"] == "10.30.0.0/16" and vpc["EnableDnsSupport"] and vpc["EnableDnsHostnames"]
    subnets = _by_type(network, "AWS::EC2::Subnet")
    public = sorted(k for k in subnets if k.startswith("Public"))
    private = sorted(k for k in subnets if k.startswith("Private"))
    assert len(public) == len(private) == zones
    # one zone each, chosen offline; disjoint CIDRs inside the VPC; no public IPs on launch
    assert sorted(p["AvailabilityZone"]["Fn::Select"][0] for k, p in subnets.items() if k in public) == \
        list(range(zones))
    blocks = [ipaddress.ip_network(p["CidrBlock"]) for p in subnets.values()]
    assert all(b.subnet_of(ipaddress.ip_network("10.30.0.0/16")) for b in blocks)
    assert not any(a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1:])
    assert not any(p["MapPublicIpOnLaunch"] for p in subnets.values())
    routes = _default_routes(network)
    (gateway,) = _by_type(network, "AWS::EC2::InternetGateway")
    for subnet in public:
        assert routes[_table_of(network, subnet)]["GatewayId"] == {"Ref": gateway}
    nats = _by_type(network, "AWS::EC2::NatGateway")
    assert len(nats) == {"one": 1, "per-az": zones, "none": 0}[nat]
    assert all(p["SubnetId"]["Ref"] in public for p in nats.values())
    used = set()
    for subnet in private:
        table = _table_of(network, subnet)
        if nat == "none":
            assert table not in routes
        else:
            used.add(routes[table]["NatGatewayId"]["Ref"])
            assert "GatewayId" not in routes[table]
    assert used == set(nats)
    if nat == "per-az":  # each zone's private subnet leaves through the NAT in its own zone
        for subnet in private:
            target = routes[_table_of(network, subnet)]["NatGatewayId"]["Ref"]
            zone = subnets[nats[target]["SubnetId"]["Ref"]]["AvailabilityZone"]
            assert zone == subnets[subnet]["AvailabilityZone"]
    endpoints = _by_type(network, "AWS::EC2::VPCEndpoint")
    # com.amazonaws.<region>.<service> (DescribeVpcEndpointServices; tests/unit/stacks/test_partitions.py)
    prefix = f"com.amazonaws.{rendering.env.region}."
    assert all(p["ServiceName"].startswith(prefix) for p in endpoints.values())
    services = {p["ServiceName"].removeprefix(prefix): p for p in endpoints.values()}
    assert services["s3"]["VpcEndpointType"] == "Gateway"
    assert {t["Ref"] for t in services["s3"]["RouteTableIds"]} == {_table_of(network, s) for s in private}
    interface = {name for name, p in services.items() if p["VpcEndpointType"] == "Interface"}
    if nat == "none":
        assert {"secretsmanager", "ssm", "cloudformation", "ec2", "elasticloadbalancing", "sts",
                "autoscaling"} <= interface
        assert all(services[s]["PrivateDnsEnabled"] is True for s in interface)
        (group,) = _by_type(network, "AWS::EC2::SecurityGroup").values()
        (rule,) = group["SecurityGroupIngress"]
        assert (rule["FromPort"], rule["ToPort"], rule["CidrIp"]) == (443, 443, {"Fn::GetAtt": ["Vpc", "CidrBlock"]})
    else:
        assert interface == set()
    (flow,) = _by_type(network, "AWS::EC2::FlowLog").values()
    assert flow["ResourceId"] == {"Ref": "Vpc"} and flow["TrafficType"] == "ALL"
    # every other stack takes the network through the same parameters; nodes go private, the
    # first server in the first zone's subnet when there are three servers, else in any
    outputs = {name: output["Value"]["Fn::Join"][1] for name, output in templates["Network"]["Outputs"].items()
               if name.endswith("SubnetIds")}
    assert outputs["SubnetIds"] == [{"Ref": s} for s in private]
    first = [s for s in private if subnets[s]["AvailabilityZone"]["Fn::Select"][0] == 0]
    three = rendering.env.servers.count >= 3
    assert outputs["FirstServerSubnetIds"] == [{"Ref": s} for s in (first if three else private)]
    assert outputs["JoiningServerSubnetIds"] == [{"Ref": s} for s in private if not three or s not in first]
    for stack_id, name in (("ServerInit", "FirstServerSubnetIds"), ("Servers", "JoiningServerSubnetIds"),
                           ("AgentPoolGeneral", "SubnetIds")):
        assert templates["Root"]["Resources"][stack_id]["Properties"]["Parameters"][name] == \
            {"Fn::GetAtt": ["Network", f"Outputs.{name}"]}
    assert linter.lint_rendering(rendering, folder) == []


def test_flow_log_role_trusts_only_this_accounts_flow_logs(env_document, tmp_path):
    """Issue 23: the delivery role's trust names aws:SourceAccount and aws:SourceArn, as the VPC
    User Guide's flow-logs IAM role page gives it (confused deputy): the flow-logs service acting
    for another account cannot assume it."""
    from tests.support.iam_eval import Request, trusted
    from tests.support.iam_policies import roles_of

    rendering, _, templates = _variant(env_document, tmp_path, "one")
    account, region = rendering.env.account_id, rendering.env.region
    values = {"AWS::AccountId": account, "AWS::Region": region, "AWS::Partition": "aws",
              "FlowLogGroup.Arn": f"arn:aws:logs:{region}:{account}:log-group:flows"}
    trust = roles_of(templates["Network"], values)["FlowLogRole"]["trust"]

    def assume(source_account: str) -> Request:
        return Request("sts:AssumeRole", "*", principal=("Service", "vpc-flow-logs.amazonaws.com"), context={
            "aws:SourceAccount": source_account,
            "aws:SourceArn": f"arn:aws:ec2:{region}:{source_account}:vpc-flow-log/fl-0123456789abcdef0"})

    assert trusted(trust, assume(account))
    assert not trusted(trust, assume("210987654321"))
    assert not trusted(trust, Request("sts:AssumeRole", "*", principal=("Service", "vpc-flow-logs.amazonaws.com")))


def test_managed_subnets_are_discoverable_for_service_load_balancers(env_document, tmp_path):
    """Issue 23: Service load balancers land in subnets tagged for them: public ones
    kubernetes.io/role/elb=1, private ones kubernetes.io/role/internal-elb=1, both with the
    cluster's kubernetes.io/cluster/<name> (cloud-provider-aws findELBSubnets; AWS Load Balancer
    Controller docs, "Subnet auto-discovery"). `shared`: the controller never owns them."""
    rendering, _, templates = _variant(env_document, tmp_path, "one")
    cluster_key = f"kubernetes.io/cluster/{rendering.env.stack_name}"
    subnets = {k: {t["Key"]: t["Value"] for t in v["Tags"]}
               for k, v in _by_type(templates["Network"], "AWS::EC2::Subnet").items()}
    assert len(subnets) == 2 * rendering.env.network.create.availability_zones
    for logical, tags in subnets.items():
        public = logical.startswith("Public")
        assert tags[cluster_key] == "shared", logical
        assert tags.get("kubernetes.io/role/elb") == ("1" if public else None), logical
        assert tags.get("kubernetes.io/role/internal-elb") == (None if public else "1"), logical
