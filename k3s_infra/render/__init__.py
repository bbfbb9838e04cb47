"""Templates from an environment, serialised once, written atomically.

Rendering imports neither boto3 nor cfn-lint: it is pure config -> troposphere
-> text. Child templates get content-addressed URLs in the artifact bucket,
so the root changes exactly when a child does.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from troposphere import Template

from k3s_infra.config import Environment, yaml_text
from k3s_infra.config.text import kebab
from k3s_infra.model import limits, naming
from k3s_infra.render import safe_output
from k3s_infra.stacks import build_children, root

FORMATS = ("yaml", "json")
MANIFEST = "manifest.json"


def serialise(template: Template, fmt: str) -> str:
    data = template.to_dict()
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    return yaml_text.dump(data)


@dataclass
class RenderedStack:
    stack_id: str
    file: str
    body: str
    sha256: str
    key: str | None = None  # artifact bucket key (children only)


@dataclass
class Rendering:
    env: Environment
    fmt: str
    root: RenderedStack
    children: list[RenderedStack] = field(default_factory=list)
    # The root of the stack's first create: the node stacks start together (stacks/root.py).
    create_root: RenderedStack | None = None

    @property
    def stacks(self) -> list[RenderedStack]:
        return [self.root, *([self.create_root] if self.create_root else []), *self.children]

    def root_with_local_urls(self) -> str:
        """The root's body pointing at the child files beside it (for cross-stack linting).
        Each content-addressed URL occurs only as its child's TemplateURL."""
        body = self.root.body
        for child in self.children:
            body = body.replace(naming.template_url(self.env, child.key), child.file)
        return body

    def manifest(self) -> dict:
        return {
            "environment": self.env.name,
            "stack_name": self.env.stack_name,
            "region": self.env.region,
            "artifact_bucket": self.env.artifact_bucket,
            "root": self.root.file,
            "root_sha256": self.root.sha256,
            **({"create_root": self.create_root.file, "create_root_sha256": self.create_root.sha256}
               if self.create_root else {}),
            "children": [{"stack": c.stack_id, "file": c.file, "key": c.key, "sha256": c.sha256}
                         for c in self.children],
        }


def build_templates(env: Environment) -> dict[str, Template]:
    """Library entry point: one troposphere Template per stack, the root under 'Root'."""
    limits.check_environment(env)
    children = build_children(env)
    urls = {stack_id: naming.template_file(stack_id, "yaml") for stack_id in children}
    templates = {stack_id: child.template for stack_id, child in children.items()}
    return {naming.ROOT: root.build(env, children, urls).template, **templates}


def render(env: Environment, fmt: str = "yaml") -> Rendering:
    """Serialise every stack; the root points at the children's content-addressed URLs."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    limits.check_environment(env)
    children = build_children(env)
    rendered = []
    urls = {}
    for stack_id, child in children.items():
        body = serialise(child.template, fmt)
        file_name = naming.template_file(stack_id, fmt)
        limits.check_body(env.name, file_name, body)
        digest = hashlib.sha256(body.encode()).hexdigest()
        key = naming.artifact_key(env, file_name, digest)
        rendered.append(RenderedStack(stack_id, file_name, body, digest, key))
        urls[stack_id] = naming.template_url(env, key)
    roots = []
    for stack_id, creating in ((naming.ROOT, False), (naming.ROOT_CREATE, True)):
        root_file = naming.template_file(stack_id, fmt)
        root_body = serialise(root.build(env, children, urls, creating=creating).template, fmt)
        limits.check_body(env.name, root_file, root_body)
        roots.append(RenderedStack(stack_id, root_file, root_body, hashlib.sha256(root_body.encode()).hexdigest()))
    return Rendering(env, fmt, roots[0], rendered, create_root=roots[1])


# The stacks whose file names are fixed (naming.STACK_*), and the agent pools' stacks
# ('AgentPool' + the pool's name): every file a render can write, in either format.
_FIXED_STACKS = frozenset(naming.template_file(value, fmt) for key, value in vars(naming).items()
                          if (key.startswith("STACK_") or key in ("ROOT", "ROOT_CREATE")) and isinstance(value, str)
                          for fmt in FORMATS)
_POOL_STACK = re.compile(re.escape(kebab(naming.agent_pool_stack("x")).removesuffix("x"))
                         + r"[a-z0-9]+(?:-[a-z0-9]+)*\.(?:" + "|".join(FORMATS) + ")")


def is_template_file(name: str) -> bool:
    """Whether ``name`` is one a render writes beside its manifest (``write`` checks its own
    files against this, so a new kind of stack cannot slip past it). A manifest in an
    output folder is trusted to name files to replace or remove only as far as this says."""
    return name in _FIXED_STACKS or _POOL_STACK.fullmatch(name) is not None


def write(rendering: Rendering, out_dir: Path, *, create_parents: bool = True,
          protected: tuple[Path, ...] = ()) -> Path:
    """Write into a temporary folder beside ``out_dir``, then move the files in.

    ``out_dir`` must be new, empty or hold a previous render (see ``safe_output``):
    only that render's files are replaced or removed, anything else stays, and a manifest
    naming anything but template files makes the folder no previous render. A new folder
    appears whole, in one rename; into an existing one, a first manifest lists the old
    and the new files (so a run stopped half-way leaves a folder the next render accepts),
    then the files move in, the final manifest last, then the old render's leftovers go."""
    out_dir = Path(out_dir)
    written = [stack.file for stack in rendering.stacks]
    unknown = [name for name in written if not is_template_file(name)]
    if unknown:  # a new stack whose file name is_template_file does not know yet
        raise ValueError(f"render writes {', '.join(unknown)}: teach render.is_template_file these names")
    parent = safe_output.check_parent(out_dir, create=create_parents)
    previous = safe_output.check_render_folder(out_dir, MANIFEST, protected, writes=[*written, MANIFEST],
                                               ours=is_template_file)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=parent))
    except OSError as exc:
        raise safe_output.OutputError(f"{out_dir}: cannot write in {parent}: {exc.strerror}") from None
    try:
        for stack in rendering.stacks:
            (staging / stack.file).write_text(stack.body, encoding="utf-8")
        manifest = rendering.manifest()
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        os.chmod(staging, 0o755)
        if not out_dir.exists():
            os.replace(staging, out_dir)
            return out_dir
        # Removed only when their bytes are what the old manifest recorded: a forged manifest
        # cannot name a file of yours into deletion.
        leftovers = safe_output.vouched(out_dir, MANIFEST, sorted(previous - set(written) - {MANIFEST}))
        interim = {**manifest, "children": [*manifest["children"], *(
            {"file": name, "sha256": hashlib.sha256((out_dir / name).read_bytes()).hexdigest()}
            for name in leftovers)]}
        (staging / ".interim").write_text(json.dumps(interim, indent=2) + "\n", encoding="utf-8")
        os.replace(staging / ".interim", out_dir / MANIFEST)
        for name in written + [MANIFEST]:  # the manifest last: it vouches for the files before it
            os.replace(staging / name, out_dir / name)
        for name in leftovers:
            (out_dir / name).unlink(missing_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir
