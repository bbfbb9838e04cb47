"""The EC2 and Auto Scaling part of the ``aws`` stub (aws_stub.py): the calls the node script
makes about instances and their groups. State: ``instances`` (instance ID -> EC2 state name;
``gone_after``: instance ID -> DescribeInstances calls left before it is terminated),
``groups`` (DescribeAutoScalingGroups' AutoScalingGroups, as AWS answers them),
``lifecycle_hooks`` (group name -> its hook names); what the node asks for is recorded in
``tags``, ``health_reports`` and ``lifecycle_actions``."""

# Code of the stub: the operations' synopses (CLI v2 reference pages, cited per entry).
FLEET_SYNOPSES = r"""
FLEET_PAGINATION = {"--starting-token", "--page-size", "--max-items"}
FLEET_SYNOPSES = {
    # https://awscli.amazonaws.com/v2/documentation/api/latest/reference/ec2/create-tags.html
    ("ec2", "create-tags"): ({"--resources", "--tags"}, set(), {"--dry-run", "--no-dry-run"}),
    # https://awscli.amazonaws.com/v2/documentation/api/latest/reference/ec2/describe-instances.html
    ("ec2", "describe-instances"): (set(), {"--instance-ids", "--filters", *FLEET_PAGINATION},
                                    {"--dry-run", "--no-dry-run"}),
    # https://awscli.amazonaws.com/v2/documentation/api/latest/reference/autoscaling/set-instance-health.html
    ("autoscaling", "set-instance-health"): ({"--instance-id", "--health-status"}, set(),
                                             {"--should-respect-grace-period", "--no-should-respect-grace-period"}),
    # https://awscli.amazonaws.com/v2/documentation/api/latest/reference/autoscaling/describe-auto-scaling-groups.html
    ("autoscaling", "describe-auto-scaling-groups"): (set(), {"--auto-scaling-group-names", "--filters",
                                                              *FLEET_PAGINATION},
                                                      {"--include-instances", "--no-include-instances"}),
    # https://awscli.amazonaws.com/v2/documentation/api/latest/reference/autoscaling/describe-auto-scaling-instances.html
    ("autoscaling", "describe-auto-scaling-instances"): (set(), {"--instance-ids", *FLEET_PAGINATION}, set()),
    # https://awscli.amazonaws.com/v2/documentation/api/latest/reference/autoscaling/complete-lifecycle-action.html
    # (LifecycleActionResult is required too: API_CompleteLifecycleAction.html)
    ("autoscaling", "complete-lifecycle-action"): ({"--lifecycle-hook-name", "--auto-scaling-group-name",
                                                    "--lifecycle-action-result"},
                                                   {"--lifecycle-action-token", "--instance-id"}, set()),
}
"""

FLEET_HANDLERS = r"""
def group_of(instance_id):
    for group in state["groups"]:
        for instance in group["Instances"]:
            if instance["InstanceId"] == instance_id:
                return group, instance
    return None, None
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateTags.html: a resource that
# does not exist is InvalidInstanceID.NotFound; the CLI prints nothing on success.
if (service, command) == ("ec2", "create-tags"):
    tags = [shorthand(tag) for tag in opts["--tags"]]
    for resource in opts["--resources"]:
        if resource not in state["instances"] or state["instances"][resource] == "terminated":
            fail("InvalidInstanceID.NotFound", f"The instance ID '{resource}' does not exist")
    for resource in opts["--resources"]:
        for tag in tags:
            state["tags"].append([resource, tag["Key"], tag.get("Value", "")])
    save()
    answer(None)
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstances.html: filters
# instance-id and instance-state-name (values OR'd, filters AND'd); an ID no filter matches is
# simply not listed (only --instance-ids answers InvalidInstanceID.NotFound). One reservation per
# instance, as a group launches them; state codes from API_InstanceState.html.
if (service, command) == ("ec2", "describe-instances"):
    codes = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}
    for gone, left in list(state["gone_after"].items()):  # the scenario's instances whose termination ends
        if left <= 0:
            state["instances"][gone] = "terminated"
            del state["gone_after"][gone]
        else:
            state["gone_after"][gone] = left - 1
    save()
    found = dict(state["instances"])
    for wanted in opts.get("--instance-ids", []):
        if wanted not in found:
            fail("InvalidInstanceID.NotFound", f"The instance ID '{wanted}' does not exist")
    if "--instance-ids" in opts:
        found = {i: s for i, s in found.items() if i in opts["--instance-ids"]}
    for item in opts.get("--filters", []):
        spec = shorthand(item, lists=("Values",))
        field = {"instance-id": 0, "instance-state-name": 1}.get(spec["Name"])
        if field is None:
            print(f"stub aws: filter {spec['Name']} is not modelled", file=sys.stderr); sys.exit(252)
        found = {i: s for i, s in found.items() if (i, s)[field] in spec.get("Values", [])}
    response = {"Reservations": [
        {"ReservationId": f"r-{i[2:]}", "OwnerId": "123456789012", "Groups": [],
         "Instances": [{"InstanceId": i, "InstanceType": "m6i.large", "ImageId": "ami-0123456789abcdef0",
                        "State": {"Code": codes[s], "Name": s},
                        "Placement": {"AvailabilityZone": state["zone"], "Tenancy": "default"}}]}
        for i, s in sorted(found.items())]}
    answer(response, [response])
# https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_SetInstanceHealth.html: the
# group then shows the instance with that health (DescribeAutoScalingGroups); an instance of
# no group is a ValidationError.
if (service, command) == ("autoscaling", "set-instance-health"):
    group, instance = group_of(opts["--instance-id"])
    if instance is None:
        fail("ValidationError", f"Instance Id not found - No instance(s) found with ID {opts['--instance-id']}")
    if opts["--health-status"] not in ("Healthy", "Unhealthy"):
        fail("ValidationError", f"Invalid health status {opts['--health-status']}")
    instance["HealthStatus"] = opts["--health-status"]
    state["health_reports"].append([opts["--instance-id"], opts["--health-status"],
                                    "--no-should-respect-grace-period" in opts]); save()
    answer(None)
# https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeAutoScalingGroups.html and
# API_Filter.html: filters tag:<key>, tag-key, tag-value (values OR'd, filters AND'd).
if (service, command) == ("autoscaling", "describe-auto-scaling-groups"):
    groups = state["groups"]
    if "--auto-scaling-group-names" in opts:
        groups = [g for g in groups if g["AutoScalingGroupName"] in opts["--auto-scaling-group-names"]]
    for item in opts.get("--filters", []):
        spec = shorthand(item, lists=("Values",))
        wanted = spec.get("Values", [])
        if spec["Name"].startswith("tag:"):
            match = lambda tag: tag["Key"] == spec["Name"][4:] and tag["Value"] in wanted
        elif spec["Name"] == "tag-key":
            match = lambda tag: tag["Key"] in wanted
        elif spec["Name"] == "tag-value":
            match = lambda tag: tag["Value"] in wanted
        else:
            fail("ValidationError", f"Filter name {spec['Name']} is not valid")
        groups = [g for g in groups if any(match(tag) for tag in g["Tags"])]
    response = {"AutoScalingGroups": groups}
    answer(response, [response])
# https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeAutoScalingInstances.html:
# instances of no group are left out, not an error.
if (service, command) == ("autoscaling", "describe-auto-scaling-instances"):
    listed = []
    for wanted in opts.get("--instance-ids", []):
        group, instance = group_of(wanted)
        if instance is not None:
            listed.append({"AutoScalingGroupName": group["AutoScalingGroupName"], **instance})
    response = {"AutoScalingInstances": listed}
    answer(response, [response])
# https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CompleteLifecycleAction.html:
# only an instance its group holds in a wait state, for one of the group's hooks
# (https://docs.aws.amazon.com/autoscaling/ec2/userguide/completing-lifecycle-hooks.html).
if (service, command) == ("autoscaling", "complete-lifecycle-action"):
    name, hook = opts["--auto-scaling-group-name"], opts["--lifecycle-hook-name"]
    if opts["--lifecycle-action-result"] not in ("CONTINUE", "ABANDON"):
        fail("ValidationError", "LifecycleActionResult must be CONTINUE or ABANDON")
    group, instance = group_of(opts.get("--instance-id"))
    if not any(g["AutoScalingGroupName"] == name for g in state["groups"]):
        fail("ValidationError", f"AutoScalingGroup name not found - AutoScalingGroup {name} not found")
    if (group is None or group["AutoScalingGroupName"] != name or hook not in state["lifecycle_hooks"].get(name, [])
            or not instance["LifecycleState"].endswith(":Wait")):
        fail("ValidationError", f"No active Lifecycle Action found with instance ID {opts.get('--instance-id')}")
    instance["LifecycleState"] = instance["LifecycleState"].replace(":Wait", ":Proceed")
    state["lifecycle_actions"].append([hook, name, opts["--instance-id"], opts["--lifecycle-action-result"]])
    save()
    answer(None)
"""
