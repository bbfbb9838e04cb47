"""The node script: its parts as nodes get them.

Every node runs the core (boot_lib.sh, then boot.sh: settings, retries, the signal, the
boot's phases and the entry point), carried in its user data. Servers also source the
parts of their bundle (bundle.py: first_server.sh on the first server, addons.sh and
watch.sh on every server). Full-line comments are for readers of the repository: nodes get the parts
without them (a third of the script's bytes).
"""

from __future__ import annotations

import functools
from importlib import resources

CORE = ("boot_lib.sh", "boot.sh")
EXTRAS = ("addons.sh", "first_server.sh", "watch.sh")


@functools.lru_cache(maxsize=8)
def part(name: str) -> str:
    """One part without its full-line comments (a #! line stays)."""
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    kept = [line for n, line in enumerate(text.splitlines())
            if not line.lstrip().startswith("#") or (n == 0 and line.startswith("#!"))]
    return "\n".join(kept) + "\n"


@functools.lru_cache(maxsize=1)  # every node stack embeds it
def boot_script() -> str:
    """The core as the user data carries it (/usr/local/sbin/k3s-infra-boot)."""
    return "".join(part(name) for name in CORE)


def whole() -> str:
    """Every part, comments and all, in the order a server has them defined (the library,
    the bundle's parts, the boot with its entry point): for reading and checking the script
    as one (shellcheck)."""
    names = (CORE[0], *EXTRAS, CORE[1])
    return "".join(resources.files(__package__).joinpath(name).read_text(encoding="utf-8") for name in names)
