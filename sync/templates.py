"""Story-structure templates and sample projects, read from ``data/``.

Templates (``data/templates/<id>.json``) give a new project its acts, plot points and beats;
samples (``data/samples/<id>.json``) are whole projects every new user starts with.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from sync.jsonfile import read_json

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
TEMPLATE_IDS = ("blank", "three-act", "five-act", "heros-journey", "save-the-cat")


class UnknownTemplate(KeyError):
    """The template id names no template."""

    def __init__(self, template_id: str) -> None:
        super().__init__(template_id)
        self.template_id = template_id

    def __str__(self) -> str:
        return f"There is no template '{self.template_id}'; choose one of: {', '.join(TEMPLATE_IDS)}."


@functools.cache
def all_templates(data_dir: Path = DATA_DIR) -> dict[str, dict[str, Any]]:
    """Every template, by id, in display order."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((data_dir / "templates").glob("*.json")):
        template = read_json(path)
        found[template["id"]] = template
    return dict(sorted(found.items(), key=lambda kv: kv[1].get("order", 99)))


def get_template(template_id: str, data_dir: Path = DATA_DIR) -> dict[str, Any]:
    """The template ``template_id``; raises :class:`UnknownTemplate`."""
    try:
        return all_templates(data_dir)[template_id]
    except KeyError:
        raise UnknownTemplate(template_id) from None


@functools.cache
def all_samples(data_dir: Path = DATA_DIR) -> tuple[dict[str, Any], ...]:
    """The sample projects a new user is given, in a stable order."""
    return tuple(read_json(p) for p in sorted((data_dir / "samples").glob("*.json")))
