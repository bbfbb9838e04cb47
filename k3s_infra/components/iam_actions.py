"""IAM actions as data, including the only ones allowed on Resource "*".

Everything touching a secret, a bucket, a parameter or a key is scoped to that
resource in ``components/iam.py``. The actions below are granted on "*"
because AWS offers no resource-level scoping for them (Describe*/List calls)
or because the AWS cloud controller must act on resources it creates at run
time for Kubernetes Services (load balancers, their security groups); each
group is taken from the cloud-provider-aws documented policy.
"""

from awacs import autoscaling, ec2, ec2messages, ssm, ssmmessages
from awacs import elasticloadbalancing as elb
from awacs.aws import Action

# Read-only discovery: no resource-level permissions exist for these.
DESCRIBE_ONLY: tuple[Action, ...] = (
    autoscaling.DescribeAutoScalingGroups,
    autoscaling.DescribeAutoScalingInstances,  # the servers' watch (its own group)
    autoscaling.DescribeLaunchConfigurations,
    autoscaling.DescribeTags,
    ec2.DescribeInstances,
    # kubernetes/cloud-provider-aws v1.33 docs/prerequisites.md: network-topology labels;
    # without it the controller only warns (pkg/resourcemanagers/topology.go).
    ec2.DescribeInstanceTopology,
    ec2.DescribeRegions,
    ec2.DescribeRouteTables,
    ec2.DescribeSecurityGroups,
    ec2.DescribeSubnets,
    ec2.DescribeVolumes,
    ec2.DescribeAvailabilityZones,
    ec2.DescribeVpcs,
    elb.DescribeLoadBalancers,
    elb.DescribeLoadBalancerAttributes,
    elb.DescribeListeners,
    elb.DescribeLoadBalancerPolicies,
    elb.DescribeTargetGroups,
    elb.DescribeTargetHealth,
)

# The cloud controller creates these for Services of type LoadBalancer; nothing
# exists to name before it runs, so they are granted on "*". Actions on an existing load
# balancer (its listeners, policies) are not here: they could change the API endpoint.
CLOUD_CONTROLLER_CREATE: tuple[Action, ...] = (
    ec2.CreateSecurityGroup,
    elb.CreateLoadBalancer,
    elb.CreateTargetGroup,
)

# Tagging, only what is being created (ec2:CreateAction / elasticloadbalancing:CreateAction)
# and only with the cluster tag set to `owned` (components/iam.py), never an existing, foreign
# resource. Every create call of kubernetes/cloud-provider-aws v1.33.0 (pkg/providers/v1) sends
# its tags (kubernetes.io/cluster/<cluster>=owned and the Service's additional tags, plus
# kubernetes.io/service-name on ELB resources): CreateSecurityGroup's TagSpecifications
# (aws.go ensureSecurityGroup), Tags on CreateLoadBalancer (aws_loadbalancer.go
# ensureLoadBalancer, ensureLoadBalancerv2), CreateTargetGroup (ensureTargetGroup) and
# CreateListener (createListenerV2). Tags in an ELB create call are authorized as
# elasticloadbalancing:AddTags with CreateAction = that call
# (ELB User Guide, "API permissions to tag resources during creation"; Service Authorization
# Reference, Elastic Load Balancing V2: CreateListener authorizes AddTags too).
CLOUD_CONTROLLER_TAG_ON_CREATE: dict[Action, tuple[str, ...]] = {
    ec2.CreateTags: ("CreateSecurityGroup",),
    elb.AddTags: ("CreateListener", "CreateLoadBalancer", "CreateTargetGroup"),
}

# Load balancer rules on the node security groups (tagged `shared` by CloudFormation, see
# naming.ccm_discovery_tags) and on the controller's own groups (`owned`).
CLOUD_CONTROLLER_NODE_INGRESS: tuple[Action, ...] = (
    ec2.AuthorizeSecurityGroupIngress,
    ec2.RevokeSecurityGroupIngress,
)

# Changes to what the controller made: granted on "*" but only for resources tagged
# kubernetes.io/cluster/<cluster> = owned, which CloudFormation never sets (components/iam.py).
# Not granted, though the cloud-provider-aws policy lists them: ec2:ModifyInstanceAttribute,
# ec2:CreateRoute, ec2:DeleteRoute (routes only, aws_routes.go; we run
# --configure-cloud-routes=false) and the EBS volume and KMS actions (the in-tree volume
# code is gone from the external controller). CreateListener is here: IAM authorizes it on the
# load balancer it adds to (Service Authorization Reference, Elastic Load Balancing V2, resource
# loadbalancer/net), which must be the controller's; the listener's own tags are AddTags above.
CLOUD_CONTROLLER_ON_CLUSTER_RESOURCES: tuple[Action, ...] = (
    ec2.DeleteSecurityGroup,
    elb.AddTags,
    elb.ApplySecurityGroupsToLoadBalancer,
    elb.AttachLoadBalancerToSubnets,
    elb.ConfigureHealthCheck,
    elb.CreateListener,
    elb.CreateLoadBalancerListeners,
    elb.CreateLoadBalancerPolicy,
    elb.DeleteListener,
    elb.DeleteLoadBalancer,
    elb.DeleteLoadBalancerListeners,
    elb.DeleteTargetGroup,
    elb.DeregisterInstancesFromLoadBalancer,
    elb.DeregisterTargets,
    elb.DetachLoadBalancerFromSubnets,
    elb.ModifyListener,
    elb.ModifyLoadBalancerAttributes,
    elb.ModifyTargetGroup,
    elb.RegisterInstancesWithLoadBalancer,
    elb.RegisterTargets,
    elb.SetLoadBalancerPoliciesForBackendServer,
    elb.SetLoadBalancerPoliciesOfListener,
)

# The cluster autoscaler's reads: the "Full Cluster Autoscaler Features Policy" of
# kubernetes/autoscaler cluster-autoscaler/cloudprovider/aws/README.md, without
# eks:DescribeNodegroup (EKS managed node groups only). None has resource-level scoping.
AUTOSCALER_DESCRIBE: tuple[Action, ...] = (
    autoscaling.DescribeAutoScalingGroups,
    autoscaling.DescribeAutoScalingInstances,
    autoscaling.DescribeLaunchConfigurations,
    autoscaling.DescribeScalingActivities,
    autoscaling.DescribeTags,
    ec2.DescribeImages,
    ec2.DescribeInstanceTypes,
    ec2.DescribeLaunchTemplateVersions,
    ec2.GetInstanceTypesFromInstanceRequirements,
)

# The autoscaler's writes: only on groups tagged with this cluster's discovery tag
# (see components/workload_iam.py autoscaler_statements), never on "*".
AUTOSCALER_SCALING: tuple[Action, ...] = (
    autoscaling.SetDesiredCapacity,
    autoscaling.TerminateInstanceInAutoScalingGroup,
)

# The SSM Agent's two message channels, from AmazonSSMManagedInstanceCore (its State Manager,
# Inventory, Patch and Distributor actions are left out: this cluster uses none). Neither
# service defines a resource type (Service Authorization Reference, "Amazon Message Gateway
# Service" and "Amazon Message Delivery Service"): "*" is the only resource they take.
# Session Manager opens sessions over ssmmessages; the agent also takes Run Command documents
# there when it can, else over ec2messages (AWS Systems Manager User Guide, "Reference:
# ec2messages, ssmmessages, and other API operations"; aws/amazon-ssm-agent RELEASENOTES.md
# 3.1.821.0 and 3.3.40.0). components/iam.py grants them per environment (node_access).
SSM_AGENT_SESSION_CHANNEL: tuple[Action, ...] = (
    ssmmessages.CreateControlChannel,
    ssmmessages.CreateDataChannel,
    ssmmessages.OpenControlChannel,
    ssmmessages.OpenDataChannel,
)
SSM_AGENT_COMMAND_CHANNEL: tuple[Action, ...] = (
    ec2messages.AcknowledgeMessage,
    ec2messages.DeleteMessage,
    ec2messages.FailMessage,
    ec2messages.GetEndpoint,
    ec2messages.GetMessages,
    ec2messages.SendReply,
)
# The agent's registration and heartbeat. The Service Authorization Reference lists two resource
# types for it (ec2 "instance", ssm "managed-instance") but no AWS source says which ARN IAM
# evaluates when an EC2 instance's agent calls, and a wrong guess leaves every node silently
# unregistered: "*", as AmazonSSMManagedInstanceCore and AmazonSSMManagedEC2InstanceDefaultPolicy
# grant it (AWS Managed Policy Reference). It only describes the calling instance to Systems Manager.
SSM_AGENT_REGISTRATION: tuple[Action, ...] = (ssm.UpdateInstanceInformation,)

# Every action allowed on "*" without a tag condition, for the policy-walking test: reads and
# creates, and the SSM Agent's channels and registration (writes, but only ever about the calling
# agent itself).
UNSCOPED: frozenset[str] = frozenset(a.JSONrepr() for a in DESCRIBE_ONLY + CLOUD_CONTROLLER_CREATE
                                     + AUTOSCALER_DESCRIBE)
AGENT_CHANNELS: frozenset[str] = frozenset(a.JSONrepr() for a in SSM_AGENT_SESSION_CHANNEL
                                           + SSM_AGENT_COMMAND_CHANNEL)
AGENT_REGISTRATION: frozenset[str] = frozenset(a.JSONrepr() for a in SSM_AGENT_REGISTRATION)
