"""Which CPU architecture an EC2 instance type runs, and which one an image is built for.

One table, read top to bottom, first match wins. EC2 names a type
``<family><generation><attributes>.<size>``; a ``g`` among the attributes means
AWS Graviton (arm64): m7g, c7gn, r6gd, t4g, im4gn, is4gen, x2gd, g5g. The first
Graviton family, a1, has no attribute letter. ``g`` as the family itself (g4dn,
g6e: NVIDIA GPUs on x86_64) is not an attribute.
https://docs.aws.amazon.com/ec2/latest/instancetypes/instance-type-names.html
"""

from __future__ import annotations

import re

# (pattern of the part before the '.', architecture)
INSTANCE_FAMILIES: tuple[tuple[str, str], ...] = (
    (r"^a1$", "arm64"),
    (r"^mac[0-9]+-m[0-9a-z]*$", "arm64"),  # Apple silicon Macs
    (r"^[a-z]+[0-9]+[a-z-]*g[a-z-]*$", "arm64"),  # a Graviton attribute after the generation
    (r".*", "x86_64"),
)

# The architectures nodes run, in the order the root declares their image parameters.
ARCHITECTURES: tuple[str, ...] = ("x86_64", "arm64")

# K3s names architectures as Go does (its release assets and sha256sum-<name>.txt, and the
# k3s.binary_sha256 keys): k3s-io/k3s install.sh, setup_verify_arch.
K3S_NAMES: dict[str, str] = {"x86_64": "amd64", "arm64": "arm64"}

# Words in an image's SSM parameter path that name its architecture (a path naming none,
# e.g. a company's /golden/k3s-node, names none: pre-flight checks the image itself).
IMAGE_ARCHITECTURES: tuple[tuple[str, str], ...] = (
    ("arm64", "arm64"), ("aarch64", "arm64"), ("x86_64", "x86_64"), ("amd64", "x86_64"))


def of_instance_type(instance_type: str) -> str:
    family = instance_type.split(".", 1)[0]
    return next(arch for pattern, arch in INSTANCE_FAMILIES if re.match(pattern, family))


def of_instance_types(instance_types: list[str]) -> set[str]:
    return {of_instance_type(t) for t in instance_types}


def named_by_path(path: str) -> str | None:
    """The architecture an SSM path names, None when it names none."""
    return next((arch for word, arch in IMAGE_ARCHITECTURES if word in path.lower()), None)


def of_servers(env) -> str:
    return of_instance_type(env.servers.instance_type)


def of_pool(pool) -> str:
    """A pool runs one image, so one architecture (config refuses a mixed pool)."""
    return of_instance_type(pool.instance_types[0])


def in_use(env) -> list[str]:
    """Architectures of the servers and pools, in ARCHITECTURES order."""
    used = {of_servers(env)} | {of_pool(p) for p in env.agent_pools}
    return [arch for arch in ARCHITECTURES if arch in used]
