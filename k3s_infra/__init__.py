"""k3s_infra: typed CloudFormation nested stacks for a highly available K3s cluster.

    from k3s_infra import load_environment, build_templates
    env = load_environment("dev")
    templates = build_templates(env)   # {"Root": Template, "Security": Template, ...}

Names are loaded on first use, so ``k3s-infra --help`` and the CLI's own start
stay cheap.
"""

from importlib import import_module

# The one place the version is written: setup.cfg reads it (version = attr: ...).
__version__ = "0.1.0"

_EXPORTS = {
    "ConfigError": "k3s_infra.config",
    "Environment": "k3s_infra.config",
    "load_environment": "k3s_infra.config",
    "build_templates": "k3s_infra.render",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'k3s_infra' has no attribute {name!r}")
