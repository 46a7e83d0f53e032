"""PWA benchmark: cold and warm load to interactive, first-load JavaScript, canvas frame times.

Starts a real ``studio serve`` (Granian) on a free port with its data in a fresh temporary folder
(``Server`` from ``scripts/bench/api.py``), serving the built app in ``pwa/build/``, and drives
Debian's Chromium (``/usr/bin/chromium``, headless) through Playwright. One guest account owns
``--projects`` projects; one of them gets ``--nodes`` nodes on its open canvas, written through the
sync socket with :class:`sync.client.SyncClient` like any other client's edits.

- ``cold``: a fresh browser context (empty HTTP cache, no service worker, the guest's token in
  localStorage, as a returning person on a new browser) opens ``/``. Measured from navigation
  start (``performance.timeOrigin``) to the first animation frame in which the app shell is
  interactive: the gallery lists every project (``[data-testid=project-card]``) and the "New
  project" form is usable (its name field and its template menu enabled; the menu is enabled once
  the templates have loaded). A MutationObserver installed before any page script notices the
  moment; ``requestAnimationFrame`` then stamps the frame that shows it.
- ``warm``: the same context once the service worker is active and controls the page: a reload,
  measured the same way (the navigation is answered by the service worker's precache).
- ``js``: every JavaScript response of the cold load (until the network is quiet), as the page
  fetched it. The server compresses on the fly (Litestar, brotli with a gzip fallback), so the
  bench reports the bytes on the wire with their ``Content-Encoding`` (``Request.sizes()``, the
  CDP ``encodedDataLength``) and judges the sum of ``gzip -9`` of each decoded body, which is what
  the target names. Also shown: every JS file in ``pwa/build`` gzipped, i.e. what the service
  worker precaches in the background on the first visit.
- ``drag``/``pan``: the canvas project opens in the Scene View (``/projects/{id}``, all nodes in
  view after ``fitView``); a ``requestAnimationFrame`` loop records frame timestamps while
  ``page.mouse`` drags the node nearest the centre round a circle for ``--drag-seconds`` (a mouse
  event every 8 ms, a 125 Hz mouse), then drags the empty canvas (pan) the same way. Frame time =
  delta between consecutive frames; p50/p95/max over every frame of every run. The bench checks
  the node and the viewport really moved.

    .venv/bin/python scripts/bench/pwa.py [--runs 10] [--nodes 500] [--json out.json] [--strict]

Exits 0 whatever the numbers, unless ``--strict`` is given and a target is missed (2 when the
bench itself cannot run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import itertools
import json
import math
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# This file's folder holds sync.py (the sync bench): keep it off the path so `sync` is the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

from sync.client import SyncClient  # noqa: E402

COLD_TARGET_MS = 1000.0
WARM_TARGET_MS = 300.0
JS_TARGET_KB = 300.0
FRAME_TARGET_MS = 16.7
VSYNC_MS = 1000.0 / 60
MOUSE_EVENT_S = 0.008
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
VIEWPORT = {"width": 1280, "height": 800}
# Grid spacing of the seeded nodes (a node is about 160 x 60 px at zoom 1).
NODE_DX, NODE_DY = 220, 110


def load_api_bench() -> ModuleType:
    """scripts/bench/api.py, for its ``Server`` (how benches start ``studio serve``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_api", HERE / "api.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_api"] = module
    spec.loader.exec_module(module)
    return module


# -- in the page ------------------------------------------------------------------------------------

# Installed before any page script on every navigation to "/": stamps when the shell is interactive.
READY_SCRIPT = """
(() => {
  if (location.pathname !== '/') return;
  const want = __CARDS__;
  const bench = (window.__bench = { ready: null, frame: null });
  const usable = (sel) => {
    const el = document.querySelector(sel);
    return el !== null && !el.disabled;
  };
  const check = () => {
    if (bench.ready !== null) return;
    if (document.querySelectorAll('[data-testid=project-card]').length < want) return;
    if (!usable('[data-testid=new-project-name]') || !usable('[data-testid=new-project-template]')) return;
    bench.ready = performance.now();
    observer.disconnect();
    requestAnimationFrame(() => { bench.frame = performance.now(); });
  };
  const observer = new MutationObserver(check);
  observer.observe(document, { childList: true, subtree: true, attributes: true, attributeFilter: ['disabled'] });
})();
"""

TIMINGS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  return {
    ready: window.__bench.ready,
    frame: window.__bench.frame,
    response_start: nav ? nav.responseStart : null,
    response_end: nav ? nav.responseEnd : null,
    dom_content_loaded: nav ? nav.domContentLoadedEventEnd : null,
    worker_start: nav ? nav.workerStart : 0,
    controlled: !!(navigator.serviceWorker && navigator.serviceWorker.controller),
    api: performance.getEntriesByType('resource')
      .filter(e => new URL(e.name).pathname.startsWith('/api/'))
      .map(e => ({ path: new URL(e.name).pathname, start: Math.round(e.startTime), end: Math.round(e.responseEnd) })),
  };
}"""

SW_READY = """ms => Promise.race([
  navigator.serviceWorker.ready.then(() => true),
  new Promise(resolve => setTimeout(() => resolve(false), ms)),
])"""

FRAMES_START = """() => {
  const rec = (window.__frames = { t: [], on: true });
  const loop = ts => { if (!rec.on) return; rec.t.push(ts); requestAnimationFrame(loop); };
  requestAnimationFrame(loop);
}"""

FRAMES_STOP = """() => new Promise(resolve => requestAnimationFrame(() => {
  window.__frames.on = false;
  resolve(window.__frames.t);
}))"""

# The node nearest the middle of the pane, fully on screen: its id and where to grab it.
PICK_NODE = """() => {
  const pane = document.querySelector('.svelte-flow').getBoundingClientRect();
  const cx = pane.left + pane.width / 2, cy = pane.top + pane.height / 2;
  let best = null, bestD = Infinity;
  for (const el of document.querySelectorAll('.svelte-flow__node')) {
    const r = el.getBoundingClientRect();
    if (r.left < pane.left || r.top < pane.top || r.right > pane.right || r.bottom > pane.bottom) continue;
    const x = r.left + r.width / 2, y = r.top + r.height / 2;
    const hit = document.elementFromPoint(x, y);
    if (!hit || hit.closest('.svelte-flow__node') !== el) continue;  // covered by something else
    const d = Math.hypot(x - cx, y - cy);
    if (d < bestD) { bestD = d; best = { id: el.dataset.id, x, y }; }
  }
  return best;
}"""

NODE_CENTRE = """id => {
  const el = document.querySelector(`.svelte-flow__node[data-id="${CSS.escape(id)}"]`);
  if (!el) return null;
  const r = el.getBoundingClientRect();
  return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
}"""

# A point of the empty pane (no node, edge or control under it) away from the pane's edges.
PICK_PANE = """() => {
  const pane = document.querySelector('.svelte-flow').getBoundingClientRect();
  const cx = pane.left + pane.width / 2, cy = pane.top + pane.height / 2;
  let best = null, bestD = Infinity;
  for (let y = pane.top + pane.height * 0.25; y < pane.bottom - pane.height * 0.25; y += 3) {
    for (let x = pane.left + pane.width * 0.25; x < pane.right - pane.width * 0.25; x += 3) {
      const el = document.elementFromPoint(x, y);
      if (!el || !el.classList.contains('svelte-flow__pane')) continue;
      const d = Math.hypot(x - cx, y - cy);
      if (d < bestD) { bestD = d; best = { x, y }; }
    }
  }
  return best;
}"""

VIEWPORT_TRANSFORM = "() => getComputedStyle(document.querySelector('.svelte-flow__viewport')).transform"


# -- results ----------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest rank (with 10 samples, p95 is the largest)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(len(ordered) * p / 100))
    return ordered[rank - 1]


@dataclass
class Row:
    measure: str
    unit: str
    samples: int
    median: float
    p95: float
    max: float
    target: str
    passed: bool
    detail: str = ""
    values: list[float] = field(default_factory=list)


def timing_row(measure: str, values: list[float], target_ms: float, detail: str, expected: int) -> Row:
    ok = len(values) == expected and expected > 0
    row = Row(
        measure=measure,
        unit="ms",
        samples=len(values),
        median=round(statistics.median(values), 1) if values else 0.0,
        p95=round(percentile(values, 95), 1),
        max=round(max(values), 1) if values else 0.0,
        target=f"median < {target_ms:g} ms",
        passed=False,
        detail=detail,
        values=[round(v, 1) for v in values],
    )
    row.passed = ok and row.median < target_ms
    return row


def frame_row(measure: str, deltas: list[float], moved: bool, detail: str) -> Row:
    """Judged on frame times rounded to whole vsyncs: rAF timestamps are coarsened to 0.1 ms and
    jitter, so a frame on time reads 16.6 to 16.8 ms; rounded, p95 < 16.7 ms means fewer than 5 %
    of the frames missed a vsync. The table shows the raw deltas."""
    vsyncs = [max(1, round(d / VSYNC_MS)) for d in deltas]
    p95_rounded = percentile([v * VSYNC_MS for v in vsyncs], 95)
    missed = sum(v - 1 for v in vsyncs)
    late = sum(1 for v in vsyncs if v > 1)
    return Row(
        measure=measure,
        unit="ms",
        samples=len(deltas),
        median=round(percentile(deltas, 50), 2),
        p95=round(percentile(deltas, 95), 2),
        max=round(max(deltas), 1) if deltas else 0.0,
        target=f"p95 < {FRAME_TARGET_MS:g} ms (vsync-rounded)",
        passed=bool(deltas) and moved and p95_rounded < FRAME_TARGET_MS,
        detail=(
            f"{late} late frames ({100 * late / max(1, len(deltas)):.0f} %), {missed} vsyncs missed; {detail}"
            + ("" if moved else "; DID NOT MOVE")
        ),
        values=[round(d, 2) for d in deltas],
    )


# -- seeding ----------------------------------------------------------------------------------------


@dataclass
class Seeded:
    token: str
    user: dict[str, Any]
    project_ids: list[str]
    canvas_project: str
    canvas_id: str
    canvas_nodes: int


def seed(url: str, projects: int, nodes: int) -> Seeded:
    with httpx.Client(base_url=url, timeout=60) as http:
        r = http.post("/api/auth/guest")
        if r.status_code != 201:
            raise RuntimeError(f"POST /api/auth/guest answered {r.status_code}: {r.text[:300]}")
        auth = r.json()
        headers = {"Authorization": f"Bearer {auth['token']}"}
        ids = []
        for i in range(projects):
            name = "Canvas bench" if i == 0 else f"Gallery bench {i:02d}"
            r = http.post("/api/projects", json={"name": name, "template": "three-act"}, headers=headers)
            if r.status_code != 201:
                raise RuntimeError(f"POST /api/projects answered {r.status_code}: {r.text[:300]}")
            ids.append(r.json()["id"])
    canvas_id, total = asyncio.run(fill_canvas(url, ids[0], auth["token"], nodes))
    return Seeded(auth["token"], auth["user"], ids, ids[0], canvas_id, total)


async def fill_canvas(url: str, project_id: str, token: str, count: int) -> tuple[str, int]:
    """``count`` nodes (prompt → image generator pairs, each pair connected) on the open canvas, in
    one transaction through the sync socket; returns the canvas id and its node count as the
    server has it afterwards."""
    from pycrdt import Map, Text

    ws = "ws" + url.removeprefix("http")
    async with SyncClient(ws, project_id, token) as client:
        meta = client.doc.get("meta", type=Map)
        canvases = client.doc.get("canvases", type=Map)
        canvas_id = str(meta.get("open_canvas") or next(iter(canvases.keys()), "main"))
        with client.doc.transaction():
            if canvas_id not in canvases:
                canvases[canvas_id] = Map({"name": "Main", "order": 0, "nodes": Map(), "edges": Map()})
            canvas = canvases[canvas_id]
            if "edges" not in canvas:
                canvas["edges"] = Map()
            nodes, edges = canvas["nodes"], canvas["edges"]
            # Pairs side by side on a grid about as wide as tall on screen (the pane is ~1.3:1).
            pairs = math.ceil(count / 2)
            cols = max(1, round(math.sqrt(pairs * 1.3 * NODE_DY / (2 * NODE_DX))))
            for k in range(pairs):
                x, y = (k % cols) * 2 * NODE_DX, (k // cols) * NODE_DY
                prompt, image = f"prompt-bench{k:04d}", f"image-bench{k:04d}"
                nodes[prompt] = Map(
                    {"type": "prompt", "x": x, "y": y,
                     "params": Map({"text": Text(f"Shot {k}: a harbour at dawn, fog"), "negative": Text("")})}
                )  # fmt: skip
                if 2 * k + 1 < count:
                    nodes[image] = Map(
                        {"type": "image.diffusion", "x": x + NODE_DX, "y": y,
                         "params": Map({"model": "", "steps": 30, "guidance": 7.5, "width": 768,
                                        "height": 432, "seed": None})}
                    )  # fmt: skip
                    edges[f"edge-bench{k:04d}"] = Map(
                        {"source": prompt, "sourceHandle": "out", "target": image, "targetHandle": "prompt"}
                    )
        await client.flushed()
    # What the server holds now, as a second client receives it.
    deadline = time.monotonic() + 30
    while True:
        async with SyncClient(ws, project_id, token) as check:
            have = len(check.doc.get("canvases", type=Map)[canvas_id]["nodes"])
        if have >= count or time.monotonic() > deadline:
            return canvas_id, have
        await asyncio.sleep(0.2)


# -- the browser ------------------------------------------------------------------------------------


@dataclass
class LoadSample:
    cold_ms: float
    warm_ms: float | None
    cold: dict[str, Any]
    warm: dict[str, Any] | None
    js: list[dict[str, Any]]
    note: str = ""


def new_context(browser: Any, url: str, seeded: Seeded) -> Any:
    """A fresh context (own cache, no service worker) where this guest is already signed in and
    has put the tutorial aside."""
    state = {
        "cookies": [],
        "origins": [
            {
                "origin": url,
                "localStorage": [
                    {"name": "studio.token", "value": seeded.token},
                    {"name": "studio.user", "value": json.dumps(seeded.user)},
                    # The tutorial card stays away: this measures the app, not the first-visit guide.
                    {
                        "name": "studio.tutorial",
                        "value": json.dumps({"step": 0, "skipped": True, "done": False}),
                    },
                ],
            }
        ],
    }
    return browser.new_context(viewport=VIEWPORT, storage_state=state, service_workers="allow")


def is_js(response: Any) -> bool:
    ctype = (response.header_value("content-type") or "").lower()
    path = urlsplit(response.url).path
    return "javascript" in ctype or "ecmascript" in ctype or path.endswith((".js", ".mjs"))


def wire_bytes(url: str) -> int:
    """The bytes the server sends for ``url`` to a browser that accepts compression."""
    with httpx.stream("GET", url, headers={"Accept-Encoding": "gzip, deflate, br"}, timeout=30) as resp:
        return sum(len(chunk) for chunk in resp.iter_raw())


def js_sizes(responses: list[Any]) -> list[dict[str, Any]]:
    """One entry per JavaScript file. A file can answer twice (a modulepreload, then the import
    served from Chromium's memory cache with no bytes on the wire): the network one counts."""
    by_path: dict[str, dict[str, Any]] = {}
    for r in responses:
        if not is_js(r) or r.status != 200:
            continue
        path = urlsplit(r.url).path
        wire = int(r.request.sizes()["responseBodySize"])
        if wire <= 0:  # none, or a negative size Chromium reports for some such answers
            # Answered by the service worker (it took control during the load) or from a cache
            # its precaching filled: the bytes crossed the wire in a request the page does not
            # see. Ask the server what it sends for the file.
            wire = wire_bytes(r.url)
        if path in by_path and by_path[path]["wire"] >= wire:
            continue
        body = r.body()
        by_path[path] = {
            "path": path,
            "bytes": len(body),
            "gzip9": len(gzip.compress(body, 9)),
            "wire": wire,
            "encoding": r.header_value("content-encoding") or "identity",
        }
    return list(by_path.values())


def wait_ready(page: Any, timeout_ms: float) -> dict[str, Any]:
    page.wait_for_function("() => window.__bench && window.__bench.frame !== null", timeout=timeout_ms)
    timings: dict[str, Any] = page.evaluate(TIMINGS)
    return timings


def measure_loads(browser: Any, url: str, seeded: Seeded, timeout_ms: float) -> LoadSample:
    context = new_context(browser, url, seeded)
    try:
        context.add_init_script(READY_SCRIPT.replace("__CARDS__", str(len(seeded.project_ids))))
        page = context.new_page()
        responses: list[Any] = []

        def on_response(response: Any) -> None:
            responses.append(response)

        page.on("response", on_response)
        page.goto(f"{url}/", wait_until="commit", timeout=timeout_ms)
        cold = wait_ready(page, timeout_ms)
        page.wait_for_load_state("load", timeout=timeout_ms)
        with contextlib.suppress(Exception):  # the events socket may keep it from ever being idle
            page.wait_for_load_state("networkidle", timeout=5000)
        page.remove_listener("response", on_response)
        js = js_sizes(responses)

        note = ""
        if not page.evaluate(SW_READY, 20_000):
            return LoadSample(cold["frame"], None, cold, None, js, "no service worker became active")
        with contextlib.suppress(Exception):
            page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=5000)
        if not page.evaluate("() => navigator.serviceWorker.controller !== null"):
            note = "the service worker took control only after one (unmeasured) reload"
            page.reload(wait_until="load", timeout=timeout_ms)
        page.reload(wait_until="commit", timeout=timeout_ms)
        warm = wait_ready(page, timeout_ms)
        if not warm["controlled"]:
            note = "the warm reload was not controlled by the service worker"
        return LoadSample(cold["frame"], warm["frame"], cold, warm, js, note)
    finally:
        context.close()


@dataclass
class DragRun:
    frames: list[float]
    moved_px: float
    mouse_events: int
    seconds: float


def record_frames(
    page: Any, start: tuple[float, float], seconds: float, end_offset: tuple[float, float]
) -> DragRun:
    """Press at ``start``, move round a 120 px circle for ``seconds`` with a mouse event every 8 ms,
    release ``end_offset`` away from ``start``; the frame deltas meanwhile."""
    x0, y0 = start
    radius = 120.0
    page.mouse.move(x0, y0)
    page.evaluate(FRAMES_START)
    page.mouse.down()
    began = time.perf_counter()
    events = 0
    while (t := time.perf_counter() - began) < seconds:
        angle = 2 * math.pi * t  # one turn a second, starting at the grab point
        page.mouse.move(x0 + radius - radius * math.cos(angle), y0 + radius * math.sin(angle))
        events += 1
        delay = began + events * MOUSE_EVENT_S - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    page.mouse.move(x0 + end_offset[0], y0 + end_offset[1])
    page.mouse.up()
    elapsed = time.perf_counter() - began
    stamps: list[float] = page.evaluate(FRAMES_STOP)
    deltas = [b - a for a, b in itertools.pairwise(stamps)]
    return DragRun(deltas, 0.0, events + 1, elapsed)


def measure_canvas(
    browser: Any, url: str, seeded: Seeded, runs: int, seconds: float, timeout_ms: float, shots: Path | None
) -> tuple[list[DragRun], list[DragRun], dict[str, Any]]:
    context = new_context(browser, url, seeded)
    try:
        page = context.new_page()
        t0 = time.perf_counter()
        page.goto(f"{url}/projects/{seeded.canvas_project}", timeout=timeout_ms)
        page.wait_for_function(
            "n => document.querySelectorAll('.svelte-flow__node').length >= n",
            arg=seeded.canvas_nodes,
            timeout=timeout_ms,
        )
        opened_s = time.perf_counter() - t0
        time.sleep(1.5)  # fitView, IndexedDB's first write and the sync badge settle
        info = {
            "open_s": round(opened_s, 2),
            "nodes_in_dom": page.evaluate("() => document.querySelectorAll('.svelte-flow__node').length"),
            "edges_in_dom": page.evaluate("() => document.querySelectorAll('.svelte-flow__edge').length"),
            "viewport": page.evaluate(VIEWPORT_TRANSFORM),
        }
        if shots:
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / "pwa-bench-canvas.png"))
        drags, pans = [], []
        for i in range(runs):
            grab = page.evaluate(PICK_NODE)
            if grab is None:
                raise RuntimeError("no node of the canvas is fully on screen to drag")
            offset = (150.0, 60.0) if i % 2 == 0 else (-150.0, -60.0)
            run = record_frames(page, (grab["x"], grab["y"]), seconds, offset)
            after = page.evaluate(NODE_CENTRE, grab["id"])
            run.moved_px = math.hypot(after["x"] - grab["x"], after["y"] - grab["y"]) if after else 0.0
            drags.append(run)
            time.sleep(0.3)

            spot = page.evaluate(PICK_PANE)
            if spot is None:
                raise RuntimeError("no empty spot of the canvas to pan from")
            before = page.evaluate(VIEWPORT_TRANSFORM)
            run = record_frames(page, (spot["x"], spot["y"]), seconds, offset)
            run.moved_px = 0.0 if page.evaluate(VIEWPORT_TRANSFORM) == before else math.hypot(*offset)
            pans.append(run)
            time.sleep(0.3)
        if shots:
            page.screenshot(path=str(shots / "pwa-bench-canvas-after.png"))
        return drags, pans, info
    finally:
        context.close()


def build_js() -> tuple[int, int]:
    """Every JS file of the built app (what the service worker precaches): count, gzip -9 bytes."""
    files = [p for p in (ROOT / "pwa" / "build").rglob("*.js") if p.is_file()]
    return len(files), sum(len(gzip.compress(p.read_bytes(), 9)) for p in files)


# -- main -------------------------------------------------------------------------------------------


def print_table(rows: list[Row]) -> None:
    head = ("measure", "n", "median", "p95", "max", "target", "", "detail")
    cells = []
    for r in rows:
        nums: tuple[str, ...]
        if r.unit == "KB":
            nums = (f"{r.median:.1f} KB", "", "")
        else:
            digits = 2 if r.measure.startswith(("drag", "pan")) else 0
            nums = tuple(f"{v:.{digits}f} ms" for v in (r.median, r.p95, r.max))
        cells.append((r.measure, str(r.samples), *nums, r.target, "PASS" if r.passed else "FAIL", r.detail))
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
    right = {1, 2, 3, 4}

    def fmt(row: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    print(fmt(head))
    print("  ".join("-" * w for w in widths[:-1]) + "  " + "-" * len(head[-1]))
    for row in cells:
        print(fmt(row))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument(
        "--runs", type=int, default=10, help="cold/warm loads (one fresh context each) and drags (10)"
    )
    p.add_argument("--nodes", type=int, default=500, help="nodes on the canvas that is dragged (500)")
    p.add_argument("--projects", type=int, default=6, help="projects in the gallery (6, one is the canvas)")
    p.add_argument("--drag-seconds", type=float, default=2.0, help="seconds of each drag and each pan (2)")
    p.add_argument(
        "--chromium", default=None, help="the browser (default: chromium on PATH, /usr/bin/chromium)"
    )
    p.add_argument(
        "--screenshots", type=Path, default=None, metavar="DIR", help="save the canvas as PNGs here"
    )
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results here")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = p.parse_args(argv)
    if args.runs < 1 or args.nodes < 2 or args.projects < 1 or args.drag_seconds <= 0:
        p.error("--runs and --projects must be positive, --nodes at least 2, --drag-seconds > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    python = sys.executable
    with contextlib.suppress(ValueError):
        python = os.path.relpath(python) if Path(python).is_relative_to(Path.cwd()) else python
    command = shlex.join([python, *(sys.argv if argv is None else ["scripts/bench/pwa.py", *argv])])

    chromium = args.chromium or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        print(f"bench: no Chromium at {chromium} (apt-get install chromium)", file=sys.stderr)
        return 2
    if not (ROOT / "pwa" / "build" / "index.html").exists():
        print("bench: the PWA is not built (make pwa)", file=sys.stderr)
        return 2
    version = subprocess.run(
        [chromium, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()

    # `timeout` and CI runners stop with SIGTERM: unwind so the server and the browser are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    api = load_api_bench()
    info = api.machine_info(f"{version} headless via Playwright")
    tmp = Path(tempfile.mkdtemp(prefix="studio-pwa-bench-"))
    server = api.Server(tmp)
    timeout_ms = 60_000.0
    loads: list[LoadSample] = []
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright

        print(f"bench: starting studio serve on {server.url} (data in {tmp})", file=sys.stderr)
        server.start()
        t0 = time.monotonic()
        seeded = seed(server.url, args.projects, args.nodes)
        print(
            f"bench: seeded {args.projects} projects, {seeded.canvas_nodes} nodes on canvas "
            f"{seeded.canvas_id!r} in {time.monotonic() - t0:.1f} s",
            file=sys.stderr,
        )
        if seeded.canvas_nodes < args.nodes:
            raise RuntimeError(f"the server holds {seeded.canvas_nodes} of the {args.nodes} nodes")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
            try:
                for i in range(args.runs):
                    loads.append(measure_loads(browser, server.url, seeded, timeout_ms))
                    s = loads[-1]
                    warm = f"{s.warm_ms:.0f} ms" if s.warm_ms is not None else "-"
                    print(
                        f"bench: load {i + 1}/{args.runs}: cold {s.cold_ms:.0f} ms, warm {warm}",
                        file=sys.stderr,
                    )
                drags, pans, canvas = measure_canvas(
                    browser, server.url, seeded, args.runs, args.drag_seconds, timeout_ms, args.screenshots
                )
            finally:
                browser.close()
    except (RuntimeError, OSError, httpx.HTTPError, subprocess.SubprocessError, PlaywrightError) as exc:
        print(f"bench: failed: {exc}\n--- server log (last lines) ---\n{server.log_tail()}", file=sys.stderr)
        return 2
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    cold = [s.cold_ms for s in loads]
    warm_ms = [s.warm_ms for s in loads if s.warm_ms is not None]
    sw_served = sum(1 for s in loads if s.warm and s.warm["controlled"] and s.warm["worker_start"] > 0)
    notes = sorted({s.note for s in loads if s.note})
    dcl = statistics.median(s.cold["dom_content_loaded"] or 0 for s in loads)
    js = loads[0].js
    js_gzip = sum(f["gzip9"] for f in js) / 1024
    js_wire = sum(f["wire"] for f in js) / 1024
    js_raw = sum(f["bytes"] for f in js) / 1024
    encodings = ",".join(sorted({f["encoding"] for f in js})) or "-"
    build_files, build_gzip = build_js()
    rows = [
        timing_row(
            "cold load → interactive", cold, COLD_TARGET_MS, f"DOMContentLoaded {dcl:.0f} ms", args.runs
        ),
        timing_row(
            "warm load (SW) → interactive",
            warm_ms,
            WARM_TARGET_MS,
            f"{sw_served}/{len(loads)} navigations answered by the service worker",
            args.runs,
        ),
        Row(
            measure="first-load JS (gzip -9)",
            unit="KB",
            samples=len(js),
            median=round(js_gzip, 1),
            p95=0.0,
            max=0.0,
            target=f"< {JS_TARGET_KB:g} KB",
            passed=bool(js) and js_gzip < JS_TARGET_KB,
            detail=(
                f"{len(js)} files, {js_raw:.0f} KB raw, {js_wire:.1f} KB on the wire ({encodings}); "
                f"all {build_files} build JS files {build_gzip / 1024:.0f} KB gzip (SW precache)"
            ),
        ),
    ]
    for name, runs_ in (("drag node", drags), ("pan canvas", pans)):
        frames = [d for r in runs_ for d in r.frames]
        moved = all(r.moved_px > 20 for r in runs_)
        rate = sum(r.mouse_events for r in runs_) / max(1e-9, sum(r.seconds for r in runs_))
        rows.append(
            frame_row(
                f"{name}, {seeded.canvas_nodes} nodes",
                frames,
                moved,
                f"{len(runs_)} x {args.drag_seconds:g} s, {rate:.0f} mouse events/s",
            )
        )
    failed = [r.measure for r in rows if not r.passed]

    print()
    load = " ".join(f"{x:g}" for x in info["loadavg_before"])
    print(
        f"machine: {info['nproc']} CPUs, {info['implementation']} {info['python']}, {info['platform']}, "
        f"load average before the run {load}, after {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(f"server:  studio serve (Granian {info['granian']}, 1 worker) on loopback, SQLite, embedded broker")
    print(
        f"browser: {version}, headless, {' '.join(CHROMIUM_FLAGS)}, {VIEWPORT['width']}x{VIEWPORT['height']}"
    )
    print(
        f"canvas:  {canvas['nodes_in_dom']} nodes and {canvas['edges_in_dom']} edges in the DOM after fitView "
        f"({canvas['viewport']}), opened in {canvas['open_s']} s"
    )
    print(
        "timing:  navigation start → first frame with every project card and the New project form enabled; "
        "p95 is nearest-rank"
    )
    for note in notes:
        print(f"note:    {note}")
    print(f"command: {command}")
    print()
    print_table(rows)
    print()
    print("all targets met" if not failed else f"targets missed: {', '.join(failed)}")

    if args.json:
        doc = {
            "command": command,
            "machine": info,
            "browser": {"version": version, "flags": CHROMIUM_FLAGS, "viewport": VIEWPORT},
            "runs": args.runs,
            "nodes": seeded.canvas_nodes,
            "projects": args.projects,
            "canvas": canvas,
            "results": [asdict(r) for r in rows],
            "loads": [asdict(s) for s in loads],
            "drag_runs": [{"moved_px": round(r.moved_px, 1), "mouse_events": r.mouse_events} for r in drags],
            "pan_runs": [{"moved_px": round(r.moved_px, 1), "mouse_events": r.mouse_events} for r in pans],
            "notes": notes,
            "passed": not failed,
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
