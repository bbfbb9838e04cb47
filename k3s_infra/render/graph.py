"""Architecture diagram of an environment, drawn from its rendered templates:
nested stacks, the API load balancer, the auto scaling groups and every
security-group edge with its ports, as Mermaid (or Graphviz DOT) text."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from k3s_infra.config import Environment
from k3s_infra.model import naming, ports

_SG_LABELS = {"ServerSecurityGroup": "server SG", "AgentSecurityGroup": "agent SG",
              "ApiLoadBalancerSecurityGroup": "API load balancer SG",
              "PublicApiLoadBalancerSecurityGroup": "public API load balancer SG"}


@dataclass
class Diagram:
    title: str
    stacks: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # stack -> [(node id, label)]
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # (source, target, label)
    external: list[tuple[str, str]] = field(default_factory=list)  # [(node id, label)] outside AWS
    links: list[tuple[str, str, str]] = field(default_factory=list)  # membership: (node, node, label)


def _port_text(rule: dict) -> str:
    low, high = rule["FromPort"], rule["ToPort"]
    return f"{rule['IpProtocol']} {low}" if low == high else f"{rule['IpProtocol']} {low}-{high}"


def _node(stack: str, logical: str) -> str:
    return f"{stack}_{logical}"


def diagram(env: Environment, templates: dict[str, dict]) -> Diagram:
    """``templates``: stack ID -> template as a dict (``Template.to_dict()`` or parsed YAML)."""
    d = Diagram(title=f"{env.stack_name} ({env.name}, {env.region})")
    for stack_id in templates["Root"]["Resources"]:
        resources = templates[stack_id]["Resources"]
        nodes = []
        for logical, resource in resources.items():
            kind = resource["Type"]
            p = resource.get("Properties", {})
            if kind == "AWS::EC2::SecurityGroup":
                nodes.append((_node(stack_id, logical), _SG_LABELS.get(logical, logical)))
            elif kind == "AWS::ElasticLoadBalancingV2::LoadBalancer":
                nodes.append((_node(stack_id, logical), f"NLB {p['Scheme']} :{ports.API_PORT}"))
            elif kind == "AWS::AutoScaling::AutoScalingGroup":
                nodes.append((_node(stack_id, logical), _group_label(env, stack_id, p)))
            elif kind == "AWS::EC2::VPC":
                nodes.append((_node(stack_id, logical), f"VPC {p['CidrBlock']}"))
            elif kind == "AWS::EC2::InternetGateway":
                nodes.append((_node(stack_id, logical), "internet gateway"))
            elif kind == "AWS::EC2::NatGateway":
                nodes.append((_node(stack_id, logical), f"NAT gateway ({logical})"))
            elif kind == "AWS::SQS::Queue":
                nodes.append((_node(stack_id, logical), "SQS queue (node termination handler)"))
            elif kind == "AWS::Events::Rule":
                nodes.append((_node(stack_id, logical), f"EventBridge: {p['EventPattern']['detail-type'][0]}"))
            elif kind in ("AWS::SecretsManager::Secret", "AWS::S3::Bucket", "AWS::SSM::Parameter",
                          "AWS::IAM::Role"):
                nodes.append((_node(stack_id, logical), f"{logical} ({kind.split('::')[1]})"))
        d.stacks[stack_id] = nodes
    _security_edges(d, templates["Security"]["Resources"])
    _membership_links(d, templates)
    _event_links(d, templates)
    return d


def _event_links(d: Diagram, templates: dict[str, dict]) -> None:
    """EventBridge rules deliver to the queue they target (draining)."""
    for stack_id in d.stacks:
        for logical, resource in templates[stack_id]["Resources"].items():
            if resource["Type"] == "AWS::Events::Rule":
                for target in resource["Properties"]["Targets"]:
                    d.links.append((_node(stack_id, logical), _node(stack_id, target["Arn"]["Fn::GetAtt"][0]),
                                    "delivers to"))


def _security_group_of(templates: dict[str, dict], output_name: str) -> str:
    """Security-stack node behind an output name such as 'ServerSecurityGroupId'."""
    value = templates["Security"]["Outputs"][output_name]["Value"]
    return _node("Security", value["Fn::GetAtt"][0])


def _load_balancer_of(templates: dict[str, dict], target_group_output: str) -> str:
    """API-endpoint node of the NLB that forwards to the target group behind an output name."""
    endpoint = templates["ApiEndpoint"]
    group = endpoint["Outputs"][target_group_output]["Value"]["Ref"]
    (listener,) = [r for r in endpoint["Resources"].values() if r["Type"] == "AWS::ElasticLoadBalancingV2::Listener"
                   and r["Properties"]["DefaultActions"][0]["TargetGroupArn"] == {"Ref": group}]
    return _node("ApiEndpoint", listener["Properties"]["LoadBalancerArn"]["Ref"])


def _membership_links(d: Diagram, templates: dict[str, dict]) -> None:
    """Which security group each ASG and each NLB (internal; public with an internet-facing API)
    wear, and which ASGs each NLB targets."""
    endpoint = templates["ApiEndpoint"]["Resources"]
    for nlb_id, resource in endpoint.items():
        if resource["Type"] == "AWS::ElasticLoadBalancingV2::LoadBalancer":
            d.links.append((_node("ApiEndpoint", nlb_id), _security_group_of(
                templates, resource["Properties"]["SecurityGroups"][0]["Ref"]), "wears"))
    for stack_id in d.stacks:
        resources = templates[stack_id]["Resources"]
        for logical, resource in resources.items():
            if resource["Type"] != "AWS::AutoScaling::AutoScalingGroup":
                continue
            p = resource["Properties"]
            spec = p.get("LaunchTemplate") or p["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]
            launch = resources[spec["LaunchTemplateId"]["Ref"]]["Properties"]["LaunchTemplateData"]
            (group_ref,) = launch["SecurityGroupIds"]
            d.links.append((_node(stack_id, logical), _security_group_of(templates, group_ref["Ref"]), "wears"))
            for target_group in p.get("TargetGroupARNs", []):
                d.links.append((_load_balancer_of(templates, target_group["Ref"]), _node(stack_id, logical),
                                f"targets :{ports.API_PORT}"))


def _group_label(env: Environment, stack_id: str, p: dict) -> str:
    if stack_id == "ServerInit":
        return f"ASG cluster-init server: 1 x {env.servers.instance_type}"
    if stack_id == "Servers":
        return f"ASG servers: {env.servers.count - 1} x {env.servers.instance_type}"
    pool = next(pool for pool in env.agent_pools if naming.agent_pool_stack(pool.name) == stack_id)
    kind = "spot" if pool.spot else "on-demand"
    return f"ASG agents {pool.name}: {pool.min_size}-{pool.max_size} x {'/'.join(pool.instance_types)} ({kind})"


def _security_edges(d: Diagram, resources: dict) -> None:
    ports: dict[tuple[str, str], list[str]] = defaultdict(list)
    for logical, resource in resources.items():
        p = resource.get("Properties", {})
        if resource["Type"] == "AWS::EC2::SecurityGroupIngress":
            target = _node("Security", p["GroupId"]["Fn::GetAtt"][0])
            if "SourceSecurityGroupId" in p:
                source = _node("Security", p["SourceSecurityGroupId"]["Fn::GetAtt"][0])
            else:
                cidr = p.get("CidrIp") or p.get("CidrIpv6")
                source = "cidr_" + "".join(c if c.isalnum() else "_" for c in cidr)
                if (source, cidr) not in d.external:
                    d.external.append((source, cidr))
            ports[(source, target)].append(_port_text(p))
        elif resource["Type"] == "AWS::EC2::SecurityGroup":
            for rule in p.get("SecurityGroupEgress", []):  # listed inline (replacing the default allow-all)
                if "DestinationSecurityGroupId" in rule:
                    source = _node("Security", logical)
                    target = _node("Security", rule["DestinationSecurityGroupId"]["Fn::GetAtt"][0])
                    ports[(source, target)].append(_port_text(rule) + " (egress)")
        elif resource["Type"] == "AWS::EC2::SecurityGroupEgress":
            source = _node("Security", p["GroupId"]["Fn::GetAtt"][0])
            target = _node("Security", p["DestinationSecurityGroupId"]["Fn::GetAtt"][0])
            ports[(source, target)].append(_port_text(p) + " (egress)")
    for (source, target), labels in ports.items():
        d.edges.append((source, target, ", ".join(sorted(set(labels)))))


def mermaid(d: Diagram) -> str:
    lines = ["flowchart LR", f'  %% {d.title}']
    for node_id, label in d.external:
        lines.append(f'  {node_id}(["{label}"])')
    for stack_id, nodes in d.stacks.items():
        lines.append(f'  subgraph {stack_id}["{stack_id} stack"]')
        lines += [f'    {node_id}["{label}"]' for node_id, label in nodes] or [f'    {stack_id}_empty[" "]']
        lines.append("  end")
    lines += [f'  {source} -->|"{label}"| {target}' for source, target, label in d.edges]
    lines += [f'  {source} -.-|"{label}"| {target}' for source, target, label in d.links]
    return "\n".join(lines) + "\n"


def dot(d: Diagram) -> str:
    lines = ["digraph k3s {", "  rankdir=LR;", f'  label="{d.title}";', "  node [shape=box];"]
    for node_id, label in d.external:
        lines.append(f'  {node_id} [label="{label}", shape=ellipse];')
    for stack_id, nodes in d.stacks.items():
        lines.append(f'  subgraph cluster_{stack_id} {{ label="{stack_id} stack";')
        lines += [f'    {node_id} [label="{label}"];' for node_id, label in nodes]
        lines.append("  }")
    lines += [f'  {source} -> {target} [label="{label}"];' for source, target, label in d.edges]
    lines += [f'  {source} -> {target} [label="{label}", style=dashed];' for source, target, label in d.links]
    return "\n".join(lines) + "\n}\n"
