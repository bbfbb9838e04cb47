"""The cluster's model, derived from a validated environment: the facts every layer
above shares, each with one home.

    naming    logical IDs, physical names and tags
    roles     the node roles (first server, joining servers, agents) and their facts
    ports     the K3s port table, the source of every security-group rule
    placement which zones each server group gets, so no zone holds a majority of the servers
    outputs   names of stack Outputs and Parameters (the interface between stacks)
    limits    CloudFormation, EC2 and tag limits, checked at render
    addons    the enabled add-ons: their HelmCharts, secrets and boot-time values
    timing    the time-to-ready model: critical path of a create or a roll (durations: its numbers,
              node_timing: a node group's boot); imported by the CLI only, never on the render path
"""
