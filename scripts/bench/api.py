"""API benchmark: p50/p99 latency and throughput of project list, get and create.

Starts a real ``studio serve`` (Granian) on a free port with its data in a fresh temporary folder,
seeds one guest account per client (each owning ``--projects`` projects), then drives three
operations with ``--clients`` concurrent keep-alive connections, each authenticated as its own
user:

- ``list``   GET  /api/projects
- ``get``    GET  /api/projects/{id}         (the user's own projects, in turn)
- ``create`` POST /api/projects              (a three-act project, a new Git repository; unique names)

The load generator is ``wrk`` (a C program, so the client is not the bottleneck on a small machine
shared with the server); without it, an asyncio client speaking raw HTTP/1.1 keep-alive. Rate
limits are raised out of the way: this measures the server, not the rate limiter.

    .venv/bin/python scripts/bench/api.py [--clients 50] [--duration 10] [--json out.json] [--strict]

Exits 0 whatever the numbers, unless ``--strict`` is given and a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ("list", "get", "create")
# Targets on the project's 2-core machines: p99 in milliseconds, and list throughput.
P99_TARGET_MS = {"list": 20.0, "get": 20.0, "create": 150.0}
MIN_RPS = {"list": 2000.0}
_SAFE = re.compile(r"^[A-Za-z0-9_.:-]+$")


# -- the server -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_pids(parent: int) -> list[int]:
    """The processes whose parent is ``parent``."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent:
            pids.append(int(stat.parent.name))
    return sorted(pids)


class Server:
    """``studio serve`` in its own process group, its output in ``server.log`` beside its data."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        env = {
            **os.environ,
            "STUDIO_DATA_DIR": str(self.tmp / "data"),
            "WORKSPACE_ROOT": str(self.tmp / "workspace"),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "STUDIO_BROKER_URL": "",  # the embedded broker, whatever .env says
            "STUDIO_SEED_SAMPLES": "false",
            "STUDIO_RATE_LIMIT_USER": "1000000",
            "STUDIO_RATE_LIMIT_IP": "1000000",
            "STUDIO_RATE_LIMIT_AUTH": "1000000",
            "STUDIO_LOG_FORMAT": "json",
        }
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"studio serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(
            f"studio serve did not answer /api/health within {timeout:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process and its workers so far."""
        if self.proc is None:
            return 0.0
        total = 0
        for pid in (self.proc.pid, *self.worker_pids()):
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        return total / os.sysconf("SC_CLK_TCK")

    def worker_pids(self) -> list[int]:
        """The Granian worker processes: the children of the server process."""
        return child_pids(self.proc.pid) if self.proc is not None else []

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        # Granian's workers share the group; make sure none outlives its parent.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


# -- seeding ----------------------------------------------------------------------------------------


@dataclass
class User:
    token: str
    project_ids: list[str] = field(default_factory=list)


async def seed(url: str, users: int, projects: int, concurrency: int = 8) -> list[User]:
    """``users`` guest accounts, each owning ``projects`` three-act projects."""
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def post(path: str, token: str | None = None, body: Any = None) -> dict[str, Any]:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with sem:
                r = await client.post(path, json=body, headers=headers)
            if r.status_code != 201:
                raise RuntimeError(f"seeding: POST {path} answered {r.status_code}: {r.text[:300]}")
            data: dict[str, Any] = r.json()
            return data

        async def one(i: int) -> User:
            user = User(token=(await post("/api/auth/guest"))["token"])
            for j in range(projects):
                body = {"name": f"Seed {i:03d} {j:03d}", "template": "three-act"}
                user.project_ids.append((await post("/api/projects", user.token, body))["id"])
            return user

        return list(await asyncio.gather(*(one(i) for i in range(users))))


# -- results ----------------------------------------------------------------------------------------


@dataclass
class Result:
    operation: str
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_pct: float = 0.0  # of one core, over the measured run
    client_cpu_pct: float = 0.0
    target: str = ""
    passed: bool = False

    def judge(self) -> None:
        checks = [f"p99 < {P99_TARGET_MS[self.operation]:g} ms"]
        ok = self.p99_ms < P99_TARGET_MS[self.operation] and self.errors == 0 and self.requests > 0
        if self.operation in MIN_RPS:
            checks.append(f">= {MIN_RPS[self.operation]:,.0f} req/s")
            ok = ok and self.rps >= MIN_RPS[self.operation]
        self.target = ", ".join(checks)
        self.passed = ok


def _ms(us: float) -> float:
    return round(us / 1000.0, 2)


# -- wrk --------------------------------------------------------------------------------------------


def find_wrk(install: bool) -> str | None:
    """``wrk`` on PATH; as root on Debian, installed with apt-get once if missing."""
    path = shutil.which("wrk")
    if path or not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return path
    print("bench: wrk is missing; installing it with apt-get (Debian package wrk) ...", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install_cmd = ["apt-get", "install", "-y", "-q", "wrk"]
    for cmd in (install_cmd, ["apt-get", "update", "-q"], install_cmd):
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, timeout=300, check=False)
        except (OSError, subprocess.TimeoutExpired):
            break
        if cmd is install_cmd and done.returncode == 0:
            break
    return shutil.which("wrk")


def _lua_str(value: str) -> str:
    if not _SAFE.match(value):
        raise ValueError(f"unexpected characters in {value!r}")
    return f'"{value}"'


LUA = """
-- Generated by scripts/bench/api.py. wrk's Lua API has no per-connection hook, so each thread
-- takes its share of the users and its requests go round them in turn (one user per connection
-- when wrk runs a thread per connection).
local op = {op}
local tag = {tag}
local nthreads = {threads}
local users = {{
{users}
}}

local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

local mine, reqs, n = {{}}, {{}}, 0
local host

function init(args)
  host = wrk.headers["Host"] or (wrk.host .. ":" .. wrk.port)
  for i = 1, #users do
    if (i - 1) % nthreads == tid then mine[#mine + 1] = users[i] end
  end
  if op == "list" then
    for _, u in ipairs(mine) do
      reqs[#reqs + 1] = wrk.format("GET", "/api/projects", {{Host = host, Authorization = "Bearer " .. u.token}})
    end
  elseif op == "get" then
    -- Round the users first, then their projects, so neighbouring requests are different users.
    for j = 1, #mine[1].ids do
      for _, u in ipairs(mine) do
        local pid = u.ids[((j - 1) % #u.ids) + 1]
        reqs[#reqs + 1] = wrk.format("GET", "/api/projects/" .. pid, {{Host = host, Authorization = "Bearer " .. u.token}})
      end
    end
  end
end

function request()
  n = n + 1
  if op == "create" then
    local u = mine[((n - 1) % #mine) + 1]
    local body = string.format('{{"name":"Bench %s %d-%d","template":"three-act"}}', tag, tid, n)
    return wrk.format("POST", "/api/projects", {{
      Host = host, Authorization = "Bearer " .. u.token, ["Content-Type"] = "application/json"
    }}, body)
  end
  return reqs[((n - 1) % #reqs) + 1]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {{"requests":%.0f,"duration_us":%.0f,"p50_us":%.0f,"p99_us":%.0f,"max_us":%.0f,' ..
    '"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def wrk_script(path: Path, op: str, tag: str, threads: int, users: list[User]) -> None:
    rows = []
    for u in users:
        ids = ", ".join(_lua_str(i) for i in u.project_ids)
        rows.append(f"  {{token = {_lua_str(u.token)}, ids = {{{ids}}}}},")
    text = LUA.format(op=_lua_str(op), tag=_lua_str(tag), threads=threads, users="\n".join(rows))
    path.write_text(text)


def wrk_threads(clients: int, requested: int) -> int:
    """The most threads <= ``requested`` that divide ``clients`` (wrk gives each clients // threads)."""
    for t in range(max(1, min(requested, clients)), 0, -1):
        if clients % t == 0:
            return t
    return 1


def run_wrk(
    wrk: str,
    url: str,
    tmp: Path,
    op: str,
    tag: str,
    users: list[User],
    clients: int,
    threads: int,
    seconds: float,
) -> Result:
    script = tmp / f"{op}-{tag}.lua"
    wrk_script(script, op, tag, threads, users)
    cmd = [
        wrk, f"-t{threads}", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
        "-s", str(script), f"{url}/api/projects",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, check=False)
    match = re.search(r"^BENCH_RESULT (\{.*\})$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    r = json.loads(match.group(1))
    secs = r["duration_us"] / 1e6
    errors = int(r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"])
    return Result(
        operation=op,
        requests=int(r["requests"]),
        errors=errors,
        seconds=round(secs, 2),
        rps=round(r["requests"] / secs, 1) if secs else 0.0,
        p50_ms=_ms(r["p50_us"]),
        p99_ms=_ms(r["p99_us"]),
        max_ms=_ms(r["max_us"]),
    )


# -- the Python fallback client -------------------------------------------------------------------------


class HttpError(Exception):
    pass


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one HTTP/1.1 response; return its status and whether the server keeps the connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise HttpError(f"bad status line {lines[0]!r}")
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip().lower()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif "chunked" in headers.get("transfer-encoding", ""):
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif status not in (204, 304):
        await reader.read()  # body until close
        return status, False
    return status, headers.get("connection") != "close"


def _request_maker(op: str, host: str, tag: str, index: int, user: User) -> Callable[[], bytes]:
    auth = f"Authorization: Bearer {user.token}\r\nHost: {host}\r\n"
    count = 0

    def make() -> bytes:
        nonlocal count
        count += 1
        if op == "list":
            return f"GET /api/projects HTTP/1.1\r\n{auth}\r\n".encode()
        if op == "get":
            pid = user.project_ids[count % len(user.project_ids)]
            return f"GET /api/projects/{pid} HTTP/1.1\r\n{auth}\r\n".encode()
        body = json.dumps({"name": f"Bench {tag} {index}-{count}", "template": "three-act"}).encode()
        return (
            f"POST /api/projects HTTP/1.1\r\n{auth}Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    return make


async def _drive(
    url: str, op: str, tag: str, users: list[User], clients: int, seconds: float
) -> tuple[list[float], int, float]:
    host = url.removeprefix("http://")
    addr, port = host.rsplit(":", 1)
    latencies: list[float] = []
    errors = 0

    async def connection(i: int, stop_at: float) -> None:
        nonlocal errors
        make = _request_maker(op, host, tag, i, users[i % len(users)])
        reader, writer = await asyncio.open_connection(addr, int(port))
        try:
            while time.perf_counter() < stop_at:
                data = make()
                t0 = time.perf_counter()
                writer.write(data)
                try:
                    status, keep = await _read_response(reader)
                    latencies.append(time.perf_counter() - t0)
                except (HttpError, asyncio.IncompleteReadError, ConnectionError, ValueError):
                    status, keep = 0, False
                if status == 0 or status >= 400:
                    errors += 1
                if not keep:
                    writer.close()
                    reader, writer = await asyncio.open_connection(addr, int(port))
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(connection(i, start + seconds) for i in range(clients)))
    return latencies, errors, time.perf_counter() - start


def _percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * p // 100))  # nearest rank
    return sorted_values[int(rank) - 1]


def run_python(url: str, op: str, tag: str, users: list[User], clients: int, seconds: float) -> Result:
    runner: Callable[[Any], Any] = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    latencies, errors, secs = runner(_drive(url, op, tag, users, clients, seconds))
    latencies.sort()
    return Result(
        operation=op,
        requests=len(latencies),
        errors=errors,
        seconds=round(secs, 2),
        rps=round(len(latencies) / secs, 1) if secs else 0.0,
        p50_ms=round(_percentile(latencies, 50) * 1000, 2),
        p99_ms=round(_percentile(latencies, 99) * 1000, 2),
        max_ms=round(latencies[-1] * 1000, 2) if latencies else 0.0,
    )


# -- profiling --------------------------------------------------------------------------------------


@contextlib.contextmanager
def py_spy(out: Path | None, pids: list[int], seconds: float) -> Iterator[None]:
    """Record the Granian worker with py-spy for ``seconds`` while the body runs, if asked."""
    exe = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if out is None:
        yield
        return
    if exe is None or not pids:
        print("bench: --py-spy needs py-spy (pip install py-spy) and a worker process", file=sys.stderr)
        yield
        return
    fmt = {".txt": "raw", ".json": "speedscope"}.get(out.suffix, "flamegraph")
    cmd = [exe, "record", "-d", str(max(1, int(seconds))), "-f", fmt, "-o", str(out), "--pid", str(pids[0])]
    with subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as spy:
        try:
            yield
        finally:
            _, err = spy.communicate(timeout=seconds + 60)
            if spy.returncode != 0:
                print(f"bench: py-spy failed: {err.decode(errors='replace')[-500:]}", file=sys.stderr)


# -- main -------------------------------------------------------------------------------------------


def dirty_kib() -> int | None:
    """The kernel's dirty page cache (written, not yet on disk), in KiB; None off Linux."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("Dirty:"):
                return int(line.split()[1])
    return None


def settle_disk() -> None:
    """Write out what earlier steps left in the page cache before an operation is measured.

    Linux writes dirty pages back once they are 30 s old, and a writeback of a few hundred MB
    (the seeding, the previous operation, an earlier run's projects) holds every file-system
    writer on these machines for up to a second: it landed inside whichever operation ran half
    a minute later and showed as that operation's p99. Each operation starts from a settled
    disk instead; a run of more than 30 s still meets the writeback of its own writes."""
    dirty = dirty_kib()
    started = time.monotonic()
    os.sync()
    if dirty is not None:
        print(
            f"bench: wrote out {dirty / 1024:.0f} MB of earlier writes in {time.monotonic() - started:.1f} s",
            file=sys.stderr,
        )


def client_cpu_seconds() -> float:
    """CPU time of this process and its finished children (wrk, once waited for)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def machine_info(client: str) -> dict[str, Any]:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 0
    try:
        from importlib.metadata import version

        granian = version("granian")
    except Exception:
        granian = "?"
    return {
        "nproc": cpus,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "granian": granian,
        "client": client,
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
    }


def calibrate(folder: Path) -> dict[str, float]:
    """How fast this machine is right now, to read the results by: a fixed pure-Python loop (the
    best of three) and making 200 folders of 5 small files each in the data folder. Both move
    with the machine's mood (the same code's results moved 1.6x within an hour, the file system
    10x after large deletions), which is why a run's numbers are compared side by side."""
    loop = []
    for _ in range(3):
        start = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i * i
        loop.append(time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(200):
        sub = folder / "calibrate" / str(i)
        sub.mkdir(parents=True)
        for j in range(5):
            (sub / f"{j}.json").write_bytes(b"{}")
    fs = time.perf_counter() - start
    # Left for the data folder's own removal: deleting files just before the run slows the disk.
    return {"python_loop_ms": round(min(loop) * 1000, 1), "fs_1200_entries_ms": round(fs * 1000, 1)}


def print_table(results: list[Result]) -> None:
    head = (
        "operation",
        "requests",
        "errors",
        "req/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "server CPU",
        "client CPU",
        "target",
        "",
    )
    rows = [
        (
            r.operation, f"{r.requests:,}", str(r.errors), f"{r.rps:,.1f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}",
            f"{r.max_ms:.2f}", f"{r.server_cpu_pct:.0f}%", f"{r.client_cpu_pct:.0f}%", r.target,
            "PASS" if r.passed else "FAIL",
        )
        for r in results
    ]  # fmt: skip
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    right = set(range(1, 9))

    def fmt(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    print(fmt(head).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(fmt(row))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--clients", type=int, default=50, help="concurrent connections, one user each (50)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured per operation (10)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up before each (2)")
    p.add_argument("--projects", type=int, default=10, help="projects each user owns before the runs (10)")
    p.add_argument(
        "--operations", default=",".join(OPERATIONS), help="comma-separated subset of list,get,create"
    )
    p.add_argument(
        "--client", choices=("auto", "wrk", "python"), default="auto", help="load generator (auto)"
    )
    p.add_argument("--wrk-threads", type=int, default=2, help="wrk threads, a divisor of --clients (2)")
    p.add_argument("--no-install", action="store_true", help="never apt-get install wrk")
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results here")
    p.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        metavar="PATH",
        help="profile the server with py-spy (.svg flame graph, .txt collapsed stacks, .json speedscope)",
    )
    p.add_argument("--py-spy-op", choices=OPERATIONS, help="the operation to profile (the first one run)")
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the data folder (a run makes thousands of projects; deleting them makes the next run "
        "on these machines' disks slower for minutes)",
    )
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = p.parse_args(argv)
    args.operations = [o.strip() for o in args.operations.split(",") if o.strip()]
    unknown = set(args.operations) - set(OPERATIONS)
    if unknown or not args.operations:
        p.error(f"--operations: choose from {', '.join(OPERATIONS)}")
    if args.py_spy_op and args.py_spy_op not in args.operations:
        p.error(f"--py-spy-op {args.py_spy_op} is not among --operations")
    if args.clients < 1 or args.duration <= 0 or args.warmup < 0 or args.projects < 1:
        p.error("--clients, --duration and --projects must be positive, --warmup not negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    python = sys.executable
    with contextlib.suppress(ValueError):
        python = os.path.relpath(python) if Path(python).is_relative_to(Path.cwd()) else python
    command = shlex.join([python, *(sys.argv if argv is None else ["scripts/bench/api.py", *argv])])

    wrk = None if args.client == "python" else find_wrk(install=not args.no_install)
    if args.client == "wrk" and wrk is None:
        print("bench: --client wrk but wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    threads = wrk_threads(args.clients, args.wrk_threads)
    if wrk:
        banner = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False).stdout
        client = f"{banner.split(' [')[0].strip()} ({threads} threads, {args.clients} connections)"
    else:
        client = f"python asyncio raw HTTP/1.1 keep-alive ({args.clients} connections)"
    info = machine_info(client)

    tmp = Path(tempfile.mkdtemp(prefix="studio-bench-"))
    info["calibration"] = calibrate(tmp)
    server = Server(tmp)
    results: list[Result] = []
    run_id = uuid.uuid4().hex[:8]
    try:
        print(f"bench: starting studio serve on {server.url} (data in {tmp})", file=sys.stderr)
        server.start()
        t0 = time.monotonic()
        users = asyncio.run(seed(server.url, args.clients, args.projects))
        print(
            f"bench: seeded {len(users)} users x {args.projects} projects in {time.monotonic() - t0:.1f} s",
            file=sys.stderr,
        )

        def measure(op: str, tag: str, seconds: float) -> Result:
            if wrk:
                return run_wrk(wrk, server.url, tmp, op, tag, users, args.clients, threads, seconds)
            return run_python(server.url, op, tag, users, args.clients, seconds)

        for op in args.operations:
            settle_disk()
            if args.warmup > 0:
                measure(op, f"{run_id}w", args.warmup)
            profile = args.py_spy if (args.py_spy_op or args.operations[0]) == op else None
            pids = ",".join(map(str, server.worker_pids()))
            print(
                f"bench: {op}: {args.duration:g} s, {args.clients} clients (worker pid {pids})",
                file=sys.stderr,
            )
            server_cpu, client_cpu = server.cpu_seconds(), client_cpu_seconds()
            with py_spy(profile, server.worker_pids(), args.duration):
                result = measure(op, f"{run_id}m", args.duration)
                # Before py-spy is waited for, so that its CPU time is not the client's.
                server_cpu, client_cpu = server.cpu_seconds() - server_cpu, client_cpu_seconds() - client_cpu
            if result.seconds:
                result.server_cpu_pct = round(server_cpu / result.seconds * 100)
                result.client_cpu_pct = round(client_cpu / result.seconds * 100)
            result.judge()
            results.append(result)
    except (RuntimeError, OSError, httpx.HTTPError, subprocess.SubprocessError) as exc:
        print(f"bench: failed: {exc}\n--- server log (last lines) ---\n{server.log_tail()}", file=sys.stderr)
        return 2
    finally:
        server.stop()
        if args.keep:
            print(f"bench: kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print()
    load = " ".join(f"{x:g}" for x in info["loadavg_before"])
    print(
        f"machine: {info['nproc']} CPUs, {info['implementation']} {info['python']}, {info['platform']}, "
        f"load average before the run {load}"
    )
    cal = info["calibration"]
    print(
        f"speed:   a 1M-step Python loop {cal['python_loop_ms']:g} ms; 200 folders of 5 files in the data "
        f"folder {cal['fs_1200_entries_ms']:g} ms"
    )
    print(f"server:  studio serve (Granian {info['granian']}, 1 worker), SQLite, embedded broker")
    print(f"client:  {client}, {args.duration:g} s per operation after {args.warmup:g} s warm-up")
    print("note:    rate limits raised to 1,000,000/s: this measures the server, not the rate limiter")
    print(
        "cpu:     % of one core over the measured run (server: Granian main + worker; client: the load generator)"
    )
    print(
        "closed:  each client sends its next request when the answer comes, so mean latency is about "
        "clients / (req/s)"
    )
    print(f"command: {command}")
    print()
    print_table(results)
    failed = [r.operation for r in results if not r.passed]
    print()
    print("all targets met" if not failed else f"targets missed: {', '.join(failed)}")

    if args.json:
        doc = {
            "command": command,
            "machine": info,
            "clients": args.clients,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "projects_per_user": args.projects,
            "note": "rate limits raised to 1,000,000/s: this measures the server, not the rate limiter",
            "results": [asdict(r) for r in results],
            "passed": not failed,
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
