"""The stand-in for the nodes' boot lives in k3s_infra/emulator/nodes.py (the emulator command
uses it too). The tests' moto server applies its ready tags (``apply``) and its SSM Agent
(``apply_ssm_agent``): its kubeconfig stand-in stays off, so tests see the secret unpublished
until they publish it."""

from k3s_infra.emulator.nodes import READY, apply, apply_ssm_agent, finish_boot, silent  # noqa: F401
