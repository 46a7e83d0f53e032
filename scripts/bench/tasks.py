"""Task benchmark: throughput of trivial tasks end to end, cancel latency, and estimate accuracy.

For each broker (``redis``: a redis-server of its own plus one ``studio worker`` process;
``embedded``: the server's in-process workers) it starts a real ``studio serve`` (Granian) over
a fresh temporary folder with the ``bench.steps`` kind enabled (``STUDIO_BENCH_TASKS``) and rate
limits out of the way, then measures, through the public API and ``/events`` only:

1. **throughput** — ``--tasks`` (10,000) ``bench.steps`` tasks of ``--steps`` (5) instant steps,
   each reporting progress. ``--clients`` (4) guest accounts, each with its own project and
   ``/events`` socket, keep ``--window`` (15) tasks in flight (the per-person limit is 20): a
   client enqueues the next task when the ``task.succeeded`` event of one of its tasks arrives.
   Tasks per second = tasks ÷ (last ``task.succeeded`` event - first enqueue). Also: enqueue
   latency p50/p99, enqueue-to-succeeded p50/p99, progress events seen.
2. **cancel** — ``--cancels`` (20) times: a long task (steps of 5 ms) is enqueued; once its first
   ``task.progress`` event arrives, ``POST /api/tasks/{id}/cancel``; the time until its
   ``task.cancelled`` event arrives. p50/p99/max.
3. **estimates** — a kind and size (40 steps of 10 ms) run ``--eta-history`` (10) times, one
   after the other, so it has a history; then ``--eta-runs`` (30) more tasks of it are enqueued in
   bursts of 1 to 4 (seeded random), each burst after the previous one finished. For each, the
   ``eta_s`` in the enqueue answer is compared with the time from that answer to its
   ``task.succeeded`` event: median absolute error in % of the actual time.

    .venv/bin/python scripts/bench/tasks.py [--tasks 10000] [--brokers redis,embedded] [--json out.json] [--strict]

Targets (2-core machines): >= 50 tasks/s through Redis, cancel p99 < 1 s, estimate error < 25 %.
Exits 0 whatever the numbers unless ``--strict`` (1: a target missed; 2: the bench cannot run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets

ROOT = Path(__file__).resolve().parents[2]
MIN_TASKS_PER_S = 50.0
MAX_CANCEL_P99_S = 1.0
MAX_ETA_ERROR = 0.25
FINISHED = ("task.succeeded", "task.failed", "task.cancelled")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


# -- processes --------------------------------------------------------------------------------------


class Processes:
    """redis-server, ``studio serve`` and ``studio worker``, each in its own process group; their
    output in log files beside the data."""

    def __init__(self, tmp: Path, broker: str, worker_threads: int, worker_processes: int) -> None:
        self.tmp, self.broker = tmp, broker
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.redis_url = ""
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.worker_threads, self.worker_processes = worker_threads, worker_processes

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "STUDIO_DATA_DIR": str(self.tmp / "data"),
            "WORKSPACE_ROOT": str(self.tmp / "workspace"),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "STUDIO_BROKER_URL": self.redis_url,
            "STUDIO_BENCH_TASKS": "true",
            "STUDIO_SEED_SAMPLES": "false",
            "STUDIO_RATE_LIMIT_USER": "1000000",
            "STUDIO_RATE_LIMIT_IP": "1000000",
            "STUDIO_RATE_LIMIT_AUTH": "1000000",
            "STUDIO_LOG_FORMAT": "json",
        }

    def _spawn(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with open(self.tmp / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        self.procs.append((name, proc))
        return proc

    def start(self) -> None:
        if self.broker == "redis":
            executable = shutil.which("redis-server")
            if executable is None:
                raise RuntimeError("redis-server is not installed (scripts/setup.sh system installs it)")
            port = free_port()
            self._spawn("redis", [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no", "--dir", str(self.tmp)])  # fmt: skip
            self.redis_url = f"redis://127.0.0.1:{port}/0"
            wait_port(port)
        server = self._spawn("server", [sys.executable, "-m", "app.cli", "serve"], self.env())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError("studio serve exited:\n" + self.log_tail("server"))
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError("studio serve did not answer within 60 s:\n" + self.log_tail("server"))
        if self.broker == "redis":
            self._spawn("worker", [sys.executable, "-m", "app.cli", "worker", "--queues", "cpu", "--processes",
                                   str(self.worker_processes), "--threads", str(self.worker_threads)], self.env())  # fmt: skip

    def log_tail(self, name: str, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join((self.tmp / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
        return f"(no {name} log)"

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by each process group (server with its Granian workers, …)."""
        groups = {proc.pid: name for name, proc in self.procs}
        used: dict[str, float] = dict.fromkeys(groups.values(), 0.0)
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            name = groups.get(int(fields[3]))  # the process group id
            if name:
                used[name] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return used

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for _, proc in reversed(self.procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


def wait_port(port: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


# -- a lean HTTP/1.1 keep-alive client (the bench shares 2 cores with what it measures) -------------


class Http:
    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.lock = asyncio.Lock()  # one request at a time on the connection

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.lock:
            return await self._request(method, path, body)

    async def _request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        data = json.dumps(body).encode() if body is not None else b""
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {self.token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n")  # fmt: skip
        self.writer.write(head.encode() + data)
        status_line = await self.reader.readline()
        length, chunked = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding" and "chunked" in value:
                chunked = True
        if chunked:
            parts = []
            while (size := int((await self.reader.readline()).strip(), 16)) > 0:
                parts.append(await self.reader.readexactly(size))
                await self.reader.readline()
            await self.reader.readline()
            payload = b"".join(parts)
        else:
            payload = await self.reader.readexactly(length)
        return int(status_line.split()[1]), json.loads(payload) if payload else None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()


@dataclass
class Client:
    """One guest account with its project, HTTP connection and ``/events`` socket."""

    token: str
    project: str
    http: Http
    ws: Any = None
    waiters: dict[str, asyncio.Future[tuple[float, dict[str, Any]]]] = field(default_factory=dict)
    first_progress: dict[str, asyncio.Future[float]] = field(default_factory=dict)
    progress_events: int = 0
    reader: asyncio.Task[None] | None = None

    async def listen(self) -> None:
        async for raw in self.ws:
            now = time.monotonic()
            event = json.loads(raw)
            task_id = event.get("task", {}).get("id")
            if event["type"] == "task.progress":
                self.progress_events += 1
                fut = self.first_progress.pop(task_id, None)
                if fut is not None and not fut.done():
                    fut.set_result(now)
            elif event["type"] in FINISHED:
                waiter = self.expect(task_id)  # its events may overtake the enqueue answer
                if not waiter.done():
                    waiter.set_result((now, event["task"]))

    def expect(self, task_id: str) -> asyncio.Future[tuple[float, dict[str, Any]]]:
        """The (arrival time, task) of the task's last event, once it has ended."""
        fut = self.waiters.get(task_id)
        if fut is None:
            fut = self.waiters[task_id] = asyncio.get_running_loop().create_future()
        return fut

    async def enqueue(self, params: dict[str, Any]) -> tuple[float, float, dict[str, Any]]:
        """(sent at, answered at, the task) — the task id's waiter exists before the events can arrive."""
        sent = time.monotonic()
        status, task = await self.http.request("POST", f"/api/projects/{self.project}/tasks",
                                               {"kind": "bench.steps", "params": params})  # fmt: skip
        if status != 202:
            raise RuntimeError(f"enqueue answered {status}: {task}")
        self.expect(task["id"])
        return sent, time.monotonic(), task


async def make_clients(procs: Processes, n: int) -> list[Client]:
    clients = []
    async with httpx.AsyncClient(base_url=procs.url, timeout=30) as c:
        for i in range(n):
            token = (await c.post("/api/auth/guest")).json()["token"]
            r = await c.post("/api/projects", headers={"Authorization": f"Bearer {token}"},
                             json={"name": f"Bench {i}", "template": "blank"})  # fmt: skip
            client = Client(token, r.json()["id"], Http(procs.port, token))
            client.ws = await websockets.connect(
                f"ws://127.0.0.1:{procs.port}/events?token={token}", max_queue=None
            )
            client.reader = asyncio.get_running_loop().create_task(client.listen())
            clients.append(client)
    return clients


async def close_clients(clients: list[Client]) -> None:
    for client in clients:
        if client.reader is not None:
            client.reader.cancel()
        await client.ws.close()
        await client.http.close()


# -- the three measurements -------------------------------------------------------------------------


async def throughput(clients: list[Client], tasks: int, window: int, steps: int) -> dict[str, Any]:
    remaining = [tasks]
    enqueue_s: list[float] = []
    end_to_end: list[float] = []
    start = time.monotonic()
    last = [start]

    async def one_slot(client: Client) -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            sent, answered, task = await client.enqueue({"steps": steps})
            enqueue_s.append(answered - sent)
            done_at, final = await asyncio.wait_for(client.expect(task["id"]), timeout=120)
            if final["state"] != "succeeded":
                raise RuntimeError(f"a bench task ended {final['state']}: {final.get('error')}")
            end_to_end.append(done_at - sent)
            last[0] = max(last[0], done_at)

    before = sum(c.progress_events for c in clients)
    # Each slot is its own sequence of tasks; a client's HTTP connection serves its slots in turn.
    await asyncio.gather(*(one_slot(c) for c in clients for _ in range(window)))
    seconds = last[0] - start
    return {
        "tasks": tasks,
        "seconds": round(seconds, 2),
        "tasks_per_s": round(tasks / seconds, 1),
        "enqueue_p50_ms": round(pct(enqueue_s, 50) * 1000, 1),
        "enqueue_p99_ms": round(pct(enqueue_s, 99) * 1000, 1),
        "end_to_end_p50_ms": round(pct(end_to_end, 50) * 1000, 1),
        "end_to_end_p99_ms": round(pct(end_to_end, 99) * 1000, 1),
        "progress_events": sum(c.progress_events for c in clients) - before,
    }


async def cancels(client: Client, count: int) -> dict[str, Any]:
    latencies = []
    for _ in range(count):
        _, _, task = await client.enqueue({"steps": 4000, "step_ms": 5})
        client.first_progress[task["id"]] = asyncio.get_running_loop().create_future()
        await asyncio.wait_for(client.first_progress[task["id"]], timeout=60)
        await asyncio.sleep(random.uniform(0.0, 0.2))  # somewhere in the middle of a step
        asked = time.monotonic()
        status, answer = await client.http.request("POST", f"/api/tasks/{task['id']}/cancel")
        if status != 200:
            raise RuntimeError(f"cancel answered {status}: {answer}")
        stopped_at, final = await asyncio.wait_for(client.expect(task["id"]), timeout=30)
        if final["state"] != "cancelled":
            raise RuntimeError(f"a cancelled task ended {final['state']}")
        latencies.append(stopped_at - asked)
    return {
        "cancels": count,
        "p50_ms": round(pct(latencies, 50) * 1000, 1),
        "p99_ms": round(pct(latencies, 99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
    }


async def estimates(client: Client, history: int, runs: int, seed: int = 4) -> dict[str, Any]:
    params = {"steps": 40, "step_ms": 10}
    for _ in range(history):
        _, _, task = await client.enqueue(params)
        await asyncio.wait_for(client.expect(task["id"]), timeout=60)
    rng = random.Random(seed)
    errors: list[float] = []
    samples = []
    while len(errors) < runs:
        burst = [await client.enqueue(params) for _ in range(min(rng.randint(1, 4), runs - len(errors)))]
        for _, answered, task in burst:
            done_at, _ = await asyncio.wait_for(client.expect(task["id"]), timeout=60)
            actual = done_at - answered
            if task["eta_s"] is None:
                raise RuntimeError("no estimate after the history runs")
            errors.append(abs(task["eta_s"] - actual) / actual)
            samples.append(
                {"eta_s": task["eta_s"], "actual_s": round(actual, 3), "position": task["queue_position"]}
            )
    return {
        "history_runs": history,
        "runs": runs,
        "median_abs_error_pct": round(statistics.median(errors) * 100, 1),
        "p90_abs_error_pct": round(pct(errors, 90) * 100, 1),
        "samples": samples,
    }


async def bench_broker(procs: Processes, args: argparse.Namespace) -> dict[str, Any]:
    clients = await make_clients(procs, args.clients)
    try:
        # A short warm-up: imports, connections, the first SQLite pages.
        await throughput(clients, min(200, args.tasks), args.window, args.steps)
        cpu_before = procs.cpu_seconds()
        result: dict[str, Any] = {
            "throughput": await throughput(clients, args.tasks, args.window, args.steps)
        }
        cpu_after = procs.cpu_seconds()
        result["throughput"]["cpu_s"] = {k: round(cpu_after[k] - cpu_before.get(k, 0), 1) for k in cpu_after}
        if args.cancels:
            result["cancel"] = await cancels(clients[0], args.cancels)
        if args.eta_runs:
            result["estimates"] = await estimates(clients[1 % len(clients)], args.eta_history, args.eta_runs)
        return result
    finally:
        await close_clients(clients)


# -- report -----------------------------------------------------------------------------------------


def judge(results: dict[str, Any]) -> list[tuple[str, bool, str]]:
    verdicts = []
    for broker, r in results.items():
        t = r["throughput"]["tasks_per_s"]
        if broker == "redis":
            verdicts.append(
                (f"redis throughput >= {MIN_TASKS_PER_S:g} tasks/s", t >= MIN_TASKS_PER_S, f"{t} tasks/s")
            )
        if "cancel" in r:
            p99 = r["cancel"]["p99_ms"]
            verdicts.append((f"{broker} cancel p99 < {MAX_CANCEL_P99_S * 1000:g} ms", p99 < MAX_CANCEL_P99_S * 1000,
                             f"{p99} ms"))  # fmt: skip
        if "estimates" in r:
            e = r["estimates"]["median_abs_error_pct"]
            verdicts.append(
                (f"{broker} estimate error < {MAX_ETA_ERROR * 100:g} %", e < MAX_ETA_ERROR * 100, f"{e} %")
            )
    return verdicts


def print_report(
    results: dict[str, Any], verdicts: list[tuple[str, bool, str]], info: dict[str, Any]
) -> None:
    print(f"\nmachine: {info['cpus']} CPUs, Python {info['python']}, load before {info['loadavg_before']}, "
          f"after {info['loadavg_after']}")  # fmt: skip
    print(f"command: {info['command']}\n")
    print(f"{'broker':<9} {'tasks':>6} {'tasks/s':>8} {'enq p50':>8} {'enq p99':>8} {'e2e p50':>8} {'e2e p99':>8} "
          f"{'progress ev':>11}  cpu s")  # fmt: skip
    for broker, r in results.items():
        t = r["throughput"]
        cpu = ", ".join(f"{k} {v}" for k, v in t["cpu_s"].items())
        print(f"{broker:<9} {t['tasks']:>6} {t['tasks_per_s']:>8} {t['enqueue_p50_ms']:>6}ms {t['enqueue_p99_ms']:>6}ms "
              f"{t['end_to_end_p50_ms']:>6}ms {t['end_to_end_p99_ms']:>6}ms {t['progress_events']:>11}  {cpu}")  # fmt: skip
    for broker, r in results.items():
        if "cancel" in r:
            c = r["cancel"]
            print(f"{broker:<9} cancel to stop over {c['cancels']}: p50 {c['p50_ms']} ms, p99 {c['p99_ms']} ms, "
                  f"max {c['max_ms']} ms")  # fmt: skip
        if "estimates" in r:
            e = r["estimates"]
            print(f"{broker:<9} eta at enqueue vs actual over {e['runs']} runs after {e['history_runs']}: median "
                  f"abs error {e['median_abs_error_pct']} %, p90 {e['p90_abs_error_pct']} %")  # fmt: skip
    print()
    for name, ok, value in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {value}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--tasks", type=int, default=10_000)
    p.add_argument("--brokers", default="redis,embedded")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--window", type=int, default=15, help="tasks in flight per client (the limit is 20)")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--cancels", type=int, default=20)
    p.add_argument("--eta-history", type=int, default=10)
    p.add_argument("--eta-runs", type=int, default=30)
    p.add_argument("--worker-processes", type=int, default=1)
    p.add_argument("--worker-threads", type=int, default=2)
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, data)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--strict", action="store_true")
    return p.parse_args(argv)


@contextlib.contextmanager
def temporary(keep: bool) -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="studio-bench-tasks-"))
    try:
        yield tmp
    finally:
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info: dict[str, Any] = {
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
    }  # fmt: skip
    results: dict[str, Any] = {}
    for broker in [b.strip() for b in args.brokers.split(",") if b.strip()]:
        with temporary(args.keep) as tmp:
            procs = Processes(tmp / broker, broker, args.worker_threads, args.worker_processes)
            (tmp / broker).mkdir()
            try:
                procs.start()
                print(f"{broker}: running …", file=sys.stderr)
                results[broker] = asyncio.run(bench_broker(procs, args))
            except Exception as exc:
                traceback.print_exc()
                print(f"{broker}: the bench failed: {exc!r}\n{procs.log_tail('server')}\n{procs.log_tail('worker')}",
                      file=sys.stderr)  # fmt: skip
                return 2
            finally:
                procs.stop()
    info["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    verdicts = judge(results)
    print_report(results, verdicts, info)
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": results,
                                         "verdicts": [asdict(Verdict(*v)) for v in verdicts]}, indent=2))  # fmt: skip
    return 1 if args.strict and not all(ok for _, ok, _ in verdicts) else 0


@dataclass
class Verdict:
    target: str
    ok: bool
    value: str


if __name__ == "__main__":
    sys.exit(main())
