"""Write the studio's OpenAPI document to a file, from the app itself (no server started).

    .venv/bin/python scripts/dump_openapi.py pwa/openapi.json

``scripts/setup.sh pwa`` runs it before building the PWA, whose API types
(``pwa/src/lib/openapi.d.ts``) openapi-typescript generates from the file.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from app.main import create_app
from app.settings import Settings


def openapi_document() -> dict[str, object]:
    """The OpenAPI document ``GET /schema/openapi.json`` serves, built from a throwaway app."""
    with tempfile.TemporaryDirectory(prefix="studio-openapi-") as tmp:
        settings = Settings(
            STUDIO_DATA_DIR=Path(tmp) / "data",
            WORKSPACE_ROOT=Path(tmp) / "workspace",
            STUDIO_LOG_FORMAT="console",
        )
        app = create_app(settings)
        schema = app.openapi_schema.to_schema()
    return dict(schema)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: dump_openapi.py OUTPUT.json", file=sys.stderr)
        return 2
    out = Path(argv[1])
    text = json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"
    if not out.exists() or out.read_text(encoding="utf-8") != text:
        out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
