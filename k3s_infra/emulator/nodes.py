"""Stand-ins for what the nodes' boot does on AWS, in the emulator. moto 5.2.5 launches an auto
scaling group's instances but runs nothing on them: no K3s starts, no node tags itself ready,
the first server publishes no kubeconfig, no SSM Agent registers or runs a command.

``apply()``: each instance a group launches tags itself ``k3s-infra:ready=true`` at once, as the
last step of boot.sh does on AWS (deploy waits for it: k3s_infra/deploy/readiness.py);
``silent()`` launches nodes whose boot never gets there, and ``finish_boot`` is that boot
finishing later (the tests use both).

``apply_kubeconfig()`` (the emulator command only; the tests check the unpublished secret
too): once a change set has run, a running first server whose kubeconfig secret is still
unpublished publishes one, as first_server.sh publish_kubeconfig does once K3s is ready. Its
inputs are the node's own: the boot.env its user data carries (the secret's ARN, the API
host, or the SSM fact holding the API load balancer's DNS name), and its cluster tag. No K3s
ran, so it holds no credentials: its certificate fields say so, and an extension names it a
stand-in. The product is unchanged.

``apply_ssm_agent()``: the SSM Agent Amazon Linux 2023 ships, as far as `k3s-infra snapshots
create` and `shell` see it. moto 5.2.5 does not model DescribeInstanceInformation: every running
instance answers Online there. Its SendCommand records every invocation Success and runs
nothing: a Run Command of `k3s etcd-snapshot save --name NAME` on a server (its boot.env names
the snapshot bucket and folder) writes the object K3s would upload,
``<folder>/<NAME>-<instance ID>-<unix seconds>`` (k3s-io/k3s pkg/etcd/snapshot.go Snapshot, the
node named by its instance ID as boot.sh names it), its body saying it is a stand-in; on an
instance without them (an agent) the invocation fails, as `save` does with no etcd there.

A Run Command of the drill's read of its restored cluster (k3s_infra/deploy/drill_api.py
read_script: K3s's kubectl listing the Nodes and getting the marker ConfigMap) on a server is
answered with what that script prints (``nodes N``, ``<name> True`` per server asked for,
``marker``, the ConfigMap's JSON or nothing, ``end``) as the stand-in knows the restored cluster:
the running instances of the server's own cluster (its cluster tag) as Ready Nodes, and what the
newest object in its snapshot folder holds if it is a ``snapshot_body`` (the Nodes it names,
not Ready, and its ConfigMaps). No K3s, no restore: a snapshot with no marker in it answers none,
so a drill of it fails here as on AWS."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import Iterator

import yaml

MOTO_VERSION = "5.2.5"
# The contract with boot.sh (its last step): the key and value a node tags its instance with.
READY = {"k3s-infra:ready": "true"}
# Where cloud-init writes the boot settings (k3s_infra/bootstrap BOOT_ENV) and the tag naming
# the instance's cluster (k3s_infra/model/naming.py CLUSTER_TAG).
BOOT_ENV = "/etc/k3s-infra/boot.env"
CLUSTER_TAG = "k3s-infra:cluster"
STAND_IN = ("published by the k3s-infra emulator's stand-in for the first server: no K3s runs in the "
            "emulator, nothing answers at this server and these credentials are not real")

_state = {"booting": True}
_lock = threading.Lock()


def apply() -> None:
    """Wrap moto's launch of group instances (FakeAutoScalingGroup.replace_autoscaling_group_instances)."""
    from moto.autoscaling.models import FakeAutoScalingGroup

    launch = FakeAutoScalingGroup.replace_autoscaling_group_instances
    if getattr(launch, "node_boot_stand_in", False):
        return

    def replace_autoscaling_group_instances(self, count_needed, propagated_tags):
        before = {state.instance.id for state in self.instance_states}
        launch(self, count_needed, propagated_tags)
        new = [state.instance.id for state in self.instance_states if state.instance.id not in before]
        with _lock:
            booting = _state["booting"]
        if new and booting:
            self.autoscaling_backend.ec2_backend.create_tags(new, dict(READY))

    replace_autoscaling_group_instances.node_boot_stand_in = True
    FakeAutoScalingGroup.replace_autoscaling_group_instances = replace_autoscaling_group_instances


@contextlib.contextmanager
def silent() -> Iterator[None]:
    """Nodes launched meanwhile never report ready (their boot does not finish)."""
    with _lock:
        _state["booting"] = False
    try:
        yield
    finally:
        with _lock:
            _state["booting"] = True


def finish_boot(ec2, instance_ids: list[str]) -> None:
    """What boot.sh's last step asks EC2 for (through the test's own client)."""
    ec2.create_tags(Resources=instance_ids, Tags=[{"Key": k, "Value": v} for k, v in READY.items()])


def apply_kubeconfig() -> None:
    """After every executed change set, publish the kubeconfig of each first server that has not
    (after the whole change set: the API's DNS name is a fact a later nested stack writes)."""
    from moto.cloudformation import models as cfn_models

    execute = cfn_models.CloudFormationBackend.execute_change_set
    if getattr(execute, "kubeconfig_stand_in", False):
        return

    def execute_change_set(self, change_set_name, stack_name=None):
        result = execute(self, change_set_name, stack_name)
        try:
            publish_kubeconfigs(self.account_id, self.region_name)
        except Exception:  # noqa: BLE001 - a stand-in's failure is no failure of the change set
            logging.getLogger(__name__).exception("the first server's stand-in published no kubeconfig")
        return result

    execute_change_set.kubeconfig_stand_in = True
    cfn_models.CloudFormationBackend.execute_change_set = execute_change_set


SNAPSHOT_SAVE = re.compile(r"\betcd-snapshot save --name (\S+)")
# The drill's read (deploy/drill_api.py read_script): the servers it asks for, the ConfigMap it gets.
DRILL_SERVERS = re.compile(r"grep -E '\^\(([a-z0-9|-]+)\) '")
DRILL_CONFIGMAP = re.compile(r"kubectl .*get configmap (\S+) -n (\S+) --ignore-not-found -o json")
AGENT_STAND_IN = "stand-in"  # AgentVersion of the stand-in agent


def apply_ssm_agent() -> None:
    """Register the stand-in agent (module docstring) with moto's SSM."""
    from moto.core.responses import ActionResult
    from moto.ec2.models import ec2_backends
    from moto.ssm import models as ssm_models
    from moto.ssm.responses import SimpleSystemManagerResponse

    send = ssm_models.SimpleSystemManagerBackend.send_command
    if getattr(send, "ssm_agent_stand_in", False):
        return

    def describe_instance_information(self):
        filters = self._get_param("Filters", []) or []
        wanted = next((f["Values"] for f in filters if f.get("Key") == "InstanceIds"), None)
        ec2 = ec2_backends[self.current_account][self.region]
        found = [{"InstanceId": i.id, "PingStatus": "Online", "PlatformType": "Linux", "ResourceType": "EC2Instance",
                  "AgentVersion": AGENT_STAND_IN} for i in ec2.all_instances()
                 if i.state == "running" and (wanted is None or i.id in wanted)]
        return ActionResult({"InstanceInformationList": found})

    def send_command(self, **kwargs):
        requested = list(kwargs.get("instance_ids") or [])
        command = send(self, **kwargs)
        if requested and not kwargs.get("targets"):
            # moto 5.2.5 also adds every instance of the region when Targets is empty (Command.
            # _get_instance_ids_from_targets, no filter); AWS runs it on the InstanceIds given.
            command.instance_ids = [i for i in command.instance_ids if i in requested]
            command.invocations = [i for i in command.invocations if i["InstanceId"] in requested]
            command.completed_count = command.target_count = len(command.instance_ids)
        lines = (kwargs.get("parameters") or {}).get("commands", [])
        saved = next((m for line in lines if (m := SNAPSHOT_SAVE.search(line))), None)
        if kwargs.get("document_name") == "AWS-RunShellScript" and saved:
            for invocation in command.invocations:
                if not _save_snapshot(self.account_id, self.region_name, invocation["InstanceId"], saved[1]):
                    invocation.update(Status="Failed", StatusDetails="Failed", ResponseCode=1,
                                      StandardErrorContent="etcd database not found (the emulator's stand-in: no "
                                                           "etcd on this instance)")
        script = "\n".join(lines)
        servers, configmap = DRILL_SERVERS.search(script), DRILL_CONFIGMAP.search(script)
        if kwargs.get("document_name") == "AWS-RunShellScript" and servers and configmap:
            for invocation in command.invocations:
                invocation.update(ResponseCode=0, StandardOutputContent=_read_restored(
                    self.account_id, self.region_name, invocation["InstanceId"], servers[1].split("|"),
                    f"{configmap[2]}/{configmap[1]}"))
        return command

    send_command.ssm_agent_stand_in = True
    ssm_models.SimpleSystemManagerBackend.send_command = send_command
    SimpleSystemManagerResponse.describe_instance_information = describe_instance_information


def _save_snapshot(account_id: str, region: str, instance_id: str, name: str) -> bool:
    """Upload a stand-in snapshot as the server ``instance_id`` would; False when it has no snapshot settings."""
    from moto.ec2.models import ec2_backends
    from moto.s3.models import s3_backends

    settings = instance_settings(ec2_backends[account_id][region].get_instance(instance_id))
    bucket, folder = settings.get("SNAPSHOT_BUCKET"), settings.get("SNAPSHOT_FOLDER")
    if not bucket or not folder:
        return False
    s3_backends[account_id]["aws"].put_object(bucket, f"{folder}/{name}-{instance_id}-{int(time.time())}",
                                              f"not an etcd snapshot: {STAND_IN}".encode())
    return True


def snapshot_body(nodes: list[str], configmaps: dict[str, dict[str, str]]) -> bytes:
    """A stand-in snapshot's content: no etcd database, the Nodes (names) and ConfigMaps
    (``namespace/name`` -> data) the stand-in's restored cluster holds."""
    return json.dumps({"stand-in": f"not an etcd snapshot: {STAND_IN}", "nodes": nodes,
                       "configmaps": configmaps}).encode()


def _read_restored(account_id: str, region: str, instance_id: str, asked: list[str], configmap: str) -> str:
    """What the drill's read prints on ``instance_id`` (module docstring)."""
    from moto.ec2.models import ec2_backends
    from moto.s3.models import FakeKey, s3_backends

    ec2 = ec2_backends[account_id][region]
    instance = ec2.get_instance(instance_id)
    settings = instance_settings(instance)
    cluster = ec2.tags.get(instance_id, {}).get(CLUSTER_TAG)
    ours = sorted(i.id for i in ec2.all_instances()
                  if i.state == "running" and ec2.tags.get(i.id, {}).get(CLUSTER_TAG) == cluster)
    restored: dict = {}
    bucket = s3_backends[account_id]["aws"].buckets.get(settings.get("SNAPSHOT_BUCKET", ""))
    folder = f"{settings.get('SNAPSHOT_FOLDER', '')}/"
    found = [k for name, k in (bucket.keys.items() if bucket else [])
             if name.startswith(folder) and isinstance(k, FakeKey)]  # not a delete marker
    if found:
        try:
            restored = json.loads(max(found, key=lambda k: k.last_modified).value)
        except ValueError:
            restored = {}  # not a snapshot_body: a snapshot of nothing the stand-in can read
    nodes = [n for n in restored.get("nodes", []) if n not in ours]
    data = restored.get("configmaps", {}).get(configmap)
    namespace, name = configmap.split("/", 1)
    document = "" if data is None else json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data},
        indent=4)
    return "\n".join([f"nodes {len(ours) + len(nodes)}", *(f"{i} True" for i in ours if i in asked), "marker",
                      *([document] if document else []), "end"]) + "\n"


def instance_settings(instance) -> dict[str, str]:
    """boot_settings of a moto instance (its user_data: moto's Base64EncodedString, or None)."""
    return boot_settings(instance.user_data.as_bytes() if instance.user_data is not None else None)


def boot_settings(user_data: str | bytes | None) -> dict[str, str]:
    """The KEY='value' lines of boot.env in an instance's user data (base64 cloud-config)."""
    if not user_data:
        return {}
    try:
        document = yaml.safe_load(base64.b64decode(user_data, validate=True).decode())
    except (ValueError, yaml.YAMLError):
        return {}
    files = document.get("write_files", []) if isinstance(document, dict) else []
    text = next((f.get("content", "") for f in files if isinstance(f, dict) and f.get("path") == BOOT_ENV), "")
    return dict(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)='([^']*)'$", text, re.MULTILINE))


def publish_kubeconfigs(account_id: str, region: str) -> list[str]:
    """Publish the kubeconfig of every running first server whose secret holds no kubeconfig yet
    (its generated placeholder). Returns the secrets' ARNs it wrote."""
    from moto.ec2.models import ec2_backends
    from moto.secretsmanager.models import secretsmanager_backends
    from moto.ssm.models import ssm_backends

    ec2 = ec2_backends[account_id][region]
    secrets = secretsmanager_backends[account_id][region]
    written = []
    for instance in ec2.all_instances():
        settings = instance_settings(instance)
        arn = settings.get("KUBECONFIG_SECRET")
        if instance.state != "running" or not arn or not secrets._is_valid_identifier(arn):
            continue
        current = secrets.get_secret_value(arn, None, None).get("SecretString") or ""
        if _is_kubeconfig(current):
            continue
        host = _bind_facts(settings.get("KUBECONFIG_HOST", ""), settings.get("FACTS", ""),
                           ssm_backends[account_id][region])
        if host is None:
            continue  # its fact is not written yet: a later change set publishes it
        cluster = ec2.tags.get(instance.id, {}).get(CLUSTER_TAG, "default")
        text = kubeconfig(cluster, f"https://{host}:{settings.get('API_PORT', '6443')}")
        secrets.put_secret_value(arn, text, None, None, ["AWSCURRENT"])
        written.append(arn)
    return written


def _bind_facts(value: str, facts: str, ssm) -> str | None:
    """``value`` with each fact marker replaced by its SSM parameter's value, as boot.sh
    bind_facts does; None while one is missing."""
    for fact in facts.split():
        name, parameter = fact.split("=", 1)
        marker = f"@@K3S_INFRA_FACT_{name}@@"
        if marker in value:
            found = ssm.get_parameter(parameter)
            if found is None:
                return None
            value = value.replace(marker, found.value)
    return None if re.search(r"@@K3S_INFRA_FACT_\w+@@", value) or not value else value


def _is_kubeconfig(text: str) -> bool:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    return isinstance(doc, dict) and isinstance(doc.get("clusters"), list)


def kubeconfig(cluster: str, server: str) -> str:
    """K3s's /etc/rancher/k3s/k3s.yaml as publish_kubeconfig rewrites it (server: the API
    endpoint; cluster, user and context: the cluster's name), with no real credentials."""
    fake = base64.b64encode(f"not a certificate: {STAND_IN}".encode()).decode()
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {
            "server": server, "certificate-authority-data": fake,
            "extensions": [{"name": "k3s-infra-emulator", "extension": {"stand-in": STAND_IN}}]}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": cluster}}],
        "current-context": cluster,
        "users": [{"name": cluster, "user": {"client-certificate-data": fake, "client-key-data": fake}}],
    }, sort_keys=False)
