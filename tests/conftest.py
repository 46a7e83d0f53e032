"""Fixtures named after what they give: ``settings``, ``client``, ``guest``, ``user_factory``,
``live_server``, ``browser_page``. Everything is real: SQLite files, git repositories, Granian."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from app.main import create_app
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
BASE = "http://127.0.0.1:8000"


def make_settings(tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "STUDIO_DATA_DIR": tmp / "data",
        "WORKSPACE_ROOT": tmp / "workspace",
        "STUDIO_SEED_SAMPLES": False,
        "STUDIO_RATE_LIMIT_USER": 10_000,
        "STUDIO_RATE_LIMIT_IP": 10_000,
        "STUDIO_RATE_LIMIT_AUTH": 10_000,
        "STUDIO_LOG_FORMAT": "console",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(settings), base_url=BASE) as c:
        yield c


@dataclass
class Person:
    token: str
    user: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def guest(client: TestClient[Any]) -> Person:
    r = client.post("/api/auth/guest")
    assert r.status_code == 201, r.text
    return Person(**r.json())


@pytest.fixture
def user_factory(client: TestClient[Any]) -> Callable[..., Person]:
    counter = iter(range(1, 10_000))

    def make(name: str | None = None) -> Person:
        n = next(counter)
        r = client.post(
            "/api/auth/register",
            json={
                "email": f"person{n}@example.org",
                "password": "correct horse battery",
                "name": name or f"Person {n}",
            },
        )
        assert r.status_code == 201, r.text
        return Person(**r.json())

    return make


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    data_dir: Path
    workspace: Path
    process: subprocess.Popen[bytes]


def start_server(
    tmp: Path, *, port: int | None = None, log_name: str = "server.log", **env: str
) -> LiveServer:
    """A real ``studio serve`` (Granian) in its own process group, on ``port`` (or a free one),
    over ``tmp/data`` and ``tmp/workspace``; returns once /api/health answers."""
    port = port or free_port()
    inherited = {k: v for k, v in os.environ.items() if k != "STUDIO_BROKER_URL"}  # embedded unless asked
    environ = {
        **inherited,
        "STUDIO_DATA_DIR": str(tmp / "data"),
        "WORKSPACE_ROOT": str(tmp / "workspace"),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "STUDIO_LOG_FORMAT": "json",
        **env,
    }
    with open(tmp / log_name, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve"],
            cwd=ROOT,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stopping the group stops Granian's workers too
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("studio serve exited:\n" + (tmp / log_name).read_text())
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return LiveServer(url, tmp / "data", tmp / "workspace", proc)
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("studio serve did not answer within 30 s:\n" + (tmp / log_name).read_text())


def stop_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGKILL)  # any worker left behind


def start_worker(tmp: Path, broker_url: str, log_name: str = "worker.log", queues: str = "cpu",
                 **env: str) -> subprocess.Popen[bytes]:  # fmt: skip
    """A real ``studio worker`` (one thread) over ``tmp/data`` and ``tmp/workspace``, in its own
    process group (so ``os.killpg`` reaches Dramatiq's worker processes too)."""
    environ = {**os.environ, "STUDIO_BROKER_URL": broker_url, "STUDIO_DATA_DIR": str(tmp / "data"),
               "WORKSPACE_ROOT": str(tmp / "workspace"), **env}  # fmt: skip
    with open(tmp / log_name, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker", "--queues", queues, "--threads", "1"],
            cwd=ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=5)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("live"))
    yield server
    stop_server(server)


CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope: Playwright's sync API keeps an event loop running in this thread while it is
    # open, and asyncio.run() in later test modules would refuse to start.
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("Debian's chromium is not installed: `make test` installs it (scripts/setup.sh system)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def browser_page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    yield page
    context.close()


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (read from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def git(repo: Path, *args: str) -> str:
    """Run the real git CLI in ``repo`` and return its stdout."""
    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return out.stdout


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of our own on a free port (`make test` installs redis-server)."""
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail("redis-server is not installed: `make test` installs it (scripts/setup.sh system)")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            break
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)
