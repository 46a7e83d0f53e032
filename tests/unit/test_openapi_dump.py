"""scripts/dump_openapi.py writes the OpenAPI document the PWA's API types are generated from."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_the_dump_is_the_apps_openapi_document_without_a_server(tmp_path: Path) -> None:
    out = tmp_path / "openapi.json"
    subprocess.run([sys.executable, "scripts/dump_openapi.py", str(out)], cwd=ROOT, check=True)
    schema = json.loads(out.read_text(encoding="utf-8"))
    assert schema["openapi"].startswith("3.")
    assert {"/api/projects", "/api/projects/bulk", "/api/auth/register"} <= set(schema["paths"])
    project_in = schema["components"]["schemas"]["ProjectIn"]
    assert {"name", "template", "id"} <= set(project_in["properties"])
    # The committed TypeScript types were generated from this document: they know the same body.
    types = (ROOT / "pwa" / "src" / "lib" / "openapi.d.ts").read_text(encoding="utf-8")
    assert "ProjectIn: {" in types
    assert "id?: string | null;" in types


def test_the_dump_refuses_a_missing_argument() -> None:
    r = subprocess.run([sys.executable, "scripts/dump_openapi.py"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2
    assert "usage" in r.stderr
