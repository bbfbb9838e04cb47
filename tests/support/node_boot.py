"""The stand-in for the nodes' boot lives in k3s_infra/emulator/nodes.py (the emulator command
uses it too). The tests' moto server applies only its ready tags (``apply``): its kubeconfig
stand-in stays off, so tests see the secret unpublished until they publish it."""

from k3s_infra.emulator.nodes import READY, apply, finish_boot, silent  # noqa: F401
