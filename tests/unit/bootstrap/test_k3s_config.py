"""The K3s configuration and units each node gets (k3s_infra/bootstrap/k3s_config.py), against
K3s's own installer and documentation: the unit equals k3s-io/k3s install.sh's
(create_systemd_service_file, as a fixed table here), the first start is bounded inside the
group's signal timeout, token files in config.yaml are the ones boot.env writes, a replaced
first server rejoins through the servers' join URL (docs.k3s.io/datastore/ha-embedded), and
the AWS cloud controller's HelmChart (docs.k3s.io/helm) runs before a cloud provider exists,
with the cluster name its permissions and tags use and only keys its chart reads
(kubernetes/cloud-provider-aws charts/aws-cloud-controller-manager, tests/support/chart_keys.py).
"""

from __future__ import annotations

import re

import yaml

from k3s_infra.bootstrap import k3s_config
from k3s_infra.config import load_environment

from tests.support.chart_keys import CCM_VERIFIED_KEYS, key_paths as _paths, unverified as _unverified
from tests.support.oracle_helpers import node_files, node_role as _role, written_files


CONFIG = "/etc/rancher/k3s/config.yaml"  # K3s's default config file (docs.k3s.io/installation/configuration)

MANIFESTS = "/var/lib/rancher/k3s/server/manifests"  # auto-deployed (docs.k3s.io/installation/packaged-components)

BOOT_ENV = "/etc/k3s-infra/boot.env"


# k3s-io/k3s install.sh create_systemd_service_file (master after k3s-io/k3s#12889, which
# dropped the nm-cloud-setup ExecStartPre guard; Type=notify for agents too), as written for
# `k3s` and `k3s-agent`. Left out on purpose: EnvironmentFile=-/etc/systemd/system/<unit>.env
# (every setting is in config.yaml; the boot writes no environment).
INSTALL_SH_UNIT = [
    ("Unit", "Description", "Lightweight Kubernetes"), ("Unit", "Documentation", "https://k3s.io"),
    ("Unit", "Wants", "network-online.target"), ("Unit", "After", "network-online.target"),
    ("Install", "WantedBy", "multi-user.target"),
    ("Service", "Type", "notify"),
    ("Service", "EnvironmentFile", "-/etc/default/%N"), ("Service", "EnvironmentFile", "-/etc/sysconfig/%N"),
    ("Service", "KillMode", "process"), ("Service", "Delegate", "yes"), ("Service", "User", "root"),
    ("Service", "LimitNOFILE", "1048576"), ("Service", "LimitNPROC", "infinity"),
    ("Service", "LimitCORE", "infinity"), ("Service", "TasksMax", "infinity"),
    ("Service", "TimeoutStartSec", "0"), ("Service", "Restart", "always"), ("Service", "RestartSec", "5s"),
    ("Service", "ExecStartPre", "-/sbin/modprobe br_netfilter"), ("Service", "ExecStartPre", "-/sbin/modprobe overlay"),
]


def _unit_lines(text: str) -> list[tuple[str, str, str]]:
    lines, section = [], None
    for line in text.splitlines():
        if m := re.fullmatch(r"\[(\w+)\]", line):
            section = m.group(1)
        elif line.strip():
            key, value = line.split("=", 1)
            lines.append((section, key, value))
    return lines


def test_the_k3s_unit_is_the_installers(nodes):
    _, templates = nodes
    for stack_id, template in templates.items():
        role = _role(template)
        service, command = ("k3s-agent", "agent") if role == "agent" else ("k3s", "server")
        files = written_files(template)
        assert f"/etc/systemd/system/{service}.service" in files, stack_id
        assert _unit_lines(files[f"/etc/systemd/system/{service}.service"]) == [
            *INSTALL_SH_UNIT, ("Service", "ExecStart", f"/usr/local/bin/k3s {command}")], stack_id


def test_the_first_start_is_bounded_inside_the_signal_timeout(nodes):
    """A runtime drop-in (/run: gone after a reboot) bounds only the first start, and ends it
    before CloudFormation stops waiting for the group's signal (CreationPolicy Timeout)."""
    _, templates = nodes
    for stack_id, template in templates.items():
        service = "k3s-agent" if _role(template) == "agent" else "k3s"
        drop_ins = {p: t for p, t in written_files(template).items()
                    if p.startswith(f"/run/systemd/system/{service}.service.d/") and p.endswith(".conf")}
        assert len(drop_ins) == 1, stack_id
        ((section, key, value),) = _unit_lines(next(iter(drop_ins.values())))
        assert section == "Service", stack_id  # systemd.service(5): TimeoutStartSec= is a [Service] setting
        (group,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::AutoScaling::AutoScalingGroup"]
        # A group created empty waits for signals only while it rolls (UpdatePolicy PauseTime).
        timeout = (group["CreationPolicy"]["ResourceSignal"]["Timeout"] if "CreationPolicy" in group
                   else group["UpdatePolicy"]["AutoScalingRollingUpdate"]["PauseTime"])
        minutes = int(re.fullmatch(r"PT(\d+)M", timeout).group(1))
        assert key == "TimeoutStartSec" and 0 < int(value.removesuffix("s")) < minutes * 60, stack_id


def test_token_files_in_the_config_are_the_ones_the_boot_writes(nodes):
    _, templates = nodes
    for stack_id, template in templates.items():
        files = written_files(template)
        config, boot = yaml.safe_load(files[CONFIG]), dict(re.findall(r"^(\w+)='(.*)'$", files[BOOT_ENV], re.M))
        assert config["token-file"] == boot["TOKEN_FILE"], stack_id
        assert boot["TOKEN_FILE"].startswith("/etc/rancher/k3s/"), stack_id
        if _role(template) != "agent":
            assert config["agent-token-file"] == boot["AGENT_TOKEN_FILE"] != boot["TOKEN_FILE"], stack_id


def test_a_replaced_first_server_rejoins_through_the_servers_endpoint(nodes):
    """The rejoin drop-in turns cluster-init off and points at the same URL the other servers
    join (https://<internal API>:6443, docs.k3s.io/datastore/ha-embedded)."""
    _, templates = nodes
    joins = {yaml.safe_load(written_files(t)[CONFIG])["server"] for t in templates.values()
             if _role(t) != "server-init"}
    (first,) = [t for t in templates.values() if _role(t) == "server-init"]
    rejoin_paths = [p for p in written_files(first) if p.endswith("rejoin.yaml")]
    assert len(rejoin_paths) == 1
    rejoin = yaml.safe_load(written_files(first)[rejoin_paths[0]])
    assert rejoin == {"cluster-init": False, "server": next(iter(joins))} and len(joins) == 1
    # The internal API's name, read at boot (boot.sh bind_facts: tests/unit/stacks/test_api_endpoint.py).
    assert re.fullmatch(r"https://@@K3S_INFRA_FACT_API_DNS_NAME@@:6443", rejoin["server"])


def test_the_cloud_controller_chart_runs_before_a_cloud_provider_exists(nodes):
    """K3s's helm controller installs HelmChart resources from the manifests folder
    (docs.k3s.io/helm: apiVersion helm.cattle.io/v1, kube-system); `bootstrap: true` runs it on
    the host network before a CNI exists. An external cloud provider leaves every node tainted
    node.cloudprovider.kubernetes.io/uninitialized=true:NoSchedule until the controller
    initialises it (kubernetes.io/docs/tasks/administer-cluster/running-cloud-controller),
    so the controller tolerates it and runs on the servers (node-role.kubernetes.io/control-plane=true)."""
    r, templates = nodes
    for stack_id, template in templates.items():
        if _role(template) == "agent":
            continue
        # The manifests travel in the server's bundle (k3s_infra/bootstrap/bundle.py).
        charts = [d for p, t in node_files(template).items() if p.startswith(MANIFESTS + "/")
                  for d in yaml.safe_load_all(t) if d and d.get("spec", {}).get("chart") == "aws-cloud-controller-manager"]
        (chart,) = charts
        assert (chart["apiVersion"], chart["kind"], chart["metadata"]["namespace"]) == (
            "helm.cattle.io/v1", "HelmChart", "kube-system")
        # The helm controller names the release after the HelmChart: a new name in a later
        # version would install a second controller beside the first.
        assert chart["metadata"]["name"] == "aws-cloud-controller-manager"
        assert chart["spec"]["bootstrap"] is True and chart["spec"]["targetNamespace"] == "kube-system"
        values = yaml.safe_load(chart["spec"]["valuesContent"])
        assert {"--cloud-provider=aws", "--configure-cloud-routes=false",
                f"--cluster-name={r.env.stack_name}"} <= set(values["args"])
        # Kubernetes component flags are lower-case kebab names with a value; the controller
        # exits on an unknown one (pflag), so a malformed flag is a controller that never starts.
        assert all(re.fullmatch(r"--[a-z][a-z0-9-]*=\S+", a) for a in values["args"]), values["args"]
        assert values["hostNetworking"] is True
        assert values["nodeSelector"] == {"node-role.kubernetes.io/control-plane": "true"}
        # Operator Equal (the default) needs the taint's value; Exists ignores it.
        assert all(t.get("operator", "Equal") == "Equal" or (t["operator"] == "Exists" and "value" not in t)
                   for t in values["tolerations"])
        tolerated = {(t["key"], t.get("value"), t["effect"]) for t in values["tolerations"]}
        assert {("node.cloudprovider.kubernetes.io/uninitialized", "true", "NoSchedule"),
                ("node-role.kubernetes.io/control-plane", None, "NoSchedule"),
                ("node.kubernetes.io/not-ready", None, "NoSchedule")} <= tolerated


def test_the_controllers_cluster_name_is_the_one_its_permissions_and_tags_use(nodes):
    """cloud-provider-aws tags what it creates kubernetes.io/cluster/<cluster-name>; the node
    role's conditions and the node security groups' `shared` tag must use that same name."""
    r, templates = nodes
    first = next(t for t in templates.values() if _role(t) == "server-init")
    chart = next(d for p, t in node_files(first).items() if p.startswith(MANIFESTS + "/")
                 for d in yaml.safe_load_all(t) if d and d.get("spec", {}).get("chart") == "aws-cloud-controller-manager")
    (name,) = [a.split("=", 1)[1] for a in yaml.safe_load(chart["spec"]["valuesContent"])["args"]
               if a.startswith("--cluster-name=")]
    security = r.templates["Security"]["Resources"]
    shared = [t for res in security.values() if res["Type"] == "AWS::EC2::SecurityGroup"
              for t in res["Properties"].get("Tags", []) if t["Key"].startswith("kubernetes.io/cluster/")]
    assert shared and {t["Key"] for t in shared} == {f"kubernetes.io/cluster/{name}"}
    assert f"kubernetes.io/cluster/{name}" in str(r.templates["NodeIam"])


def test_cloud_controller_values_are_keys_of_its_chart_version():
    env = load_environment("prod")
    manifest = k3s_config.cloud_controller_manifest(env)
    keys = _paths(yaml.safe_load(manifest["spec"]["valuesContent"]))
    assert _unverified(keys, CCM_VERIFIED_KEYS[manifest["spec"]["version"]]) == set()
