"""How long things take, as data: the inputs of the time-to-ready model (model/timing.py).

Each number says where it comes from and whether it is an estimate. ``estimate=False``
only where a primary source fixes it: an AWS page that states it, a CloudFormation
resource provider's code that waits it, or our own settings (the boot's waits, the API
target group's health check). Everything else is an estimate from reports, to be replaced by
measurements: ``deploy`` prints the real time per wave (deploy/timings.py), and docs/performance.md
("How long it takes") says how far to trust the model. Seconds, for a create unless named.
"""

from __future__ import annotations

from dataclasses import dataclass

from k3s_infra.model import naming


@dataclass(frozen=True)
class Duration:
    seconds: float
    source: str
    estimate: bool = True


# --- CloudFormation resources (create) ----------------------------------------------

NESTED_STACK = Duration(15, "CloudFormation's own work around a nested stack: create it, start its resources, "
                            "report it complete to the parent")
UNLISTED = Duration(10, "a resource type not listed here: one create call and its read-back")

_QUICK = "one create call and its read-back"
RESOURCES: dict[str, Duration] = {
    "AWS::EC2::SecurityGroup": Duration(5, _QUICK),
    "AWS::EC2::SecurityGroupIngress": Duration(5, _QUICK),
    "AWS::EC2::SecurityGroupEgress": Duration(5, _QUICK),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": Duration(
        180, "a new load balancer is 'provisioning' until 'active' (docs.aws.amazon.com/elasticloadbalancing/latest/"
             "network/network-load-balancers.html, Load balancer state); 'very normal that it takes > 2 minutes' "
             "(kubernetes/kubernetes#44695); boto3's LoadBalancerAvailable waiter polls 15 s up to 40 times"),
    "AWS::ElasticLoadBalancingV2::TargetGroup": Duration(5, _QUICK),
    "AWS::ElasticLoadBalancingV2::Listener": Duration(5, _QUICK),
    "AWS::CloudFront::Distribution": Duration(
        300, "CloudFormation waits for status Deployed, 'propagated to all CloudFront edge locations' (CloudFront "
             "API, Distribution.Status); AWS: changes 'reliably' deployed 'within 5 minutes' since 2020 "
             "(aws.amazon.com/blogs/networking-and-content-delivery/slashing-cloudfront-change-propagation-times-"
             "in-2020-recent-changes-and-looking-forward/); older notes say 15-20 min (hashicorp/terraform#8749)"),
    "AWS::CloudFront::OriginAccessControl": Duration(5, _QUICK),
    "AWS::IAM::Role": Duration(15, "IAM is eventually consistent; CloudFormation waits a little after CreateRole"),
    "AWS::IAM::InstanceProfile": Duration(
        120, "'a hardcoded 2min delay for creating instance profiles' (AWS forum answer quoted in "
             "hashicorp/terraform#15341): CloudFormation waits until EC2 can use the profile"),
    "AWS::IAM::OIDCProvider": Duration(5, _QUICK),
    "AWS::IAM::ManagedPolicy": Duration(10, _QUICK),
    "AWS::IAM::Policy": Duration(10, _QUICK),
    "AWS::KMS::Key": Duration(
        120, "the resource provider waits CALLBACK_DELAY_SECONDS = 60 after CreateKey 'for key state to propagate' "
             "and 60 more before it reports (aws-cloudformation/aws-cloudformation-resource-providers-kms "
             "key/.../CreateHandler.java, BaseHandlerStd.propagate): a lower bound", estimate=False),
    "AWS::KMS::Alias": Duration(5, "the alias provider's CreateHandler calls CreateAlias and succeeds "
                                   "(aws-cloudformation-resource-providers-kms alias/.../CreateHandler.java)",
                                estimate=False),
    "AWS::SecretsManager::Secret": Duration(10, "CreateSecret (with a generated value) and its read-back"),
    "AWS::S3::Bucket": Duration(20, "CreateBucket plus its encryption, versioning and public access settings"),
    "AWS::S3::BucketPolicy": Duration(5, _QUICK),
    "AWS::SQS::Queue": Duration(30, "CreateQueue: 'wait at least one second after the queue is created to be able "
                                    "to use the queue' (SQS API Reference, CreateQueue); CloudFormation then reads "
                                    "its attributes back"),
    "AWS::SQS::QueuePolicy": Duration(10, _QUICK),
    "AWS::Events::Rule": Duration(10, _QUICK),
    "AWS::SSM::Parameter": Duration(5, _QUICK),
    "AWS::EC2::LaunchTemplate": Duration(5, _QUICK),
    "AWS::AutoScaling::AutoScalingGroup": Duration(10, "the group itself; its instances are the boot phases below"),
    "AWS::EC2::VPC": Duration(15, "CreateVpc plus DNS attributes"),
    "AWS::EC2::Subnet": Duration(5, _QUICK),
    "AWS::EC2::InternetGateway": Duration(5, _QUICK),
    "AWS::EC2::VPCGatewayAttachment": Duration(15, "attach the gateway and wait until it is attached"),
    "AWS::EC2::RouteTable": Duration(5, _QUICK),
    "AWS::EC2::Route": Duration(5, _QUICK),
    "AWS::EC2::SubnetRouteTableAssociation": Duration(5, _QUICK),
    "AWS::EC2::EIP": Duration(5, _QUICK),
    "AWS::EC2::NatGateway": Duration(
        120, "the resource provider stabilizes until DescribeNatGateways says available "
             "(aws-cloudformation/aws-cloudformation-resource-providers-ec2-nat-gateway CreateHandler."
             "isCreateStabilized); how long that takes is an estimate"),
    "AWS::EC2::VPCEndpoint": Duration(10, "a gateway endpoint: route table entries only"),
    "AWS::EC2::VPCEndpoint/Interface": Duration(120, "an interface endpoint is available once its network "
                                                     "interfaces exist in every subnet and its private DNS name "
                                                     "resolves"),
    "AWS::Logs::LogGroup": Duration(5, _QUICK),
    "AWS::EC2::FlowLog": Duration(10, _QUICK),
}
# Resource types whose time depends on one property: (type, property) -> the key of RESOURCES
# for "<type>/<value>" (a value not listed falls back to the plain type).
VARIANTS: dict[str, str] = {"AWS::EC2::VPCEndpoint": "VpcEndpointType"}


# --- a node's boot (bootstrap/boot.sh), from the launch to the signal -------------------

BOOT_SANDBOX = ("the boot sandbox (tests/boot) runs boot.sh whole with stubbed AWS calls in about 1.2 s "
                "(setup.cfg [mutmut] note): the script's own work is negligible, the time is its calls and waits")
BOOT: dict[str, Duration] = {
    "launch": Duration(45, "Auto Scaling's launch activity, EC2 pending -> running (~5 s) and Amazon Linux booting "
                           "to cloud-init's runcmd (~20 s to sshd in ec2-boot-bench: daemonology.net/blog/"
                           "2021-08-12-EC2-boot-time-benchmarking.html); encrypted EBS launches slower "
                           "(martysweet.co.uk/ec2-launch-times, 2023)"),
    "in_service": Duration(30, "from the launch to InService, when Auto Scaling registers the instance with its "
                               "target groups (no launch lifecycle hook)"),
    "discover": Duration(5, "IMDS, the server bundle and add-on values from SSM and Secrets Manager: " + BOOT_SANDBOX),
    "packages": Duration(45, "dnf install of the add-ons' node packages (PACKAGES in boot.env) from the Amazon "
                             "Linux repositories; only where an add-on needs them"),
    "tokens": Duration(3, "the token secrets from Secrets Manager"),
    "k3s_start_server": Duration(45, "K3s server start: embedded etcd, API server and controllers, the air-gap "
                                     "images imported into containerd"),
    "k3s_start_agent": Duration(20, "k3s-agent start: containerd, kubelet, the air-gap images imported"),
    "server_ready": Duration(20, "/readyz answers and the server's Node exists (boot.sh server_ready)"),
    "agent_ready": Duration(15, "the kubelet is healthy and its Node exists (boot.sh agent_ready)"),
    "publish": Duration(10, "the first server publishes the issuer documents, webhook TLS, the secure tokens, the "
                            "kubeconfig and the cluster-state marker: a handful of AWS calls"),
    "etcd_join": Duration(30, "one joining server's etcd learner: added, caught up (little data at create) and "
                              "promoted by K3s's leader on a 15 s tick (k3s-io/k3s pkg/etcd/etcd.go "
                              "manageTickerTime); etcd admits one learner at a time (etcd-io/etcd server/etcdserver/"
                              "api/membership DefaultMaxLearners = 1), so joiners join one after another"),
    "signal": Duration(15, "the ready tag, SignalResource and CloudFormation counting the signals"),
    "restore": Duration(45, "a lone server's replacement: the newest snapshot from S3 and etcd's cluster-reset "
                            "before K3s starts"),
    "drain": Duration(60, "a node leaving in a roll: the termination handler drains it (pods' default 30 s grace) "
                          "while its target deregisters (deregistration_delay 30 s on the API target group)"),
    "pre_termination_snapshot": Duration(30, "a lone server's on-demand etcd snapshot to S3 before it terminates "
                                             "(bootstrap/watch.sh; bounded by SNAPSHOT_TIMEOUT_SECONDS)"),
}

# What a node downloads before K3s starts: the K3s binary and the air-gap images, from the
# cluster's artifact bucket in the region (github.com/k3s-io/k3s/releases: `k3s` ~70 MB,
# `k3s-airgap-images-<arch>.tar.zst` ~150-200 MB).
ARTIFACT_MEGABYTES = Duration(70 + 175, "the K3s binary (~70 MB) and the compressed air-gap images (~150-200 MB) "
                                        "of a K3s release (github.com/k3s-io/k3s/releases)")
DOWNLOAD_MEGABYTES_PER_SECOND = Duration(50, "one S3 GET stream inside the region, well under an instance's "
                                             "network bandwidth (e.g. t3.small 'up to 5 Gbps')")

# A target registered with a Network Load Balancer gets traffic once its registration is
# done and its health checks passed (interval x healthy threshold, read from the rendered
# target group). Nodes reach the API through the load balancer (boot.sh prepare_join).
NLB_TARGET_REGISTRATION = Duration(
    180, "'When you register a new target to your Network Load Balancer, it is expected to take between 3-5 "
         "minutes (180 and 300 seconds)' (AWS support, quoted in kubernetes-sigs/aws-load-balancer-controller#1834, "
         "2023; awsdocs/elb-network-load-balancers-user-guide#11 saw ~120 s): the lower end")
# Network Load Balancer health check defaults, when a target group sets none.
DEFAULT_HEALTH_CHECK = (30, 3)

# Facts a node reads at boot that are not CloudFormation edges: the node's stack launches
# and installs as soon as its CloudFormation dependencies are complete, but K3s starts only
# once these stacks are complete (a stack without nodes: the fact exists) or ready (a node
# stack: its K3s answers through the API load balancer). Keys are stack IDs, or a prefix
# and "*" for the agent pools. Mirrors the boot: the first server reads the API load
# balancer's name and the issuer URL; joining servers and agents join through the first
# server's API with the token it publishes.
LATE_BOUND: dict[str, tuple[str, ...]] = {
    naming.STACK_SERVER_INIT: (naming.STACK_API_ENDPOINT, naming.STACK_IDENTITY),
    naming.STACK_SERVERS: (naming.STACK_API_ENDPOINT, naming.STACK_IDENTITY, naming.STACK_SERVER_INIT),
    naming.agent_pool_stack("") + "*": (naming.STACK_API_ENDPOINT, naming.STACK_SERVER_INIT),
}
