"""Least reach (issue #13.3-6, #10.7): IMDS hop limits per role, explicit egress on every
security group, add-on values that make draining, storage and auditing actually work.

Expected values come from the AWS, K3s and chart sources cited next to each test, never
from the constants the code uses.
"""

from __future__ import annotations

import re

import pytest
import yaml

from k3s_infra import bootstrap
from k3s_infra.model import addons
from k3s_infra.config import defaults
from k3s_infra.config.catalog import CATALOG, CLUSTER_AUTOSCALER_CHARTS
from k3s_infra.bootstrap import k3s_config
from k3s_infra.config import available_environments, load_environment
from k3s_infra.render import render
from tests.test_addons import ALL_ADDONS, with_addons
from fixture_scope import shared

NODE_STACK = re.compile(r"^(ServerInit|Servers|AgentPool.*)$")
# Security groups allowed to keep AWS's default allow-all egress, with the reason: none.
DEFAULT_EGRESS_ALLOWED: dict[str, str] = {}


def rendered_templates(env) -> dict[str, dict]:
    return {s.stack_id: yaml.safe_load(s.body) for s in render(env).stacks}


@pytest.fixture(scope=shared("module"), params=[*available_environments(), "all-addons"])
def case(request):
    env = load_environment(path=ALL_ADDONS) if request.param == "all-addons" else load_environment(request.param)
    return env, rendered_templates(env)


def hop_limits(templates: dict[str, dict]) -> dict[str, int]:
    found = {}
    for stack_id, template in templates.items():
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::EC2::LaunchTemplate":
                options = resource["Properties"]["LaunchTemplateData"]["MetadataOptions"]
                assert options["HttpTokens"] == "required"
                found[stack_id] = options["HttpPutResponseHopLimit"]
    return found


def test_imds_hop_limit_is_1_unless_a_pod_on_the_node_needs_the_role(case):
    """AWS: "the hop limit ... 2 ... in a container environment" is needed only for a container
    that is not on the host network; 1 keeps IMDSv2 to the host
    (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-metadata-v2-how-it-works.html).
    Agents run no AWS client: 1. The cloud controller runs with hostNetwork (chart 0.0.9
    templates/daemonset.yaml). The node termination handler in queue mode never uses host
    networking (chart 0.27.2 values.yaml, useHostNetwork) and runs on servers: 2 there when on."""
    env, templates = case
    limits = hop_limits(templates)
    assert set(limits) == {s for s in templates if NODE_STACK.match(s)}
    for stack_id, limit in limits.items():
        if stack_id.startswith("AgentPool"):
            assert limit == 1, (env.name, stack_id)
        else:
            assert limit == (2 if env.draining else 1), (env.name, stack_id)
    manifest = k3s_config.cloud_controller_manifest(env)
    assert yaml.safe_load(manifest["spec"]["valuesContent"])["hostNetworking"] is True


def test_no_security_group_keeps_the_default_allow_all_egress_unintentionally(case):
    """CloudFormation removes AWS's default egress rule only when the group lists its own
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-ec2-securitygroup.html)."""
    _, templates = case
    groups = 0
    for stack_id, template in templates.items():
        for logical, resource in template["Resources"].items():
            assert resource["Type"] != "AWS::EC2::SecurityGroupEgress", (stack_id, logical)
            if resource["Type"] != "AWS::EC2::SecurityGroup":
                continue
            groups += 1
            egress = resource["Properties"].get("SecurityGroupEgress")
            assert egress or logical in DEFAULT_EGRESS_ALLOWED, (stack_id, logical)
            for rule in egress:
                if rule.get("CidrIp") == "0.0.0.0/0" or rule.get("CidrIpv6") == "::/0":
                    assert logical in ("ServerSecurityGroup", "AgentSecurityGroup"), logical
                    assert "intended" in rule["Description"]
    assert groups >= 3
    (lb_rule,) = templates["Security"]["Resources"]["ApiLoadBalancerSecurityGroup"]["Properties"][
        "SecurityGroupEgress"]
    # Listener and health check port: 6443 (K3s API, docs.k3s.io/installation/requirements).
    assert (lb_rule["IpProtocol"], lb_rule["FromPort"], lb_rule["ToPort"]) == ("tcp", 6443, 6443)
    assert lb_rule["DestinationSecurityGroupId"] == {"Fn::GetAtt": ["ServerSecurityGroup", "GroupId"]}


def _nth_values(env) -> dict:
    (chart,) = [c for c in addons.charts(env) if c["metadata"]["name"] == "node-termination-handler"]
    return yaml.safe_load(chart["spec"]["valuesContent"])


def test_the_termination_handler_finds_nodes_the_way_the_boot_names_them():
    """boot.sh names nodes by instance ID and sets provider-id aws:///<zone>/<instance-id>; NTH
    v1.25.2 looks nodes up by private DNS name unless useProviderId, and then builds
    fmt.Sprintf("aws:///%s/%s", AvailabilityZone, instanceID) (pkg/monitor/sqsevent/sqs-monitor.go)
    and compares it with Node.spec.providerID (pkg/node/node.go)."""
    script = bootstrap.boot_script()
    assert re.search(r"^node-name: \$instance_id$", script, re.M)
    (provider_id,) = re.findall(r"provider-id=(\S+)", script)
    nth_format = "aws:///%s/%s" % ("$zone", "$instance_id")
    assert provider_id == nth_format
    env = load_environment("prod")
    assert env.draining
    values = _nth_values(env)
    assert values["useProviderId"] is True and values["enableSqsTerminationDraining"] is True
    # IMDS-mode switches do nothing in queue mode (values.yaml "Only used in IMDS mode").
    assert not {"enableRebalanceMonitoring", "enableScheduledEventDraining"} & set(values)


def test_rebalance_recommendations_drain_only_when_asked(env_document):
    """Queue-mode NTH cordons only if cordonOnly, which covers every event; otherwise it drains
    what it receives (v1.25.2 pkg/interruptionevent/draincordon/handler.go). Rebalance events
    therefore reach the queue only when enableRebalanceDraining is set."""
    def rules(env):
        return {k for k, v in rendered_templates(env)["Draining"]["Resources"].items()
                if v["Type"] == "AWS::Events::Rule"}

    default = with_addons(env_document, "prod")
    asked = with_addons(env_document, "prod", node_termination_handler={"values": {"enableRebalanceDraining": True}})
    assert "RebalanceRule" not in rules(default) and "RebalanceRule" in rules(asked)
    assert _nth_values(default).get("cordonOnly") is not True  # terminations must drain


def _server_config(templates: dict, stack_id: str = "ServerInit") -> dict:
    from tests.test_addons import write_files

    return yaml.safe_load(write_files(templates[stack_id])[bootstrap.K3S_CONFIG]["content"])


def test_longhorn_loads_iscsi_tcp_and_leaves_one_default_storage_class(env_document):
    """Longhorn needs iscsi_tcp loaded (https://longhorn.io/docs/1.9.1/deploy/install/); K3s's
    local-path class is a default class until `disable: local-storage`
    (https://docs.k3s.io/installation/packaged-components)."""
    from oracle_helpers import user_data_text

    on = rendered_templates(with_addons(env_document, "dev", longhorn={"enabled": True}))
    for stack_id in (s for s in on if NODE_STACK.match(s)):
        document = yaml.safe_load(user_data_text(on[stack_id]))
        assert ["modprobe", "iscsi_tcp"] in document["bootcmd"], stack_id
        (modules,) = [f for f in document["write_files"] if f["path"].startswith("/etc/modules-load.d/")]
        assert modules["content"].split() == ["iscsi_tcp"]
    assert "local-storage" in _server_config(on)["disable"]
    assert "local-storage" in _server_config(on, "Servers")["disable"]  # identical on every server
    off = rendered_templates(with_addons(env_document, "dev"))
    assert "local-storage" not in _server_config(off)["disable"]
    assert "bootcmd" not in yaml.safe_load(user_data_text(off["ServerInit"]))
    kept = rendered_templates(with_addons(env_document, "dev", longhorn={
        "enabled": True, "values": {"persistence": {"defaultClass": False}}}))
    assert "local-storage" not in _server_config(kept)["disable"]


def test_rancher_audit_log_is_enabled_not_only_levelled(env_document):
    """rancher/rancher chart/values.yaml: auditLog.enabled (default false) gates the audit
    sidecar and AUDIT_LEVEL; level alone records nothing."""
    env = with_addons(env_document, "dev", rancher={"enabled": True, "values": {"hostname": "r.example.com"}})
    values = addons.values(env, "rancher")
    assert values["auditLog"]["enabled"] is True and values["auditLog"]["level"] >= 1


# Chart value keys (dotted paths; a key covers everything under it) read in each chart's
# values.yaml, or in its templates where values.yaml leaves the key out or commented, at the
# pinned version: checked in the chart's repository at the release tag named per row.
_AUTOSCALER_KEYS = {"autoDiscovery.clusterName", "awsRegion", "cloudProvider", "hostNetwork", "dnsPolicy",
                    "extraArgs", "nodeSelector", "tolerations"}
VERIFIED_KEYS: dict[tuple[str, str], set[str]] = {
    # cert-manager/cert-manager deploy/charts/cert-manager/values.yaml @ tag v1.18.2
    ("cert_manager", "v1.18.2"): {"crds.enabled"},
    # rancher/rancher chart/values.yaml @ tag v2.12.1 (ed376a3); hostname is commented out
    # there and read by chart/templates (ingress.yaml, NOTES.txt).
    ("rancher", "2.12.1"): {"replicas", "ingress.tls.source", "auditLog.enabled", "auditLog.level", "hostname",
                            "bootstrapPassword"},
    # VictoriaMetrics/helm-charts charts/victoria-metrics-single/values.yaml @ tag
    # victoria-metrics-single-0.24.5 (appVersion v1.125.1)
    ("victoria_metrics", "0.24.5"): {"server.retentionPeriod", "server.persistentVolume.enabled",
                                     "server.persistentVolume.size", "server.scrape.enabled"},
    # VictoriaMetrics/helm-charts charts/victoria-logs-single/values.yaml @ tag
    # victoria-logs-single-0.11.8 (appVersion v1.33.0)
    ("victoria_logs", "0.11.8"): {"server.retentionPeriod", "server.persistentVolume.enabled",
                                  "server.persistentVolume.size"},
    # grafana/helm-charts charts/grafana/values.yaml @ tag grafana-9.3.1; adminPassword is
    # commented out there and read by templates/_config.tpl (grafana.secretsData).
    ("grafana", "9.3.1"): {"persistence.enabled", "persistence.size", "adminPassword", "datasources"},
    # grafana/alloy operations/helm/charts/alloy/values.yaml @ tag helm-chart/1.2.1 (the chart
    # is released from grafana/alloy; grafana/helm-charts has no charts/alloy).
    ("alloy", "1.2.1"): {"alloy.configMap.content", "alloy.mounts.varlog"},
    # longhorn/longhorn chart/values.yaml @ tag v1.9.1 (longhorn/charts has no v1.9 branch stored)
    ("longhorn", "1.9.1"): {"persistence.defaultClass", "persistence.defaultClassReplicaCount",
                            "defaultSettings.defaultDataPath", "defaultSettings.nodeDrainPolicy"},
    # hashicorp/vault-helm values.yaml @ tag v0.30.1
    ("vault", "0.30.1"): {"server.ha.enabled", "server.ha.replicas", "server.ha.raft.enabled",
                          "server.dataStorage.size", "injector.enabled"},
    # open-policy-agent/gatekeeper charts/gatekeeper/values.yaml @ tag v3.20.0
    ("gatekeeper", "3.20.0"): {"replicas", "auditInterval"},
    # aws/aws-node-termination-handler tag v1.25.2, config/helm/aws-node-termination-handler/values.yaml
    ("node_termination_handler", "0.27.2"): {
        "enableSqsTerminationDraining", "useProviderId", "checkTagBeforeDraining", "managedTag",
        "deleteSqsMsgIfNodeNotFound", "replicas", "nodeSelector", "tolerations", "awsRegion", "queueURL",
        "enableRebalanceDraining", "cordonOnly"},
    # kubernetes/autoscaler values.yaml and templates/deployment.yaml (hostNetwork, dnsPolicy,
    # extraArgs rendered as --<key>=<value>) @ tags cluster-autoscaler-chart-<version>, under
    # charts/cluster-autoscaler/ up to 9.51.0 and cluster-autoscaler/charts/cluster-autoscaler/ after.
    **{("cluster_autoscaler", v): _AUTOSCALER_KEYS for v in ("9.37.0", "9.44.0", "9.46.6", "9.51.0", "9.53.0",
                                                             "9.59.0")},
}
# kubernetes/cloud-provider-aws charts/aws-cloud-controller-manager/values.yaml @ tag
# helm-chart-aws-cloud-controller-manager-0.0.9; hostNetworking is not in values.yaml, only
# read by templates/daemonset.yaml (`if .Values.hostNetworking` -> hostNetwork: true).
CCM_VERIFIED_KEYS: dict[str, set[str]] = {
    "0.0.9": {"image.tag", "args", "hostNetworking", "nodeSelector", "tolerations"},
}


def _paths(values: dict, prefix: str = "") -> set[str]:
    found = set()
    for key, value in values.items():
        path = f"{prefix}{key}"
        found |= _paths(value, f"{path}.") if isinstance(value, dict) and value else {path}
    return found


def _unverified(keys: set[str], verified: set[str]) -> set[str]:
    return {k for k in keys if not any(k == v or k.startswith(f"{v}.") for v in verified)}


def test_every_pinned_chart_version_has_verified_keys():
    """A version bump must come with its keys re-read at the new version."""
    pinned = {(name, entry.version) for name, entry in CATALOG.items()}
    pinned |= {("cluster_autoscaler", v) for v in CLUSTER_AUTOSCALER_CHARTS.values()}
    assert pinned - set(VERIFIED_KEYS) == set()
    assert defaults.CCM_CHART_VERSION in CCM_VERIFIED_KEYS


@pytest.mark.parametrize("name,version", sorted(VERIFIED_KEYS))
def test_catalog_values_are_keys_of_that_chart_version(name, version):
    """Every key the rendered HelmChart sets (valuesContent as rendered for an environment
    with every add-on on, valuesSecrets keys, deploy-time and required keys) is a key of the
    chart at that version."""
    entry = CATALOG[name]
    env = load_environment(path=ALL_ADDONS)
    (chart,) = [c for c in addons.charts(env) if c["metadata"]["name"] == addons.chart_name(name)]
    keys = _paths(yaml.safe_load(chart["spec"]["valuesContent"]))
    keys |= set(entry.secret_values) | set(entry.runtime_values) | set(entry.required_values)
    assert _unverified(keys, VERIFIED_KEYS[(name, version)]) == set(), name


def test_cloud_controller_values_are_keys_of_its_chart_version():
    env = load_environment("prod")
    manifest = k3s_config.cloud_controller_manifest(env)
    keys = _paths(yaml.safe_load(manifest["spec"]["valuesContent"]))
    assert _unverified(keys, CCM_VERIFIED_KEYS[manifest["spec"]["version"]]) == set()


def test_alloy_ships_only_its_own_nodes_pod_logs(env_document):
    """The chart runs Alloy as a DaemonSet with HOSTNAME = spec.nodeName (grafana/alloy
    operations/helm/charts/alloy/values.yaml controller.type and
    templates/containers/_agent.yaml @ helm-chart/1.2.1); discovery must select that node's
    pods (docs/sources/reference/components/discovery/discovery.kubernetes.md @ v1.10.1,
    "Pods on the same node"), or every node ships every pod's logs."""
    env = with_addons(env_document, "dev", alloy={"enabled": True})
    values = addons.values(env, "alloy")
    assert values.get("controller", {}).get("type", "daemonset") == "daemonset"
    content = values["alloy"]["configMap"]["content"]
    discovery = re.search(r'discovery\.kubernetes "pods" \{(.*?)\n\}', content, re.S).group(1)
    selectors = re.search(r"selectors \{(.*?)\}", discovery, re.S).group(1)
    assert re.search(r'role\s*=\s*"pod"', selectors)
    assert re.search(r'field\s*=\s*"spec\.nodeName="\s*\+\s*sys\.env\("HOSTNAME"\)', selectors)
    assert "loki.source.kubernetes" in content  # reads logs through the API, no node files
    assert not values["alloy"].get("mounts", {}).get("varlog")
