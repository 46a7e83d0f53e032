"""Drive stock Node y-websocket clients (and the reference Node server) from Python tests.

``NodeClients`` runs ``tests/interop/client.mjs``: one Node process holding several named
clients, each its own ``Y.Doc`` + ``WebsocketProvider``, driven by JSON lines (the commands are
listed in ``tests/interop/README.md``). ``ReferenceServer`` runs ``@y/websocket-server`` on a free
port, to check a test against the reference implementation.

    with ReferenceServer() as server, NodeClients() as node:
        node.call("open", client="a", url=server.url, room="p1")
        node.call("set", client="a", path=["meta", "name"], value="Film")
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

INTEROP_DIR = Path(__file__).resolve().parent / "interop"
SERVER_SCRIPT = Path("node_modules") / "@y" / "websocket-server" / "src" / "server.js"


class InteropError(RuntimeError):
    """A command failed in the Node process, or the process did not answer."""


def node_available() -> bool:
    """Whether ``node`` and ``npm`` are on PATH (tests may skip without them)."""
    return shutil.which("node") is not None and shutil.which("npm") is not None


def _installed(cwd: Path) -> bool:
    """node_modules was installed (by npm) no earlier than package-lock.json last changed."""
    marker = cwd / "node_modules" / ".package-lock.json"
    lock = cwd / "package-lock.json"
    return marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime


def ensure_node_modules(cwd: Path = INTEROP_DIR) -> None:
    """Run ``npm ci`` in ``cwd`` unless its node_modules is installed and newer than the lock file.

    A file lock keeps parallel test workers from installing at the same time.
    """
    if _installed(cwd):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise InteropError("npm is not on PATH: cannot install tests/interop/node_modules")
    with (cwd / ".npm-ci.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if _installed(cwd):
                return
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if done.returncode != 0:
                raise InteropError(f"npm ci failed in {cwd}:\n{done.stdout}\n{done.stderr}")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _drain(stream: IO[str], sink: deque[str]) -> None:
    for line in stream:
        sink.append(line.rstrip("\n"))


def _stop(proc: subprocess.Popen[str], grace: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=grace)


class NodeClients:
    """A ``node client.mjs`` subprocess; ``call`` sends one command and returns its reply.

    ``call`` raises ``InteropError`` when the reply carries ``"error"`` (``check=False`` returns
    it instead), or when no reply comes within ``reply_timeout`` seconds (by default the command's
    ``timeout_ms`` plus 5 s, at least 10 s).
    """

    def __init__(self, cwd: Path = INTEROP_DIR, *, node: str = "node") -> None:
        self.cwd = cwd
        self.node = node
        self._proc: subprocess.Popen[str] | None = None
        self._ids = itertools.count(1)
        self._replies: dict[Any, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._stderr: deque[str] = deque(maxlen=200)
        self._write_lock = threading.Lock()

    def start(self) -> Self:
        ensure_node_modules(self.cwd)
        self._proc = subprocess.Popen(
            [self.node, "client.mjs"],
            cwd=self.cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        assert self._proc.stdout is not None
        assert self._proc.stderr is not None
        threading.Thread(target=self._read_replies, args=(self._proc.stdout,), daemon=True).start()
        threading.Thread(target=_drain, args=(self._proc.stderr, self._stderr), daemon=True).start()
        return self

    def _read_replies(self, stdout: IO[str]) -> None:
        for line in stdout:
            try:
                reply = json.loads(line)
            except json.JSONDecodeError:
                self._stderr.append(f"[stdout, not JSON] {line.rstrip()}")
                continue
            with self._cond:
                self._replies[reply.get("id")] = reply
                self._cond.notify_all()
        with self._cond:  # EOF: wake every waiter
            self._cond.notify_all()

    @property
    def stderr(self) -> str:
        """The last lines the Node process wrote to stderr."""
        return "\n".join(self._stderr)

    def call(
        self, cmd: str, *, reply_timeout: float | None = None, check: bool = True, **args: Any
    ) -> dict[str, Any]:
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise InteropError("NodeClients is not started")
        msg_id = next(self._ids)
        wait = reply_timeout
        if wait is None:
            wait = max(10.0, float(args.get("timeout_ms", 5000)) / 1000 + 5)
        line = json.dumps({"id": msg_id, "cmd": cmd, **args}) + "\n"
        with self._write_lock:
            try:
                proc.stdin.write(line)
                proc.stdin.flush()
            except (BrokenPipeError, OSError) as exc:
                raise InteropError(f"node client process is gone:\n{self.stderr}") from exc
        deadline = time.monotonic() + wait
        with self._cond:
            while msg_id not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise InteropError(f"no reply to {cmd} {args} within {wait} s:\n{self.stderr}")
                if proc.poll() is not None and cmd != "exit":
                    raise InteropError(f"node client process exited ({proc.returncode}):\n{self.stderr}")
                self._cond.wait(timeout=min(left, 0.5))
            reply = self._replies.pop(msg_id)
        if check and "error" in reply:
            raise InteropError(f"{cmd} {args}: {reply['error']}")
        return reply

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # client.mjs exits at end of input
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _stop(proc)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float, proc: subprocess.Popen[str] | None = None) -> None:
    """Wait until ``host:port`` accepts TCP; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        if proc is not None and proc.poll() is not None:
            raise InteropError(f"process exited ({proc.returncode}) before listening on {host}:{port}")
        if time.monotonic() > deadline:
            raise InteropError(f"nothing listening on {host}:{port} after {timeout} s")
        time.sleep(0.05)


class ReferenceServer:
    """The reference y-websocket server (``@y/websocket-server``, in-memory documents).

    ``url`` is ``ws://127.0.0.1:PORT``; a client's room becomes the path. It checks no tokens.
    """

    host = "127.0.0.1"

    def __init__(self, cwd: Path = INTEROP_DIR, *, node: str = "node", start_timeout: float = 10.0) -> None:
        self.cwd = cwd
        self.node = node
        self.start_timeout = start_timeout
        self.port = 0
        self._proc: subprocess.Popen[str] | None = None
        self._log: deque[str] = deque(maxlen=200)

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def log(self) -> str:
        return "\n".join(self._log)

    def start(self) -> Self:
        ensure_node_modules(self.cwd)
        for _attempt in range(3):  # a free port can be taken between probe and bind
            self.port = free_port(self.host)
            env = {**os.environ, "HOST": self.host, "PORT": str(self.port)}
            proc = subprocess.Popen(
                [self.node, str(SERVER_SCRIPT)],
                cwd=self.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            assert proc.stdout is not None
            threading.Thread(target=_drain, args=(proc.stdout, self._log), daemon=True).start()
            try:
                wait_for_port(self.host, self.port, self.start_timeout, proc)
            except InteropError:
                _stop(proc)
                continue
            self._proc = proc
            return self
        raise InteropError(f"reference server did not start:\n{self.log}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            _stop(proc)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
