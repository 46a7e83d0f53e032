"""PWA benchmark: cold and warm load to interactive, first-load JS, drag frame times (500 nodes).

Starts a real ``studio serve`` (Granian) on a free port over a fresh temporary folder serving the
built PWA (``make pwa`` first), and drives Debian's headless Chromium with Playwright on loopback:

- cold load: a new browser context (empty HTTP cache, no service worker) with a guest's token in
  localStorage opens ``/``; "interactive" is the moment the gallery's first project card is in the
  DOM (performance.now(), i.e. since navigation start), recorded in the page by a MutationObserver.
- warm load: the same context reloads once its service worker controls the page (the shell, JS
  and CSS come from the service worker's cache); the same moment is measured.
- first-load JS: every JavaScript response of the cold load, gzip-compressed here (level 9) and
  summed, so the number does not depend on what the server compresses with.
- drag: a project whose canvas holds 500 nodes (written through the sync socket by the Python
  client) is opened; one node is dragged across the canvas in 120 mouse moves while the page
  records requestAnimationFrame intervals; p50/p95/max of those intervals.

    .venv/bin/python scripts/bench/pwa.py [--runs 5] [--nodes 500] [--json out.json] [--strict]

Targets: cold < 1000 ms, warm < 300 ms, first-load JS < 300 KB gzip, drag p95 < 16.7 ms.
Exits 0 whatever the numbers unless ``--strict`` is given and a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from pycrdt import Map

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sync.client import SyncClient  # noqa: E402
from tests.conftest import CHROMIUM_ARGS, start_server, stop_server  # noqa: E402

TARGETS = {"cold_ms": 1000.0, "warm_ms": 300.0, "js_gzip_kb": 300.0, "drag_p95_ms": 16.7}

# Records when the first project card (gallery) or canvas node (studio) appears.
MARK_INTERACTIVE = """
window.__interactive = null;
new MutationObserver((_, obs) => {
  if (document.querySelector('[data-testid=project-card], .svelte-flow__node')) {
    window.__interactive = performance.now();
    obs.disconnect();
  }
}).observe(document, {childList: true, subtree: true});
"""

RECORD_FRAMES = """
() => {
  window.__frames = [];
  let last = null;
  window.__recording = true;
  const tick = (t) => {
    if (last !== null) window.__frames.push(t - last);
    last = t;
    if (window.__recording) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}
"""


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


async def seed_canvas(url: str, token: str, project_id: str, count: int) -> None:
    """Put ``count`` generator nodes, in a grid, on the project's main canvas through /sync."""
    async with SyncClient(url.replace("http", "ws", 1), project_id, token) as client:
        nodes = client.doc.get("canvases", type=Map)["main"]["nodes"]
        with client.doc.transaction():
            for i in range(count):
                nodes[f"bench-{i:04d}"] = Map(
                    {
                        "type": "image.diffusion",
                        "x": (i % 25) * 220,
                        "y": (i // 25) * 120,
                        "params": Map({"steps": 30, "width": 768, "height": 432}),
                    }
                )
        await client.flushed()


def measure(runs: int, node_count: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="studio-bench-pwa-"))
    server = start_server(
        tmp, STUDIO_SEED_SAMPLES="true", STUDIO_RATE_LIMIT_USER="100000", STUDIO_RATE_LIMIT_IP="100000"
    )
    try:
        auth = httpx.post(f"{server.url}/api/auth/guest").json()
        token, user = auth["token"], auth["user"]
        headers = {"Authorization": f"Bearer {token}"}
        project = httpx.post(
            f"{server.url}/api/projects", json={"name": "Bench Canvas"}, headers=headers
        ).json()
        asyncio.run(seed_canvas(server.url, token, project["id"], node_count))
        login = f"localStorage.setItem('studio.token', {json.dumps(token)}); localStorage.setItem('studio.user', {json.dumps(json.dumps(user))}); localStorage.setItem('studio.tutorial', JSON.stringify({{step: 0, skipped: true, done: false}}));"

        executable = shutil.which("chromium") or shutil.which("chromium-browser")
        cold: list[float] = []
        warm: list[float] = []
        js_gzip: list[int] = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
            for _ in range(runs):
                # bypass_csp: Playwright's polling predicates are evaluated as strings.
                context = browser.new_context(
                    viewport={"width": 1280, "height": 800}, service_workers="allow", bypass_csp=True
                )
                context.add_init_script(MARK_INTERACTIVE)
                page = context.new_page()
                page.add_init_script(f"if (!localStorage.getItem('studio.token')) {{ {login} }}")
                scripts: list[Any] = []
                page.on("response", lambda r, s=scripts: s.append(r) if r.url.endswith(".js") else None)
                page.goto(server.url)
                page.wait_for_function("window.__interactive !== null", timeout=30_000)
                cold.append(page.evaluate("window.__interactive"))
                js_gzip.append(sum(len(gzip.compress(r.body(), 9)) for r in scripts if r.ok))
                page.evaluate("navigator.serviceWorker.ready")
                page.wait_for_timeout(300)
                page.reload()
                page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=10_000)
                for _ in range(2):  # warm runs: shell and assets from the service worker
                    page.reload()
                    page.wait_for_function("window.__interactive !== null", timeout=30_000)
                    warm.append(page.evaluate("window.__interactive"))
                context.close()

            # Drag with many nodes
            context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
            page = context.new_page()
            page.add_init_script(login)
            page.goto(f"{server.url}/projects/{project['id']}")
            page.wait_for_function(
                "document.querySelectorAll('.svelte-flow__node').length > 0", timeout=60_000
            )
            page.wait_for_timeout(1500)
            rendered = page.evaluate("document.querySelectorAll('.svelte-flow__node').length")
            in_doc = page.evaluate(
                "document.querySelector('[data-testid=project-browser] .count')?.textContent"
            )
            node = page.locator(".svelte-flow__node").first
            box = node.bounding_box()
            assert box is not None
            x, y = box["x"] + box["width"] / 2, box["y"] + 10
            page.mouse.move(x, y)
            page.mouse.down()
            page.evaluate(RECORD_FRAMES)
            for i in range(120):
                page.mouse.move(x + 3 * i, y + (i % 40) * 2)
            page.evaluate("window.__recording = false")
            page.mouse.up()
            frames = [f for f in page.evaluate("window.__frames") if f > 0]
            context.close()
            browser.close()
    finally:
        stop_server(server)
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "cold_ms": statistics.median(cold),
        "cold_runs_ms": [round(v, 1) for v in cold],
        "warm_ms": statistics.median(warm),
        "warm_runs_ms": [round(v, 1) for v in warm],
        "js_gzip_kb": statistics.median(js_gzip) / 1024,
        "drag_nodes_in_doc": in_doc,
        "drag_nodes_rendered": rendered,
        "drag_frames": len(frames),
        "drag_p50_ms": pct(frames, 50) if frames else float("nan"),
        "drag_p95_ms": pct(frames, 95) if frames else float("nan"),
        "drag_max_ms": max(frames) if frames else float("nan"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args()
    if not (ROOT / "pwa" / "build" / "index.html").exists():
        print("build the PWA first: make pwa", file=sys.stderr)
        return 2
    load = os.getloadavg()
    result = measure(args.runs, args.nodes)
    print(f"machine: {os.cpu_count()} CPUs, {platform.python_version()}, load before {load[0]:.2f}")
    print(f"command: {' '.join(sys.argv)}")
    rows = [
        ("cold load to interactive", result["cold_ms"], "ms", "cold_ms"),
        ("warm load (service worker)", result["warm_ms"], "ms", "warm_ms"),
        ("first-load JS (gzip)", result["js_gzip_kb"], "KB", "js_gzip_kb"),
        (f"drag p95 frame, {args.nodes} nodes", result["drag_p95_ms"], "ms", "drag_p95_ms"),
    ]
    missed = 0
    for label, value, unit, key in rows:
        ok = value < TARGETS[key]
        missed += not ok
        print(
            f"  {label:34} {value:8.1f} {unit:2}  target < {TARGETS[key]:g} {unit}  {'PASS' if ok else 'FAIL'}"
        )
    print(f"  cold runs {result['cold_runs_ms']}  warm runs {result['warm_runs_ms']}")
    print(
        f"  drag: {result['drag_frames']} frames, p50 {result['drag_p50_ms']:.1f} ms, max {result['drag_max_ms']:.1f} ms;"
        f" nodes in the canvas {result['drag_nodes_in_doc']}, rendered (visible) {result['drag_nodes_rendered']}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
