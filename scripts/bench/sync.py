"""Sync benchmark: propagation latency and idle connections, studio vs the reference y-websocket server.

Runs the same load, one server after the other, against

- ``studio``: a real ``studio serve`` (Granian, one worker) on a free port, data in a fresh
  temporary folder, rate limits raised out of the way (every client comes from 127.0.0.1). It
  persists every update (SQLite log) and commits the document to Git after 1 s of quiet;
- ``reference``: ``@y/websocket-server`` 0.1.1 from ``tests/interop`` (in-memory documents, or
  LevelDB with ``--reference-persist``).

Two measurements per server:

1. Propagation latency, for each room size in ``--sizes`` (10, 100, 500 clients in one project):
   one editor client changes a node of the canvas (``canvases.main.nodes.bench``: ``x`` = a
   sequence number, ``params.sent`` = the send time) and every other client records when the
   update arrives and is applied to its document. Per edit, "all" is the time until the last
   client has it; p50/p99 are over the ``--edits`` edits (after a few unmeasured warm-up edits).
   The next edit goes once every client has the previous one (closed loop).
2. Idle connections: ``--idle`` clients (2,000) connect to ``--idle-rooms`` rooms, sync, and stay
   quiet. Reported: how many the server holds (synced), the server's RSS with them open (VmRSS of
   the Granian worker(s), i.e. the children of ``studio serve``; of the node process for the
   reference), RSS per connection over the baseline, and how long an HTTP request takes
   meanwhile.

All clients are Python asyncio clients in this one process (``websockets`` + pycrdt + the framing
of ``sync/protocol.py``), so on a small machine they share the CPU with the server: latencies at
500 clients include the time this process takes to decode 500 copies of each update. The load is
the same for both servers.

    .venv/bin/python scripts/bench/sync.py [--sizes 10,100,500] [--edits 20] [--idle 2000]
        [--idle-rooms 10] [--servers studio,reference] [--reference-persist] [--json out.json] [--strict]

Exits 0 whatever the numbers, unless ``--strict`` is given and a target is missed (2 when the
bench itself cannot run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import httpx
import websockets
from pycrdt import Doc, Map

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# This file is scripts/bench/sync.py: keep its folder off the path so `sync` is the project's package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

from sync import protocol  # noqa: E402
from sync.protocol import Kind  # noqa: E402
from tests.interop_driver import (  # noqa: E402
    INTEROP_DIR,
    SERVER_SCRIPT,
    ensure_node_modules,
    free_port,
    node_available,
    wait_for_port,
)

P99_TARGET_MS = 50.0  # at 100 clients
P99_TARGET_CLIENTS = 100
IDLE_TARGET_CONNS = 5000
IDLE_TARGET_MB = 1024.0
# "No worse than the reference": within this factor or this many ms, whichever is larger (noise).
REFERENCE_SLACK = (1.10, 2.0)
WARMUP_EDITS = 3


def load_api_bench() -> ModuleType:
    """scripts/bench/api.py, for its ``Server`` (how benches start ``studio serve``)."""
    spec = importlib.util.spec_from_file_location("bench_api", HERE / "api.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_api"] = module
    spec.loader.exec_module(module)
    return module


def rss_kb(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's open-file limit (inherited by the servers it starts); return the new one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# -- the servers ----------------------------------------------------------------------------------------


class Target(Protocol):
    name: str

    def start(self) -> None: ...

    def prepare(self, rooms: int) -> list[str]: ...

    def url(self, room: str) -> str: ...

    def pids(self) -> list[int]: ...

    def cpu_pids(self) -> list[int]: ...

    def http_probe(self) -> str: ...

    def log_tail(self) -> str: ...

    def stop(self) -> None: ...


class StudioTarget:
    name = "studio"

    def __init__(self, api_bench: ModuleType, tmp: Path) -> None:
        self.server = api_bench.Server(tmp)
        self.token = ""

    def start(self) -> None:
        self.server.start()

    def prepare(self, rooms: int) -> list[str]:
        with httpx.Client(base_url=self.server.url, timeout=60) as http:
            r = http.post("/api/auth/guest")
            r.raise_for_status()
            self.token = r.json()["token"]
            headers = {"Authorization": f"Bearer {self.token}"}
            ids = []
            for i in range(rooms):
                body = {"name": f"Sync bench {i:04d} {os.getpid()}", "template": "three-act"}
                r = http.post("/api/projects", json=body, headers=headers)
                if r.status_code != 201:
                    raise RuntimeError(f"POST /api/projects answered {r.status_code}: {r.text[:300]}")
                ids.append(r.json()["id"])
        return ids

    def url(self, room: str) -> str:
        return f"ws://127.0.0.1:{self.server.port}/sync/{room}?token={self.token}"

    def pids(self) -> list[int]:
        return list(self.server.worker_pids())

    def cpu_pids(self) -> list[int]:
        return [self.server.proc.pid, *self.server.worker_pids()] if self.server.proc else []

    def http_probe(self) -> str:
        return f"{self.server.url}/api/health"

    def log_tail(self) -> str:
        return str(self.server.log_tail())

    def stop(self) -> None:
        self.server.stop()


class ReferenceTarget:
    """``@y/websocket-server`` (the y-websocket reference), started like ``tests/interop/reference-server.sh``."""

    def __init__(self, tmp: Path, persist: bool) -> None:
        self.name = "reference+leveldb" if persist else "reference"
        self.tmp = tmp
        self.persist = persist
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = tmp / "reference.log"

    def start(self) -> None:
        ensure_node_modules()
        self.port = free_port()
        env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(self.port)}
        if self.persist:
            env["YPERSISTENCE"] = str(self.tmp / "leveldb")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                ["node", str(SERVER_SCRIPT)],
                cwd=INTEROP_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_port("127.0.0.1", self.port, 15, self.proc)  # type: ignore[arg-type]

    def prepare(self, rooms: int) -> list[str]:
        return [f"bench-{os.getpid()}-{i:04d}" for i in range(rooms)]

    def url(self, room: str) -> str:
        return f"ws://127.0.0.1:{self.port}/{room}"

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc else []

    def cpu_pids(self) -> list[int]:
        return self.pids()

    def http_probe(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-40:])
        return "(no log)"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


class GranianFloorTarget(ReferenceTarget):
    """``scripts/bench/granian_floor.py`` under the same Granian: the memory per idle connection
    that any app served by Granian pays before its own code holds anything (idle run only)."""

    latency = False

    def __init__(self, api_bench: ModuleType, tmp: Path) -> None:
        super().__init__(tmp, persist=False)
        self.api_bench = api_bench
        self.name = "granian-floor"
        self.log_path = tmp / "granian-floor.log"

    def start(self) -> None:
        self.port = free_port()
        granian = Path(sys.executable).with_name("granian")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [str(granian), "--interface", "asgi", "--host", "127.0.0.1", "--port", str(self.port),
                 "--workers", "1", "--log-level", "warning", "scripts.bench.granian_floor:app"],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for_port("127.0.0.1", self.port, 15, self.proc)  # type: ignore[arg-type]

    def prepare(self, rooms: int) -> list[str]:
        return [f"floor-{i:04d}" for i in range(rooms)]

    def pids(self) -> list[int]:
        """The Granian worker (the child of the server process), as for the studio."""
        return list(self.api_bench.child_pids(self.proc.pid)) if self.proc else []

    def cpu_pids(self) -> list[int]:
        return [self.proc.pid, *self.pids()] if self.proc else []


# -- the clients ------------------------------------------------------------------------------------------


class Peer:
    """One y-websocket connection. With ``doc``, updates are applied to a pycrdt document and
    ``on_update(peer, arrival)`` is called after each; without, the peer only answers the sync."""

    def __init__(self, url: str, doc: bool = False, on_update: Callable[[Peer, float], None] | None = None):
        self.url = url
        self.doc: Doc[Any] | None = Doc() if doc else None
        self.on_update = on_update
        self.ws: Any = None
        self.synced = asyncio.Event()
        self.reader: asyncio.Task[None] | None = None
        self.close_code: int | None = None
        self.seen: set[int] = set()

    async def open(self, wait_s: float) -> None:
        self.ws = await websockets.connect(
            self.url,
            max_size=protocol.MAX_FRAME_BYTES,
            ping_interval=None,
            compression=None,
            open_timeout=wait_s,
            close_timeout=2,
        )
        self.reader = asyncio.get_running_loop().create_task(self._read())
        state = self.doc.get_state() if self.doc is not None else b"\x00"
        await self.ws.send(protocol.sync_step1(state))
        async with asyncio.timeout(wait_s):
            waiter = asyncio.ensure_future(self.synced.wait())
            done, _ = await asyncio.wait({waiter, self.reader}, return_when=asyncio.FIRST_COMPLETED)
            if waiter not in done:
                waiter.cancel()
                raise ConnectionError(f"closed before sync (code {self.close_code})")

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                arrival = time.perf_counter()
                message = protocol.parse(frame)
                if message.kind is Kind.SYNC_STEP1:
                    update = self.doc.get_update(message.payload) if self.doc is not None else b"\x00\x00"
                    await self.ws.send(protocol.sync_step2(update))
                elif message.kind in (Kind.SYNC_STEP2, Kind.SYNC_UPDATE):
                    if self.doc is not None:
                        self.doc.apply_update(message.payload)
                    if message.kind is Kind.SYNC_STEP2:
                        self.synced.set()
                    elif self.on_update is not None:
                        self.on_update(self, arrival)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = getattr(self.ws, "close_code", None)

    async def send_update(self, update: bytes) -> None:
        await self.ws.send(protocol.sync_update(update))

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(BaseException):
                await self.reader


async def open_all(peers: list[Peer], concurrency: int, wait_s: float) -> list[Peer]:
    """Open every peer (``concurrency`` at a time); return those that synced."""
    sem = asyncio.Semaphore(concurrency)

    async def one(peer: Peer) -> bool:
        async with sem:
            try:
                await peer.open(wait_s)
                return True
            except (OSError, TimeoutError, ConnectionError, websockets.WebSocketException):
                return False

    results = await asyncio.gather(*(one(p) for p in peers))
    return [p for p, ok in zip(peers, results, strict=True) if ok]


async def close_all(peers: list[Peer]) -> None:
    for i in range(0, len(peers), 500):
        await asyncio.gather(*(p.close() for p in peers[i : i + 500]))


def bench_node(doc: Doc[Any]) -> Map[Any] | None:
    try:
        node: Map[Any] = doc.get("canvases", type=Map)["main"]["nodes"]["bench"]
        return node
    except (KeyError, TypeError):
        return None


# -- measurements -----------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # nearest rank
    return ordered[int(rank) - 1]


@dataclass
class Row:
    server: str
    clients: str
    edits: int = 0
    lost: int = 0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    max_ms: float = float("nan")
    each_p50_ms: float = float("nan")
    each_p99_ms: float = float("nan")
    idle_conns: int | None = None
    idle_wanted: int | None = None
    rss_mb: float | None = None
    kb_per_conn: float | None = None
    http_ms: str = ""
    server_cpu_s: float = 0.0
    seconds: float = 0.0
    all_ms: list[float] = field(default_factory=list)  # per measured edit, in order
    notes: list[str] = field(default_factory=list)


class Round:
    """Bookkeeping of one room: which client has which edit, and when."""

    def __init__(self, receivers: int) -> None:
        self.receivers = receivers
        self.remaining: dict[int, int] = {}
        self.done: dict[int, asyncio.Event] = {}
        self.each: dict[int, list[float]] = {}

    def expect(self, seq: int) -> asyncio.Event:
        self.remaining[seq] = self.receivers
        self.each[seq] = []
        self.done[seq] = asyncio.Event()
        return self.done[seq]

    def on_update(self, peer: Peer, arrival: float) -> None:
        assert peer.doc is not None
        node = bench_node(peer.doc)
        if node is None:
            return
        try:
            seq = int(node["x"])
            sent = float(node["params"]["sent"])
        except (KeyError, TypeError, ValueError):
            return
        if seq in peer.seen or seq not in self.remaining:
            return
        peer.seen.add(seq)
        self.each[seq].append(arrival - sent)
        self.remaining[seq] -= 1
        if self.remaining[seq] == 0:
            self.done[seq].set()


async def measure_latency(target: Target, room: str, clients: int, edits: int, wait_s: float) -> Row:
    row = Row(target.name, str(clients), edits=edits)
    started = time.monotonic()
    rnd = Round(clients - 1)
    editor = Peer(target.url(room), doc=True)
    receivers = [Peer(target.url(room), doc=True, on_update=rnd.on_update) for _ in range(clients - 1)]
    opened = await open_all([editor, *receivers], concurrency=50, wait_s=30)
    try:
        if editor not in opened or len(opened) < clients:
            row.notes.append(f"only {len(opened)} of {clients} clients synced")
            rnd.receivers = len([p for p in opened if p is not editor])
            if editor not in opened:
                return row
        doc = editor.doc
        assert doc is not None
        outgoing: list[bytes] = []
        doc.observe(lambda event: outgoing.append(event.update))

        async def send(mutate: Callable[[], None]) -> None:
            with doc.transaction():
                mutate()
            batch, outgoing[:] = list(outgoing), []
            for update in batch:
                await editor.send_update(update)

        def setup() -> None:
            canvases = doc.get("canvases", type=Map)
            if "main" not in canvases:  # the reference starts from an empty document
                canvases["main"] = Map({"name": "Main", "order": 0, "nodes": Map(), "edges": Map()})
            nodes = canvases["main"]["nodes"]
            nodes["bench"] = Map({"type": "bench", "x": -1, "y": 0, "params": Map({"sent": 0.0})})

        done = rnd.expect(-1)
        await send(setup)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), wait_s)
        node = bench_node(doc)
        assert node is not None
        params = node["params"]
        cpu0 = cpu_seconds(target.cpu_pids())
        alls: list[float] = []
        each: list[float] = []
        for seq in range(WARMUP_EDITS + edits):
            done = rnd.expect(seq)

            def edit(seq: int = seq) -> None:
                params["sent"] = time.perf_counter()
                node["x"] = seq

            await send(edit)
            try:
                await asyncio.wait_for(done.wait(), wait_s)
            except TimeoutError:
                if seq >= WARMUP_EDITS:
                    row.lost += rnd.remaining[seq]
            if seq >= WARMUP_EDITS:
                each += rnd.each[seq]
                if rnd.remaining[seq] == 0:
                    alls.append(max(rnd.each[seq], default=0.0))
            await asyncio.sleep(0.01)
        row.server_cpu_s = round(cpu_seconds(target.cpu_pids()) - cpu0, 2)
        row.p50_ms, row.p99_ms = percentile(alls, 50) * 1000, percentile(alls, 99) * 1000
        row.max_ms = max(alls, default=float("nan")) * 1000
        row.all_ms = [round(a * 1000, 2) for a in alls]
        row.each_p50_ms, row.each_p99_ms = percentile(each, 50) * 1000, percentile(each, 99) * 1000
        return row
    finally:
        await close_all(opened)
        row.seconds = round(time.monotonic() - started, 1)


async def http_time(url: str) -> str:
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            t0 = time.perf_counter()
            r = await http.get(url)
            return f"{(time.perf_counter() - t0) * 1000:.0f} ({r.status_code})"
    except httpx.HTTPError as exc:
        return f"failed: {type(exc).__name__}"


async def measure_idle(target: Target, rooms: list[str], count: int, settle: float) -> Row:
    row = Row(target.name, "idle")
    started = time.monotonic()
    # Baseline: every room loaded once (a room's document is not per-connection memory).
    warm = await open_all([Peer(target.url(r)) for r in rooms], concurrency=20, wait_s=30)
    await close_all(warm)
    await asyncio.sleep(settle)
    base = sum(rss_kb(p) for p in target.pids())
    peers = [Peer(target.url(rooms[i % len(rooms)])) for i in range(count)]
    opened = await open_all(peers, concurrency=100, wait_s=30)
    await asyncio.sleep(settle)
    alive = [p for p in opened if p.reader is not None and not p.reader.done()]
    held = sum(rss_kb(p) for p in target.pids())
    row.http_ms = await http_time(target.http_probe())
    row.idle_conns, row.idle_wanted = len(alive), count
    row.rss_mb = round(held / 1024, 1)
    row.kb_per_conn = round((held - base) / len(alive), 1) if alive else None
    if len(alive) < count:
        row.notes.append(f"{count - len(alive)} of {count} idle clients did not sync (or were dropped)")
    await close_all(opened)
    row.seconds = round(time.monotonic() - started, 1)
    return row


async def run_target(target: Target, args: argparse.Namespace) -> list[Row]:
    rooms = await asyncio.to_thread(target.prepare, len(args.sizes) + args.idle_rooms)
    idle = []
    if args.idle > 0:  # first, on a fresh server: its baseline is not inflated by the latency runs
        print(
            f"bench: {target.name}: {args.idle} idle connections over {args.idle_rooms} rooms",
            file=sys.stderr,
        )
        idle.append(await measure_idle(target, rooms[len(args.sizes) :], args.idle, args.settle))
    rows = []
    if not getattr(target, "latency", True):  # the floor holds connections; it broadcasts nothing
        return idle
    for room, size in zip(rooms, args.sizes, strict=False):
        print(f"bench: {target.name}: latency, {size} clients, {args.edits} edits", file=sys.stderr)
        rows.append(await measure_latency(target, room, size, args.edits, args.timeout))
    return rows + idle


# -- judging and printing ---------------------------------------------------------------------------------


def judge(rows: list[Row], args: argparse.Namespace) -> list[tuple[str, str, bool | None]]:
    """(target, what was measured, passed); ``None`` when it could not be judged."""
    out: list[tuple[str, str, bool | None]] = []
    by = {(r.server, r.clients): r for r in rows}
    studio = by.get(("studio", str(P99_TARGET_CLIENTS)))
    if studio is not None:
        ok = studio.p99_ms < P99_TARGET_MS and studio.lost == 0
        out.append(
            (f"p99 < {P99_TARGET_MS:g} ms at {P99_TARGET_CLIENTS} clients", f"{studio.p99_ms:.1f} ms", ok)
        )
    idle = by.get(("studio", "idle"))
    if idle is not None and idle.rss_mb is not None and idle.kb_per_conn is not None:
        all_held = idle.idle_conns == idle.idle_wanted
        if (idle.idle_wanted or 0) >= IDLE_TARGET_CONNS:
            what = f"{idle.idle_conns} held, {idle.rss_mb:.0f} MB"
            ok = all_held and idle.rss_mb < IDLE_TARGET_MB
        else:
            base = idle.rss_mb - (idle.idle_conns or 0) * idle.kb_per_conn / 1024
            projected = base + IDLE_TARGET_CONNS * idle.kb_per_conn / 1024
            what = (
                f"projected {projected:.0f} MB from {idle.idle_conns} of {idle.idle_wanted} held "
                f"(run --idle {IDLE_TARGET_CONNS} to measure)"
            )
            ok = all_held and projected < IDLE_TARGET_MB
        out.append((f"{IDLE_TARGET_CONNS:,} idle connections under {IDLE_TARGET_MB / 1024:g} GB", what, ok))
    reference = next((r.server for r in rows if r.server.startswith("reference")), None)
    if reference is not None and any(r.server == "studio" for r in rows):
        factor, plus = REFERENCE_SLACK
        worse = []
        for size in args.sizes:
            ours, ref = by.get(("studio", str(size))), by.get((reference, str(size)))
            if ours is None or ref is None:
                continue
            if not ours.p99_ms <= max(ref.p99_ms * factor, ref.p99_ms + plus) or ours.lost > ref.lost:
                worse.append(f"p99 at {size}: {ours.p99_ms:.1f} vs {ref.p99_ms:.1f} ms")
        ours_idle, ref_idle = by.get(("studio", "idle")), by.get((reference, "idle"))
        if ours_idle and ref_idle and ours_idle.kb_per_conn is not None and ref_idle.kb_per_conn is not None:
            if (ours_idle.idle_conns or 0) < (ref_idle.idle_conns or 0):
                worse.append(f"idle held: {ours_idle.idle_conns} vs {ref_idle.idle_conns}")
            if ours_idle.kb_per_conn > max(ref_idle.kb_per_conn * factor, ref_idle.kb_per_conn + plus):
                worse.append(f"KB/conn: {ours_idle.kb_per_conn:.1f} vs {ref_idle.kb_per_conn:.1f}")
        what = "; ".join(worse) if worse else "p99 at every size, idle connections held, KB/conn"
        out.append((f"no worse than the {reference} while persisting", what, not worse))
    floor, ours_idle = by.get(("granian-floor", "idle")), by.get(("studio", "idle"))
    if floor and ours_idle and floor.kb_per_conn is not None and ours_idle.kb_per_conn is not None:
        own = ours_idle.kb_per_conn - floor.kb_per_conn
        out.append((
            "KB per idle connection held by Granian itself (bare ASGI app) / by the studio's own code",
            f"{floor.kb_per_conn:.1f} / {own:.1f}",
            None,
        ))  # fmt: skip
    return out


def fmt_ms(value: float) -> str:
    return "-" if value != value else f"{value:.1f}"  # NaN: not measured


def print_table(rows: list[Row]) -> None:
    head = ("server", "clients", "p50 ms", "p99 ms", "max ms", "each p50", "each p99", "lost",
            "idle conns", "RSS MB", "KB/conn", "HTTP ms", "server CPU s")  # fmt: skip
    cells = []
    for r in rows:
        idle = "-" if r.idle_conns is None else f"{r.idle_conns}/{r.idle_wanted}"
        cells.append((
            r.server, r.clients, fmt_ms(r.p50_ms), fmt_ms(r.p99_ms), fmt_ms(r.max_ms), fmt_ms(r.each_p50_ms),
            fmt_ms(r.each_p99_ms), "-" if r.clients == "idle" else str(r.lost), idle,
            "-" if r.rss_mb is None else f"{r.rss_mb:.1f}", "-" if r.kb_per_conn is None else f"{r.kb_per_conn:.1f}",
            r.http_ms or "-", "-" if r.clients == "idle" else f"{r.server_cpu_s:.1f}",
        ))  # fmt: skip
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]

    def line(values: tuple[str, ...]) -> str:
        return "  ".join(
            v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths, strict=True))
        )

    print(line(head))
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print(line(c))
    for r in rows:
        for note in r.notes:
            print(f"note: {r.server} {r.clients}: {note}")


# -- main -------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--sizes", default="10,100,500", help="clients per room for the latency runs (10,100,500)")
    p.add_argument(
        "--edits", type=int, default=100, help="measured edits per size, after 3 warm-up edits (100)"
    )
    p.add_argument("--idle", type=int, default=2000, help="idle connections to open, 0 to skip (2000)")
    p.add_argument("--idle-rooms", type=int, default=10, help="rooms the idle connections spread over (10)")
    p.add_argument("--settle", type=float, default=2.0, help="seconds to wait before reading RSS (2)")
    p.add_argument(
        "--timeout", type=float, default=10.0, help="seconds an edit may take to reach everyone (10)"
    )
    p.add_argument(
        "--servers",
        default="studio,reference,granian-floor",
        help="any of studio, reference, granian-floor (a bare ASGI app under the same Granian: "
        "the per-connection memory Granian itself holds; idle run only)",
    )
    p.add_argument(
        "--reference-persist", action="store_true", help="run the reference with LevelDB (YPERSISTENCE)"
    )
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results here")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = p.parse_args(argv)
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        p.error("--sizes: comma-separated numbers")
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if not set(args.servers) <= {"studio", "reference", "granian-floor"} or not args.servers:
        p.error("--servers: studio, reference, granian-floor or several, comma-separated")
    if any(s < 2 for s in args.sizes) or args.edits < 1 or args.idle < 0 or args.idle_rooms < 1:
        p.error("--sizes must be >= 2, --edits and --idle-rooms >= 1, --idle >= 0")
    return args


async def run_all(targets: list[Target], args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    for target in targets:
        print(f"bench: starting {target.name}", file=sys.stderr)
        await asyncio.to_thread(target.start)
        try:
            rows += await run_target(target, args)
        except Exception:
            print(f"bench: {target.name} failed; its log:\n{target.log_tail()}", file=sys.stderr)
            raise
        finally:
            await asyncio.to_thread(target.stop)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = shlex.join(["scripts/bench/sync.py", *(sys.argv[1:] if argv is None else argv)])
    need = 2 * (max([args.idle, *args.sizes]) + 200) + 1024
    limit = raise_fd_limit(need)
    if limit < need:
        print(f"bench: open-file limit is {limit}, {need} wanted: expect failed connections", file=sys.stderr)
    if "reference" in args.servers and not node_available():
        print("bench: node/npm not found: the reference server is skipped", file=sys.stderr)
        args.servers.remove("reference")
    tmp = Path(tempfile.mkdtemp(prefix="studio-sync-bench-"))
    targets: list[Target] = []
    if "studio" in args.servers:
        (tmp / "studio").mkdir()
        targets.append(StudioTarget(load_api_bench(), tmp / "studio"))
    if "reference" in args.servers:
        targets.append(ReferenceTarget(tmp, args.reference_persist))
    if "granian-floor" in args.servers and args.idle > 0:
        targets.append(GranianFloorTarget(load_api_bench(), tmp))
    loadavg = " ".join(f"{x:.2f}" for x in os.getloadavg())
    runner: Callable[[Any], Any] = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    started = time.monotonic()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    try:
        rows: list[Row] = runner(run_all(targets, args))
    except (RuntimeError, OSError, httpx.HTTPError, subprocess.SubprocessError) as exc:
        print(f"bench: failed: {exc}", file=sys.stderr)
        return 2
    finally:
        for t in targets:
            t.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    elapsed = time.monotonic() - started

    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 0
    print()
    print(f"machine: {cpus} CPUs, {platform.python_implementation()} {platform.python_version()}, "
          f"{platform.platform()}, load average before the run {loadavg}")  # fmt: skip
    print("servers: studio serve (Granian, 1 worker, SQLite update log + Git materializer) vs "
          f"@y/websocket-server 0.1.1 ({'LevelDB' if args.reference_persist else 'in memory'}), one after the other")  # fmt: skip
    print(
        f"clients: python asyncio (websockets + pycrdt) in one process, {client_cpu:.0f} s CPU over {elapsed:.0f} s"
    )
    print("latency: per edit, until every other client in the room applied it ('all': p50/p99/max over edits); "
          "'each': per client and edit")  # fmt: skip
    print("idle:    RSS of the worker process(es) with the idle connections open; KB/conn over the baseline "
          "(rooms loaded, no connections); HTTP ms: a request to the server meanwhile")  # fmt: skip
    print(f"command: .venv/bin/python {command}")
    print()
    print_table(rows)
    print()
    verdicts = judge(rows, args)
    for name, what, ok in verdicts:
        print(f"{'PASS' if ok else 'FAIL' if ok is not None else '----'}  {name}: {what}")
    if args.json:
        doc = {
            "command": command,
            "cpus": cpus,
            "rows": [asdict(r) for r in rows],
            "targets": [{"target": n, "measured": w, "passed": ok} for n, w, ok in verdicts],
        }
        args.json.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    missed = any(ok is False for _, _, ok in verdicts)
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
