"""One module per AWS building block. Each exposes ``build(t, cfg, refs) -> Refs``:
typed config and references in, resources added through the StackTemplate,
a small dataclass of troposphere references out.
"""
