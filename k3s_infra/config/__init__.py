"""Configuration: one environment file (and its ``extends`` chain) in, one validated,
frozen ``Environment`` out. The bottom layer: it imports nothing else of k3s_infra.

    model        the environment and its smaller sections (Environment, Servers, Deploy, ...)
    k3s, pools   the k3s section; agent pools and the names they become
    network      the network and API sections
    addons       the add-ons section; catalog: the add-ons k3s-infra knows, as data
    types        field shapes and the strict base model; rules: what a pattern cannot say
    cron         K3s snapshot schedules as robfig/cron v3 reads them
    defaults     default versions and settings, as data
    loading      files -> merged document -> Environment, errors naming file and field
    suggest      'did you mean' for a mistyped key or environment name
    yaml_load    safe YAML reading; yaml_text: the one YAML writer
    text         user text shown safely, names spelled as identifiers
    architectures  instance-type architectures
    secret_scan  secrets in values and fields (findings); secret_shapes: what one looks like
"""

from k3s_infra.config.addons import AddOn, Addons
from k3s_infra.config.errors import ConfigError
from k3s_infra.config.k3s import EtcdSnapshots, K3s
from k3s_infra.config.loading import (
    ENVIRONMENTS_DIR,
    available_environments,
    environment_file,
    environment_folders,
    environment_names,
    environments_folder,
    json_schema,
    load_environment,
    read_document,
    validate,
)
from k3s_infra.config.model import Deploy, Environment, Nodes, Servers
from k3s_infra.config.network import Api, Network, Subnet
from k3s_infra.config.pools import AgentPool, Spot

__all__ = [
    "ENVIRONMENTS_DIR", "AddOn", "Addons", "AgentPool", "Api", "ConfigError", "Deploy", "Environment",
    "EtcdSnapshots", "K3s", "Network", "Nodes", "Servers", "Spot", "Subnet", "available_environments",
    "environment_file", "environment_folders", "environment_names", "environments_folder", "json_schema", "load_environment", "read_document", "validate",
]
