"""The one error type of a user mistake in an environment file.

No line of one can echo a credential: every file name, field path and message is passed
through ``secret_shapes.redact`` (the shapes the secret scanner refuses), whichever check
built it and however it quoted the value (a pattern mismatch, a duplicate YAML key, a
parent file name, a type error)."""

from __future__ import annotations

from k3s_infra.config.secret_shapes import redact
from k3s_infra.config.text import printable


class ConfigError(Exception):
    """A user mistake in an environment file: file, field path and problem; ``hint`` (what was
    not done, a way past) follows on a line of its own and is not counted as a problem."""

    def __init__(self, source: str, problems: list[tuple[str, str]], hint: str = ""):
        self.source = redact(source)
        self.problems = [(redact(path), redact(message)) for path, message in problems]
        self.hint = redact(hint)
        # One line per problem, bounded, control characters escaped (see config_text).
        source = printable(self.source, keep_newlines=False)
        lines = [printable(f"{path}: {message}" if path else message, limit=500, keep_newlines=False)
                 for path, message in self.problems]
        text = f"{source}: {lines[0]}" if len(lines) == 1 else \
            f"{source}: {len(lines)} problems\n" + "\n".join(f"  {line}" for line in lines)
        super().__init__(text + (f"\n{printable(self.hint, limit=500, keep_newlines=False)}" if hint else ""))
