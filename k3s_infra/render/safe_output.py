"""Where commands may write: never over something they did not write themselves.

``render --out DIR`` writes into a new or empty folder, or into one holding a
previous render (recognised by its manifest), replacing only that render's
files. ``graph``/``schema --out FILE`` write a new file or replace a previous
output of the same command, never a folder, a device or the environment file.
Every refusal is an ``OutputError`` (exit 2) saying why; nothing is written.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path


class OutputError(Exception):
    """An output path the command refuses to write to."""


def _plain_name(name: object) -> bool:
    return isinstance(name, str) and bool(name) and "/" not in name and "\\" not in name \
        and name not in (".", "..") and not name.startswith(".")


def previous_render_files(folder: Path, manifest: str) -> set[str] | None:
    """The files a previous render wrote into ``folder`` (manifest included), or None
    when ``folder`` holds no render manifest."""
    try:
        data = json.loads((folder / manifest).read_text(encoding="utf-8"))
        names = {data["root"], *(child["file"] for child in data["children"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(data.get("environment"), str) or not all(_plain_name(n) for n in names):
        return None
    return names | {manifest}


def check_parent(path: Path, create: bool) -> Path:
    """The existing, writable folder ``path`` will be written in (made when ``create``)."""
    parent = path.parent
    if create and not parent.exists():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{path}: cannot create the folder {parent}: {exc.strerror}") from None
    if not parent.is_dir():
        raise OutputError(f"{path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: the folder {parent} is not writable")
    return parent


def check_render_folder(out_dir: Path, manifest: str, protected: Iterable[Path] = ()) -> set[str]:
    """Files of a previous render in ``out_dir`` ({} for a new or empty folder); refuses
    anything else. ``protected`` files (the environment file) are never written over."""
    resolved = out_dir.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise OutputError(f"{out_dir}: is the current folder or one above it; name a folder for the templates")
    for path in protected:
        if resolved == path.resolve():
            raise OutputError(f"{out_dir}: is the environment file itself")
    if not out_dir.exists() and not out_dir.is_symlink():
        return set()
    if out_dir.is_symlink() or not out_dir.is_dir():
        raise OutputError(f"{out_dir}: exists and is not a folder; name a new or empty folder")
    try:
        entries = {entry.name for entry in os.scandir(out_dir)}
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot list the folder: {exc.strerror}") from None
    if not entries:
        return set()
    previous = previous_render_files(out_dir, manifest)
    if previous is None:
        raise OutputError(f"{out_dir}: the folder is not empty and holds no previous render ({manifest}); "
                          "refusing to write into it")
    return previous & entries


def check_output_file(out: Path, looks_like: Callable[[str], bool], protected: Iterable[Path] = ()) -> None:
    """Refuse a folder, a device, the environment file, or an existing file that is not a
    previous output of this command (``looks_like`` judges its first 4 KiB)."""
    for path in protected:
        if out.exists() and path.exists() and os.path.samefile(out, path):
            raise OutputError(f"{out}: is the environment file itself")
    check_parent(out, create=False)
    if not out.exists() and not out.is_symlink():
        return
    mode = out.lstat().st_mode
    if not stat.S_ISREG(mode):
        raise OutputError(f"{out}: exists and is not a regular file")
    try:
        with open(out, "rb") as handle:
            head = handle.read(4096).decode("utf-8", "replace")
    except OSError as exc:
        raise OutputError(f"{out}: cannot read the existing file: {exc.strerror}") from None
    if head and not looks_like(head):
        raise OutputError(f"{out}: exists and is not an output of this command; refusing to overwrite it")


def write_file(out: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``out``, then rename it into place."""
    handle, staging = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(staging, 0o644)
        os.replace(staging, out)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
