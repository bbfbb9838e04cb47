"""Where commands may write: never over something they did not write themselves.

``render --out DIR`` writes into a new or empty folder, or into one holding a
previous render (recognised by its manifest), replacing only that render's
files. ``graph``/``schema --out FILE`` write a new file or replace a previous
output of the same command, never a folder, a device or the environment file.
Every refusal is an ``OutputError`` (exit 2) saying why; nothing is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from k3s_infra.config.text import shown


class OutputError(Exception):
    """An output path the command refuses to write to."""


# A render's manifest is a few hundred bytes per stack; anything near this is not one.
MANIFEST_LIMIT = 1024 * 1024


class _NotARender(Exception):
    """Why a folder's manifest is not one a previous render wrote."""


def _plain_name(name: object) -> bool:
    return isinstance(name, str) and bool(name) and "/" not in name and "\\" not in name \
        and name not in (".", "..") and not name.startswith(".") and name.isprintable()


def _read_manifest(path: Path) -> bytes:
    """The manifest's bytes: a regular file (not a symlink, FIFO or device: opened without
    following links and without blocking) of at most MANIFEST_LIMIT bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _NotARender("is a symbolic link" if path.is_symlink() else f"cannot be read: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _NotARender("is not a regular file")
        if info.st_size > MANIFEST_LIMIT:
            raise _NotARender(f"is larger than {MANIFEST_LIMIT // 1024} KiB")
        chunks, size = [], 0
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
            size += len(chunk)
            if size > MANIFEST_LIMIT:  # grew since fstat
                raise _NotARender(f"is larger than {MANIFEST_LIMIT // 1024} KiB")
        return b"".join(chunks)
    except OSError as exc:
        raise _NotARender(f"cannot be read: {exc.strerror}") from None
    finally:
        os.close(fd)


def _manifest_names(folder: Path, manifest: str, ours: Callable[[str], bool]) -> set[str]:
    """The files the render that wrote ``folder/manifest`` lists; ``_NotARender`` says why
    the manifest is not one (unreadable, not the shape render writes, or naming a file
    that ``ours`` says render never writes: a path, a hidden file, the environment file)."""
    try:
        data = json.loads(_read_manifest(folder / manifest).decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _NotARender("is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("environment"), str):
        raise _NotARender("is not a render manifest")
    children = data.get("children")
    if not isinstance(children, list) or not all(isinstance(child, dict) for child in children):
        raise _NotARender("has no list of children")
    # The root of a first create (render writes it beside the root) is listed when present.
    names = [data.get("root"), *([data["create_root"]] if "create_root" in data else []),
             *(child.get("file") for child in children)]
    for name in names:
        if not (_plain_name(name) and ours(name)):
            raise _NotARender(f"lists {shown(name)}, not a file name render writes")
    return set(names)


def vouched(folder: Path, manifest: str, names: Iterable[str]) -> list[str]:
    """The ``names`` whose content is what the manifest in ``folder`` records for them (its
    ``sha256``, the root's ``root_sha256``): only those may be removed. A file the manifest names
    without a digest, or whose bytes differ, is not known to be render's and is left alone."""
    try:
        data = json.loads(_read_manifest(folder / manifest).decode("utf-8"))
    except (OSError, ValueError, RecursionError, _NotARender):
        return []
    digests = {child.get("file"): child.get("sha256") for child in data.get("children", []) if isinstance(child, dict)}
    digests[data.get("root")] = data.get("root_sha256")
    if "create_root" in data:
        digests[data["create_root"]] = data.get("create_root_sha256")
    found = []
    for name in names:
        try:
            actual = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        except OSError:
            continue
        if isinstance(digests.get(name), str) and digests[name] == actual:
            found.append(name)
    return found


def previous_render_files(folder: Path, manifest: str, ours: Callable[[str], bool] = _plain_name) -> set[str] | None:
    """The files a previous render wrote into ``folder`` (manifest included), or None
    when ``folder`` holds no render manifest."""
    try:
        return _manifest_names(folder, manifest, ours) | {manifest}
    except _NotARender:
        return None


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


def _is_protected(path: Path, protected: Iterable[Path]) -> bool:
    for other in protected:
        try:
            if os.path.samefile(path, other):
                return True
        except OSError:  # a protected path that does not exist
            continue
    return False


def check_render_folder(out_dir: Path, manifest: str, protected: Iterable[Path] = (), *,
                        writes: Iterable[str] = (), ours: Callable[[str], bool] = _plain_name) -> set[str]:
    """Files of a previous render in ``out_dir`` ({} for a new or empty folder); refuses
    anything else. ``protected`` files (the environment file) are never written over.

    A manifest is trusted only as far as render itself could have written it: every name
    it lists must be a plain file name that ``ours`` accepts (the template names render
    writes), else the folder holds no previous render. The files that are then replaced
    (``writes``, the new render's names) or removed (the previous render's other files)
    must be regular files (not symlinks, folders or devices) that the manifest lists and
    that are not a ``protected`` file. Nothing is touched before every check passed."""
    protected = tuple(protected)
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
    try:
        previous = _manifest_names(out_dir, manifest, ours) | {manifest}
    except _NotARender as exc:
        detail = f"{manifest} {exc}" if manifest in entries else manifest
        raise OutputError(f"{out_dir}: the folder is not empty and holds no previous render ({detail}); "
                          "refusing to write into it") from None
    for name in sorted((previous | {manifest, *writes}) & entries):
        target = out_dir / name
        if not stat.S_ISREG(target.lstat().st_mode):
            raise OutputError(f"{target}: is not a regular file; refusing to replace or remove it")
        if name not in previous:
            raise OutputError(f"{target}: exists and is not listed in {manifest} (render did not write it); "
                              "refusing to overwrite it")
        if _is_protected(target, protected):
            raise OutputError(f"{target}: is the environment file itself; refusing to replace or remove it")
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


def write_file(out: Path, text: str, *, mode: int = 0o644, durable: bool = False) -> None:
    """Write ``text`` to a temporary file beside ``out`` (created 0600 by mkstemp, then given
    ``mode``), then rename it into place; ``durable`` flushes it to disk first. A failure
    (disk full, permissions) removes the temporary file and names ``out``: the temporary
    name is never the user's to see."""
    try:
        handle, staging = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    except OSError as exc:
        raise error_about(exc, out) from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        os.chmod(staging, mode)
        os.replace(staging, out)
    except BaseException as exc:
        Path(staging).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise error_about(exc, out) from None
        raise


def error_about(exc: OSError, path: Path) -> OSError:
    """``exc`` about ``path`` (the CLI prints an OSError's file name): for failures on a
    temporary file the user never named."""
    if exc.errno is None:
        return exc
    return type(exc)(exc.errno, exc.strerror, str(path))
