"""The one error type of a user mistake in an environment file."""

from __future__ import annotations

from k3s_infra.config.text import printable


class ConfigError(Exception):
    """A user mistake in an environment file: file, field path and problem."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        # One line per problem, bounded, control characters escaped (see config_text).
        source = printable(source, keep_newlines=False)
        lines = [printable(f"{path}: {message}" if path else message, limit=500, keep_newlines=False)
                 for path, message in problems]
        if len(lines) == 1:
            super().__init__(f"{source}: {lines[0]}")
        else:
            super().__init__(f"{source}: {len(lines)} problems\n" + "\n".join(f"  {line}" for line in lines))
