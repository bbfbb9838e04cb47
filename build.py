#!/usr/bin/env python3
"""Render an environment: python build.py --env dev [--out DIR] [--format yaml|json]."""

import sys

from k3s_infra.cli import entry

if __name__ == "__main__":
    entry(["render", *sys.argv[1:]])
