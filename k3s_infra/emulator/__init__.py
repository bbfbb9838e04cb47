"""The AWS emulator behind ``k3s-infra emulator``: moto's server on 127.0.0.1 with the shims
that fill moto 5.2.5's CloudFormation gaps as real AWS behaves (shims*.py), stand-ins for what
the nodes' boot does (nodes.py) and a VPC routed like one on AWS (seed.py).

moto comes with the ``[emulator]`` extra. Only the emulator command (k3s_infra/cli/emulator.py)
and the tests' harness import this package, never render or deploy (setup.cfg [importlinter]);
this module and state.py import no moto."""

from __future__ import annotations

MOTO_VERSION = "5.2.5"  # the version the shims were written against and are checked with
INSTALL = (f"pip install 'k3s-infra[emulator]' (in a clone: pip install -e '.[emulator]'; "
           f"with pipx: pipx inject k3s-infra 'moto[server]=={MOTO_VERSION}')")


class MissingExtra(Exception):
    """moto's server is not installed, or not at the version the shims are written for."""


def require() -> None:
    """Raise MissingExtra (one line naming the extra) unless moto[server] MOTO_VERSION imports."""
    try:
        import moto
        import moto.server  # noqa: F401 - the server's own dependencies (flask, ...)
    except ImportError as exc:
        missing = f" ({exc.name} is not installed)" if exc.name else ""
        raise MissingExtra(f"the emulator needs moto[server] {MOTO_VERSION}{missing}: {INSTALL}") from None
    if moto.__version__ != MOTO_VERSION:
        raise MissingExtra(f"the emulator's shims are written for moto {MOTO_VERSION}, found {moto.__version__}: "
                           f"{INSTALL}") from None
