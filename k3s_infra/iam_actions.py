"""IAM actions as data, including the only ones allowed on Resource "*".

Everything touching a secret, a bucket, a parameter or a key is scoped to that
resource in ``components/iam.py``. The actions below are granted on "*"
because AWS offers no resource-level scoping for them (Describe*/List calls)
or because the AWS cloud controller must act on resources it creates at run
time for Kubernetes Services (load balancers, their security groups); each
group is taken from the cloud-provider-aws documented policy.
"""

from awacs import autoscaling, ec2, elasticloadbalancing as elb
from awacs.aws import Action

# Read-only discovery: no resource-level permissions exist for these.
DESCRIBE_ONLY: tuple[Action, ...] = (
    autoscaling.DescribeAutoScalingGroups,
    autoscaling.DescribeAutoScalingInstances,  # the node termination handler
    autoscaling.DescribeLaunchConfigurations,
    autoscaling.DescribeTags,
    ec2.DescribeInstances,
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
# exists to name before it runs, so they are granted on "*".
CLOUD_CONTROLLER_CREATE: tuple[Action, ...] = (
    ec2.CreateSecurityGroup,
    elb.CreateLoadBalancer,
    elb.CreateLoadBalancerListeners,
    elb.CreateLoadBalancerPolicy,
    elb.CreateListener,
    elb.CreateTargetGroup,
    elb.AddTags,
)

# Changes to what the controller made (or to the nodes): granted on "*" but only for
# resources tagged kubernetes.io/cluster/<cluster> (see components/iam.py).
CLOUD_CONTROLLER_ON_CLUSTER_RESOURCES: tuple[Action, ...] = (
    ec2.AuthorizeSecurityGroupIngress,
    ec2.RevokeSecurityGroupIngress,
    ec2.DeleteSecurityGroup,
    ec2.ModifyInstanceAttribute,
    elb.ApplySecurityGroupsToLoadBalancer,
    elb.AttachLoadBalancerToSubnets,
    elb.ConfigureHealthCheck,
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
# (see components/iam.py autoscaler_statements), never on "*".
AUTOSCALER_SCALING: tuple[Action, ...] = (
    autoscaling.SetDesiredCapacity,
    autoscaling.TerminateInstanceInAutoScalingGroup,
)

# Every action allowed on "*" without a tag condition, for the policy-walking test.
UNSCOPED: frozenset[str] = frozenset(a.JSONrepr() for a in DESCRIBE_ONLY + CLOUD_CONTROLLER_CREATE
                                     + AUTOSCALER_DESCRIBE)
