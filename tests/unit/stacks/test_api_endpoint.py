"""Two doors to the K3s API and the managed network, read back from rendered templates.

Why two doors: security-group references match only the private IP addresses of the
referenced group's members (https://docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html,
"Security group referencing"), so a node that resolved an internet-facing NLB would arrive
from a public/NAT address and never match; nodes must join through an internal NLB.
Expected values come from the environment files and from the K3s port table (6443)."""

from __future__ import annotations

import ipaddress
import re

import pytest
import yaml

from k3s_infra.config import ConfigError, available_environments, validate
from k3s_infra.render import render, write

ENVIRONMENTS = available_environments()
NLB = "AWS::ElasticLoadBalancingV2::LoadBalancer"


@pytest.fixture(params=ENVIRONMENTS)
def r(request, rendered):
    return rendered[request.param]


def _sub_of_user_data(template: dict) -> tuple[str, dict]:
    (launch,) = [res for res in template["Resources"].values() if res["Type"] == "AWS::EC2::LaunchTemplate"]
    text, variables = launch["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"]
    return text, variables


def _resolve_to_load_balancer(r, stack_id: str, variable: str) -> dict:
    """Follow ${Variable} -> node parameter -> root wiring -> ApiEndpoint output -> the NLB resource."""
    _, variables = _sub_of_user_data(r.templates[stack_id])
    parameter = variables[variable]["Ref"]
    wired = r.root["Resources"][stack_id]["Properties"]["Parameters"][parameter]
    producer, output = wired["Fn::GetAtt"]
    assert producer == "ApiEndpoint"
    value = r.templates["ApiEndpoint"]["Outputs"][output.removeprefix("Outputs.")]["Value"]
    nlb_id, attribute = value["Fn::GetAtt"]
    assert attribute == "DNSName"
    return r.templates["ApiEndpoint"]["Resources"][nlb_id]


def _node_stacks(r) -> list[str]:
    return [s for s in r.templates if s in ("ServerInit", "Servers") or s.startswith("AgentPool")]


def test_every_node_joins_through_the_internal_load_balancer(r):
    """The join URL (K3s `server:`; the first server's rejoin drop-in) of every node stack."""
    for stack_id in _node_stacks(r):
        text, _ = _sub_of_user_data(r.templates[stack_id])
        document = yaml.safe_load(text.split("\n", 1)[1])
        configs = [yaml.safe_load(f["content"]) for f in document["write_files"]
                   if f["path"] in ("/etc/rancher/k3s/config.yaml", "/etc/k3s-infra/rejoin.yaml")]
        urls = {c["server"] for c in configs if "server" in c}
        assert len(urls) == 1, stack_id
        (variable,) = re.fullmatch(r"https://\$\{(\w+)\}:6443", urls.pop()).groups()
        lb = _resolve_to_load_balancer(r, stack_id, variable)["Properties"]
        assert lb["Scheme"] == "internal" and lb["Subnets"] == {"Ref": "SubnetIds"}, stack_id


def test_servers_certificate_names_both_doors_and_kubeconfig_uses_the_public_one(r):
    for stack_id in ("ServerInit", "Servers"):
        text, _ = _sub_of_user_data(r.templates[stack_id])
        document = yaml.safe_load(text.split("\n", 1)[1])
        (config,) = [yaml.safe_load(f["content"]) for f in document["write_files"]
                     if f["path"] == "/etc/rancher/k3s/config.yaml"]
        sans = [re.fullmatch(r"\$\{(\w+)\}", name) for name in config["tls-san"]]
        schemes = [_resolve_to_load_balancer(r, stack_id, m.group(1))["Properties"]["Scheme"] for m in sans if m]
        expected = ["internal", "internet-facing"] if r.env.api.scheme == "internet-facing" else ["internal"]
        assert schemes == expected
        assert [name for name, m in zip(config["tls-san"], sans) if not m] == list(r.env.k3s.tls_san)
    text, _ = _sub_of_user_data(r.templates["ServerInit"])
    (boot_env,) = [f["content"] for f in yaml.safe_load(text.split("\n", 1)[1])["write_files"]
                   if f["path"] == "/etc/k3s-infra/boot.env"]
    (host,) = re.findall(r"^KUBECONFIG_HOST='\$\{(\w+)\}'$", boot_env, re.M)
    assert _resolve_to_load_balancer(r, "ServerInit", host)["Properties"]["Scheme"] == r.env.api.scheme


def _ingress(r) -> set[tuple]:
    rules = set()
    for res in r.resources("Security", "AWS::EC2::SecurityGroupIngress").values():
        p = res["Properties"]
        source = p["SourceSecurityGroupId"]["Fn::GetAtt"][0] if "SourceSecurityGroupId" in p else \
            p.get("CidrIp") or p.get("CidrIpv6")
        rules.add((p["GroupId"]["Fn::GetAtt"][0], p["IpProtocol"], p["FromPort"], p["ToPort"], source))
    return rules


@pytest.mark.parametrize("name", [n for n in ENVIRONMENTS if n in ("prod", "staging")])
def test_public_door_port_matrix(rendered, name):
    r = rendered[name]
    assert r.env.api.scheme == "internet-facing"
    rules = _ingress(r)
    public = {rule for rule in rules if rule[0] == "PublicApiLoadBalancerSecurityGroup"}
    # the public NLB: 6443 only, only from the listed CIDRs
    assert public == {("PublicApiLoadBalancerSecurityGroup", "tcp", 6443, 6443, c) for c in r.env.api.allowed_cidrs}
    # the internal NLB: only the nodes' groups, no CIDR
    internal = {rule[4] for rule in rules if rule[0] == "ApiLoadBalancerSecurityGroup"}
    assert internal == {"ServerSecurityGroup", "AgentSecurityGroup"}
    # servers: 6443 from both load balancers' groups
    assert {("ServerSecurityGroup", "tcp", 6443, 6443, g) for g in
            ("ApiLoadBalancerSecurityGroup", "PublicApiLoadBalancerSecurityGroup")} <= rules
    # the public group's only egress: 6443 to the servers (a listed rule replaces the default allow-all)
    group = r.resources("Security", "AWS::EC2::SecurityGroup")["PublicApiLoadBalancerSecurityGroup"]["Properties"]
    (egress,) = group["SecurityGroupEgress"]
    assert (egress["IpProtocol"], egress["FromPort"], egress["ToPort"]) == ("tcp", 6443, 6443)
    assert egress["DestinationSecurityGroupId"] == {"Fn::GetAtt": ["ServerSecurityGroup", "GroupId"]}
    # the public NLB sits in the public subnets, wears its own group, forwards to its own target group
    lbs = r.resources("ApiEndpoint", NLB)
    assert {k: v["Properties"]["Scheme"] for k, v in lbs.items()} == {
        "ApiLoadBalancer": "internal", "PublicApiLoadBalancer": "internet-facing"}
    p = lbs["PublicApiLoadBalancer"]["Properties"]
    assert p["Subnets"] == {"Ref": "PublicSubnetIds"}
    assert p["SecurityGroups"] == [{"Ref": "PublicApiLoadBalancerSecurityGroupId"}]
    wired = r.root["Resources"]["ApiEndpoint"]["Properties"]["Parameters"]["PublicSubnetIds"]
    if r.env.network.managed:
        assert wired == {"Fn::GetAtt": ["Network", "Outputs.PublicSubnetIds"]}
    else:
        assert wired == {"Fn::Join": [",", [s.id for s in r.env.network.public_subnets]]}
    assert "PublicApiDnsName" in r.root["Outputs"]


def test_internal_api_has_no_second_door(rendered):
    r = rendered["dev"]
    assert r.env.api.scheme == "internal"
    assert list(r.resources("ApiEndpoint", NLB)) == ["ApiLoadBalancer"]
    assert "PublicApiLoadBalancerSecurityGroup" not in r.templates["Security"]["Resources"]
    assert "PublicApiDnsName" not in r.root["Outputs"]


# --- refusals -----------------------------------------------------------------------

def _refused(document: dict) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        validate(document, "env.yaml")
    return caught.value


def test_internet_facing_needs_public_subnets_in_two_zones(env_document):
    prod = env_document("prod")
    del prod["network"]["public_subnets"]
    error = _refused(prod)
    assert [p for p, _ in error.problems] == ["network.public_subnets"] and "env.yaml" in str(error)
    prod = env_document("prod")
    prod["network"]["public_subnets"] = [{**s, "az": "eu-west-1a"} for s in prod["network"]["public_subnets"]]
    assert [p for p, _ in _refused(prod).problems] == ["network.public_subnets"]


def test_public_subnets_are_refused_for_an_internal_api(env_document):
    dev = env_document("dev")
    dev["network"]["public_subnets"] = [{"id": "subnet-0a1b2c3d4e5f60799", "az": "eu-west-1a"},
                                        {"id": "subnet-0a1b2c3d4e5f60798", "az": "eu-west-1b"}]
    error = _refused(dev)
    assert [p for p, _ in error.problems] == ["network.public_subnets"] and "internet-facing" in str(error)


@pytest.mark.parametrize("world", ["0.0.0.0/0", "::/0"])
def test_world_open_api_needs_open_to_world(env_document, world):
    prod = env_document("prod")
    prod["api"]["allowed_cidrs"] = [world]
    error = _refused(prod)
    assert [p for p, _ in error.problems] == ["api.allowed_cidrs"] and "open_to_world" in str(error)
    prod["api"]["open_to_world"] = True
    assert validate(prod, "env.yaml").api.allowed_cidrs == [world]


def test_world_open_api_exits_2_from_the_cli(env_document, tmp_path):
    from k3s_infra.cli import main

    prod = env_document("prod")
    prod["api"]["allowed_cidrs"] = ["0.0.0.0/0"]
    path = tmp_path / "open.yaml"
    path.write_text(yaml.safe_dump(prod))
    assert main(["render", "--config", str(path), "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


def test_managed_network_refuses_brought_fields(env_document):
    staging = env_document("staging")
    staging["network"]["vpc_id"] = "vpc-0a1b2c3d4e5f60718"
    assert [p for p, _ in _refused(staging).problems] == ["network.vpc_id"]
    staging = env_document("staging")
    staging["network"]["create"]["nat_gateways"] = "two"
    assert [p for p, _ in _refused(staging).problems] == ["network.create.nat_gateways"]


# --- the managed network --------------------------------------------------------------

def _variant(env_document, tmp_path, nat: str, zones: int = 3):
    document = env_document("staging")
    document["network"]["create"] |= {"nat_gateways": nat, "availability_zones": zones}
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
    services = {p["ServiceName"]["Fn::Sub"].rsplit(".", 1)[1]: p for p in endpoints.values()}
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
    # every other stack takes the network through the same parameters; nodes go private
    assert templates["Network"]["Outputs"]["SubnetIds"]["Value"] == {"Fn::Join": [",", [{"Ref": s} for s in private]]}
    for stack_id in ("ServerInit", "Servers", "AgentPoolGeneral"):
        assert templates["Root"]["Resources"][stack_id]["Properties"]["Parameters"]["SubnetIds"] == \
            {"Fn::GetAtt": ["Network", "Outputs.SubnetIds"]}
    assert linter.lint_rendering(rendering, folder) == []


def test_graph_shows_both_doors(rendered):
    from k3s_infra.render import graph

    r = rendered["prod"]
    d = graph.diagram(r.env, r.templates)
    labels = dict(d.stacks["ApiEndpoint"])
    assert labels["ApiEndpoint_ApiLoadBalancer"] == "NLB internal :6443"
    assert labels["ApiEndpoint_PublicApiLoadBalancer"] == "NLB internet-facing :6443"
    links = set(d.links)
    for nlb in ("ApiEndpoint_ApiLoadBalancer", "ApiEndpoint_PublicApiLoadBalancer"):
        assert (nlb, "ServerInit_ServerGroup", "targets :6443") in links
    assert ("ApiEndpoint_PublicApiLoadBalancer", "Security_PublicApiLoadBalancerSecurityGroup", "wears") in links
    edges = {(s, t): label for s, t, label in d.edges}
    for cidr in r.env.api.allowed_cidrs:
        source = "cidr_" + "".join(c if c.isalnum() else "_" for c in cidr)
        assert edges[(source, "Security_PublicApiLoadBalancerSecurityGroup")] == "tcp 6443"
