"""k3s_infra: typed CloudFormation nested stacks for a highly available K3s cluster.

    from k3s_infra import load_environment, build_templates
    env = load_environment("dev")
    templates = build_templates(env)   # {"Root": Template, "Security": Template, ...}
"""

from k3s_infra.config import ConfigError, Environment, load_environment
from k3s_infra.render import build_templates, render

__all__ = ["ConfigError", "Environment", "build_templates", "load_environment", "render"]
