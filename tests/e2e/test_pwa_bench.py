"""The PWA benchmark (scripts/bench/pwa.py) still runs end to end: one quick pass with a small
canvas must produce every number (not meet the targets: those are for `make bench-pwa`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.e2e


def test_the_pwa_bench_measures_loads_javascript_and_canvas_frames(tmp_path: Path) -> None:
    out = tmp_path / "pwa.json"
    done = subprocess.run(
        [sys.executable, "scripts/bench/pwa.py", "--runs", "1", "--nodes", "50", "--projects", "2",
         "--drag-seconds", "0.5", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    doc = json.loads(out.read_text())
    rows = {r["measure"]: r for r in doc["results"]}

    # Both loads reached the interactive gallery, the warm one through the service worker
    for name in ("cold load → interactive", "warm load (SW) → interactive"):
        assert rows[name]["samples"] == 1, rows[name]
        assert rows[name]["median"] > 0, rows[name]
    (load,) = doc["loads"]
    assert load["warm"]["controlled"], load
    assert load["warm"]["worker_start"] > 0, load
    assert any(call["path"] == "/api/projects" for call in load["cold"]["api"]), load["cold"]["api"]

    # The first load's JavaScript was seen and sized
    js = rows["first-load JS (gzip -9)"]
    assert js["samples"] > 0, js
    assert js["median"] > 0, js
    bad = [f for f in load["js"] if not (f["gzip9"] > 0 and f["wire"] > 0)]
    assert not bad, bad

    # The canvas held every node, and both the drag and the pan moved something while frames ran
    assert doc["nodes"] == 50, doc["canvas"]
    assert doc["canvas"]["nodes_in_dom"] == 50, doc["canvas"]
    for name in ("drag node, 50 nodes", "pan canvas, 50 nodes"):
        assert rows[name]["samples"] >= 5, rows[name]
        assert rows[name]["p95"] > 0, rows[name]
        assert "DID NOT MOVE" not in rows[name]["detail"], rows[name]
    assert all(r["moved_px"] > 20 for r in doc["drag_runs"] + doc["pan_runs"]), doc

    # And the table a person reads names each measure with its verdict
    for name in rows:
        assert name in done.stdout
    assert "command: " in done.stdout
    assert "machine: " in done.stdout
