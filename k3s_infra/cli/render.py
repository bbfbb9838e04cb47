"""k3s-infra render: environment file -> build/<env>/ (root + children + manifest)."""

from __future__ import annotations

import argparse
from pathlib import Path

from k3s_infra.cli import load, source_of
from k3s_infra.cli.output import document, print_json, wants_json, write_rendering
from k3s_infra.config import ENVIRONMENTS_DIR
from k3s_infra.render import render


def run(args: argparse.Namespace) -> int:
    env = load(args)
    out = Path(args.out) if args.out else Path("build") / env.name
    rendering = render(env, args.format)
    # An explicit --out names a folder in an existing one; the default build/ is made.
    # The environment file is never replaced or removed, whichever folder --env read it from.
    protected = [Path(source_of(args))]
    if args.env:  # ./environments/NAME.yaml, or the shipped one when that is missing
        protected.append(ENVIRONMENTS_DIR / f"{args.env}.yaml")
    write_rendering(rendering, out, create_parents=not args.out, protected=tuple(protected))
    if wants_json(args):  # the manifest written beside the templates, plus where and how big
        sizes = {stack.file: len(stack.body) for stack in rendering.stacks}
        print_json(document("render", out=str(out.resolve()), manifest=rendering.manifest(), bytes=sizes))
        return 0
    width = max(len(s.file) for s in rendering.stacks)
    print(f"rendered {env.name} ({len(rendering.stacks)} templates) into {out}/")
    for stack in rendering.stacks:
        print(f"  {stack.file:<{width}}  {len(stack.body):>7,} bytes")
    return 0
