"""What stands in the way of a stack delete that CloudFormation does not know about.

The AWS cloud controller manager the servers run creates, for each Kubernetes Service of
type LoadBalancer, an NLB (elbv2) with its target groups or a classic ELB, and security
groups; it tags each ``kubernetes.io/cluster/<cluster>`` = ``owned``
(naming.ccm_cluster_tag_key). No stack holds them: they keep a managed network's subnets
and VPC from deleting (DependencyViolation) and outlive the cluster in a VPC brought by the
user. ``find`` lists them, ``delete`` removes them before the stack delete (and again
before a retry, and after: a controller still running may make new ones). Only ``owned``
under exactly this cluster's key, never a resource CloudFormation made: ``shared`` marks
what the cluster uses without owning it, another key another cluster.

Functions return data; they never print (teardown.destroy reports them as progress)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import ClientError

from k3s_infra.model import naming

OWNED = "owned"
CLOUDFORMATION_TAGS = "aws:cloudformation:"  # on every resource a stack made
# DescribeTags takes at most 20 resources a call, elbv2 (ResourceArns) and classic
# (LoadBalancerNames) alike: https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DescribeTags.html,
# https://docs.aws.amazon.com/elasticloadbalancing/2012-06-01/APIReference/API_DescribeTags.html
TAGS_PER_CALL = 20
# A deleted load balancer leaves the API at once but keeps its network interfaces a while:
# its security group answers DependencyViolation until they are gone. The cloud controller
# itself retries that for 600 s, every 10 s (kubernetes/cloud-provider-aws,
# pkg/providers/v1/aws.go EnsureLoadBalancerDeleted: "the load balancer disappears from the API
# immediately, but it is still deleting in the background").
WAIT_SECONDS = 600.0
POLL_SECONDS = 10.0
REPORT_SECONDS = 60.0  # on_wait at least this often while nothing changes
# "in use" answers worth waiting out; any other error leaves the resource to the report.
# DeleteSecurityGroup fails with DependencyViolation while the group "is associated with an
# instance or network interface, is referenced by another security group in the same VPC, or
# has a VPC association": https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteSecurityGroup.html
IN_USE = ("DependencyViolation", "InvalidGroup.InUse", "ResourceInUse",
          "deleting")  # ours: a load balancer still listed after its delete
GONE = ("LoadBalancerNotFound", "TargetGroupNotFound", "InvalidGroup.NotFound", "InvalidPermission.NotFound")

LOAD_BALANCER, CLASSIC_LOAD_BALANCER, TARGET_GROUP, SECURITY_GROUP = (
    "load balancer", "classic load balancer", "target group", "security group")
ORDER = (LOAD_BALANCER, CLASSIC_LOAD_BALANCER, TARGET_GROUP, SECURITY_GROUP)  # the order of deletion



@dataclass(frozen=True)
class Leftover:
    """One resource the cloud controller made for this cluster."""
    kind: str  # one of ORDER
    id: str    # ARN (load balancer, target group), name (classic load balancer), group ID
    name: str
    vpc_id: str = ""
    referenced_by: tuple[str, ...] = ()  # security groups whose rules name this one (revoked before its delete)


@dataclass(frozen=True)
class Leftovers:
    tag: str  # "kubernetes.io/cluster/<cluster>=owned": what they carry
    resources: tuple[Leftover, ...] = ()  # in the order of deletion

    def __bool__(self) -> bool:
        return bool(self.resources)

    def __len__(self) -> int:
        return len(self.resources)

    def of(self, kind: str) -> tuple[Leftover, ...]:
        return tuple(r for r in self.resources if r.kind == kind)


@dataclass(frozen=True)
class Cleanup:
    """How ``delete`` ended."""
    deleted: tuple[Leftover, ...]
    failed: tuple[tuple[Leftover, str], ...]  # not deleted, with the last error code
    revoked: tuple[tuple[str, str], ...]      # (group holding the rule, group the rule named)
    waited: float                             # seconds spent waiting for "in use" to pass


def tag_key(env) -> str:
    return naming.ccm_cluster_tag_key(env)


def _owned(tags: list[dict], key: str) -> bool:
    values = {t.get("Key"): t.get("Value") for t in tags}
    return values.get(key) == OWNED and not any(str(k).startswith(CLOUDFORMATION_TAGS) for k in values)


def _descriptions(describe_tags, field: str, batch: list[str]) -> list[dict]:
    """DescribeTags of a batch; one resource deleted meanwhile fails the whole call
    (LoadBalancerNotFound, TargetGroupNotFound): then one at a time, skipping what is gone."""
    try:
        return describe_tags(**{field: batch})["TagDescriptions"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in GONE:
            raise
        if len(batch) == 1:
            return []
    return [d for one in batch for d in _descriptions(describe_tags, field, [one])]


def _tagged(describe_tags, ids: list[str], field: str, id_key: str, key: str) -> set[str]:
    """The ids among ``ids`` tagged ``key`` = owned, asked TAGS_PER_CALL at a time."""
    owned = set()
    for start in range(0, len(ids), TAGS_PER_CALL):
        for description in _descriptions(describe_tags, field, ids[start:start + TAGS_PER_CALL]):
            if _owned(description.get("Tags", []), key):
                owned.add(description[id_key])
    return owned


def find(aws, vpc_id: str | None = None) -> Leftovers:
    """This cluster's controller-made resources in the environment's region (in ``vpc_id`` when
    given: a cluster of another tool with the same name elsewhere is never touched), in deletion order."""
    key = tag_key(aws.env)
    elbv2, elb, ec2 = aws.elbv2, aws.client("elb"), aws.ec2
    found: list[Leftover] = []

    def ours(item: dict, field: str) -> bool:
        return vpc_id is None or item.get(field) == vpc_id

    balancers = {b["LoadBalancerArn"]: b for page in elbv2.get_paginator("describe_load_balancers").paginate()
                 for b in page["LoadBalancers"] if ours(b, "VpcId")}
    owned = _tagged(elbv2.describe_tags, list(balancers), "ResourceArns", "ResourceArn", key)
    found += [Leftover(LOAD_BALANCER, arn, b["LoadBalancerName"], b.get("VpcId", ""))
              for arn, b in balancers.items() if arn in owned]
    classic = {b["LoadBalancerName"]: b for page in elb.get_paginator("describe_load_balancers").paginate()
               for b in page["LoadBalancerDescriptions"] if ours(b, "VPCId")}
    owned = _tagged(elb.describe_tags, list(classic), "LoadBalancerNames", "LoadBalancerName", key)
    found += [Leftover(CLASSIC_LOAD_BALANCER, name, name, b.get("VPCId", "")) for name, b in classic.items()
              if name in owned]
    targets = {t["TargetGroupArn"]: t for page in elbv2.get_paginator("describe_target_groups").paginate()
               for t in page["TargetGroups"] if ours(t, "VpcId")}
    owned = _tagged(elbv2.describe_tags, list(targets), "ResourceArns", "ResourceArn", key)
    found += [Leftover(TARGET_GROUP, arn, t["TargetGroupName"], t.get("VpcId", ""))
              for arn, t in targets.items() if arn in owned]
    pages = ec2.get_paginator("describe_security_groups").paginate(
        Filters=[{"Name": f"tag:{key}", "Values": [OWNED]}, *([{"Name": "vpc-id", "Values": [vpc_id]}] if vpc_id else [])])
    groups = [g for page in pages for g in page["SecurityGroups"] if _owned(g.get("Tags", []), key)]
    references = _references(ec2, {g["GroupId"]: g.get("VpcId", "") for g in groups})
    found += [Leftover(SECURITY_GROUP, g["GroupId"], g.get("GroupName", ""), g.get("VpcId", ""),
                       tuple(sorted({holder for holder, _, _ in references.get(g["GroupId"], [])})))
              for g in groups]
    return Leftovers(f"{key}={OWNED}", tuple(found))


def _references(ec2, groups: dict[str, str]) -> dict[str, list[tuple[str, str, dict]]]:
    """Group ID -> (group holding the rule, "ingress"/"egress", the permission naming it) for the
    rules of OTHER groups in the same VPC that name one of ``groups`` (ID -> VPC): the node groups
    the controller opened to its load balancer's group. They keep that group from deleting."""
    result: dict[str, list[tuple[str, str, dict]]] = {}
    for vpc in sorted({v for v in groups.values() if v}):
        pages = ec2.get_paginator("describe_security_groups").paginate(Filters=[{"Name": "vpc-id", "Values": [vpc]}])
        for holder in (g for page in pages for g in page["SecurityGroups"]):
            for direction, permissions in (("ingress", holder.get("IpPermissions", [])),
                                           ("egress", holder.get("IpPermissionsEgress", []))):
                for permission in permissions:
                    for pair in permission.get("UserIdGroupPairs", []):
                        named = pair.get("GroupId")
                        if named in groups and named != holder["GroupId"]:
                            rule = {k: permission[k] for k in ("IpProtocol", "FromPort", "ToPort") if k in permission}
                            result.setdefault(named, []).append(
                                (holder["GroupId"], direction, {**rule, "UserIdGroupPairs": [{"GroupId": named}]}))
    return result


def _attempt(call, **kwargs) -> str | None:
    """None once done (or already gone), else the error code."""
    try:
        call(**kwargs)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "?")
        return None if code in GONE else code
    return None


@dataclass
class _Clock:
    start: float
    deadline: float
    poll: float
    now: Callable[[], float]
    sleep: Callable[[float], None]
    on_wait: Callable[[tuple[Leftover, ...], float], None]
    _last: tuple = ()
    _reported: float = float("-inf")

    def waited(self) -> float:
        return self.now() - self.start

    def until_done(self, items: tuple[Leftover, ...], attempt: Callable[[Leftover], str | None], *,
                   retry: bool = True) -> tuple[list[Leftover], list[tuple[Leftover, str]]]:
        """Attempt each item, again while any answers "in use" (until the deadline); returns
        (done, [(item, last error code)])."""
        pending: dict[Leftover, str] = dict.fromkeys(items, "")
        done, failed = [], []
        while pending:
            for item in list(pending):
                code = attempt(item)
                if code is None:
                    del pending[item]
                    done.append(item)
                elif code not in IN_USE:
                    del pending[item]
                    failed.append((item, code))
                else:
                    pending[item] = code
            if not pending or not retry or self.now() >= self.deadline:
                break
            if tuple(pending) != self._last or self.now() - self._reported >= REPORT_SECONDS:
                self._last, self._reported = tuple(pending), self.now()
                self.on_wait(tuple(pending), self.waited())
            self.sleep(self.poll)
        return done, failed + list(pending.items())


def delete(aws, found: Leftovers, *, timeout: float = WAIT_SECONDS, poll: float = POLL_SECONDS,
           on_wait: Callable[[tuple[Leftover, ...], float], None] = lambda pending, waited: None,
           now: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> Cleanup:
    """Delete ``found`` in dependency order: the load balancers (their listeners go with them)
    and wait until they are gone, then the target groups, then the security groups, each after
    revoking the rules of other groups that name it, retrying "in use" for at most ``timeout``
    seconds in all. ``on_wait(pending, waited)`` when a step waits (when what it waits for
    changes, and every REPORT_SECONDS)."""
    elbv2, elb, ec2 = aws.elbv2, aws.client("elb"), aws.ec2
    start = now()
    clock = _Clock(start, start + timeout, poll, now, sleep, on_wait)
    deleted, failed, revoked = [], [], []

    def remove(item: Leftover) -> str | None:
        if item.kind == LOAD_BALANCER:
            return _attempt(elbv2.delete_load_balancer, LoadBalancerArn=item.id)
        return _attempt(elb.delete_load_balancer, LoadBalancerName=item.id)

    def gone(item: Leftover) -> str | None:  # as the elbv2 waiter load_balancers_deleted polls
        try:
            if item.kind == LOAD_BALANCER:
                elbv2.describe_load_balancers(LoadBalancerArns=[item.id])
            else:
                elb.describe_load_balancers(LoadBalancerNames=[item.id])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "?")
            return None if code in GONE else code
        return "deleting"

    balancers = found.of(LOAD_BALANCER) + found.of(CLASSIC_LOAD_BALANCER)
    asked, refused = clock.until_done(balancers, remove)
    done, lingering = clock.until_done(tuple(asked), gone)
    deleted += done
    failed += refused + lingering
    # What a load balancer that stays still uses stays in use: one attempt each, no waiting.
    retry = not failed
    done, stuck = clock.until_done(found.of(TARGET_GROUP), lambda item: _attempt(
        elbv2.delete_target_group, TargetGroupArn=item.id), retry=retry)
    deleted += done
    failed += stuck

    def remove_group(item: Leftover) -> str | None:
        for holder, direction, rule in _references(ec2, {item.id: item.vpc_id}).get(item.id, []):
            revoke = ec2.revoke_security_group_ingress if direction == "ingress" else ec2.revoke_security_group_egress
            try:
                revoke(GroupId=holder, IpPermissions=[rule])
            except ClientError:  # gone meanwhile; else the delete below answers why
                continue
            revoked.append((holder, item.id))
        return _attempt(ec2.delete_security_group, GroupId=item.id)

    done, stuck = clock.until_done(found.of(SECURITY_GROUP), remove_group, retry=retry)
    deleted += done
    failed += stuck
    return Cleanup(tuple(deleted), tuple(failed), tuple(dict.fromkeys(revoked)), clock.waited())
