"""k3s-infra graph: the architecture of an environment as Mermaid, DOT or SVG."""

from __future__ import annotations

import argparse
import shutil
import subprocess

from k3s_infra.cli import UsageError, load
from k3s_infra.cli.output import emit
from k3s_infra.render import build_templates, graph


def run(args: argparse.Namespace) -> int:
    env = load(args)
    templates = {stack_id: t.to_dict() for stack_id, t in build_templates(env).items()}
    d = graph.diagram(env, templates)
    if args.format == "mermaid":
        text = graph.mermaid(d)
    elif args.format == "dot":
        text = graph.dot(d)
    else:
        if not shutil.which("dot"):
            raise UsageError("--format svg needs Graphviz (`dot`) on PATH; use --format mermaid or dot")
        text = subprocess.run(["dot", "-Tsvg"], input=graph.dot(d), capture_output=True, text=True,
                              check=True).stdout
    emit(text, args.out, _looks_like_graph, args.config)
    return 0


def _looks_like_graph(head: str) -> bool:
    """A previous ``graph`` output: Mermaid, DOT or Graphviz's SVG."""
    return head.lstrip().startswith(("flowchart", "graph", "digraph", "<?xml", "<svg", "<!DOCTYPE svg"))
