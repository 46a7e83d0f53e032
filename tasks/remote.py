"""A ``studio worker`` on any machine: task rows, project files and the webhook log, over HTTP.

Everything such a worker reads or writes about tasks and projects goes through the server's
worker API (``/api/worker/…``, ``app.worker_api``); with its results handed back through the
upload route (``tasks.outputs``) it needs only ``STUDIO_BROKER_URL``, ``STUDIO_SERVER_URL`` and
``STUDIO_WORKER_SECRET`` (and ``STUDIO_MODELS_DIR`` for diffusion), no shared disk.

Each request carries ``X-Studio-Worker: <token>``, the token being
``HMAC-SHA256(worker secret, "studio-worker-api")`` in hex (:func:`worker_token`): the secret
itself never travels.

>>> client = WorkerClient("http://studio.lan:8000", "s3cret-s3cret-s3cret")  # doctest: +SKIP
>>> RemoteLedger(client).claim("gpu", "gpu-box:4242")  # doctest: +SKIP
{'id': '0b9c…', 'kind': 'image.diffusion', 'params': {…}, 'attempts': 1, …}
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import httpx

from tasks.failures import TransientError
from tasks.kinds import TaskFailed
from tasks.outputs import problem_detail
from tasks.project_files import Tree, read_tar, safe_rel

log = logging.getLogger("tasks.remote")
WORKER_HEADER = "X-Studio-Worker"
TIMEOUT_S = 30.0
CANCEL_POLL_S = 0.25  # a cancel is seen within this (plus one step), without asking every step
FINISH_TRIES = 4  # the end of a task is worth a few tries over a short outage


def worker_token(secret: str) -> str:
    """What a worker sends in ``X-Studio-Worker``."""
    return hmac.new(secret.encode(), b"studio-worker-api", hashlib.sha256).hexdigest()


class WorkerToken:
    """The server's side of :func:`worker_token`: derived once, compared in constant time."""

    def __init__(self, secret: str) -> None:
        self._expected = worker_token(secret)

    def accepts(self, token: str) -> bool:
        """Whether ``token`` is this studio's worker token (an empty one never is)."""
        return bool(token) and hmac.compare_digest(self._expected, token)


class WorkerRefused(TaskFailed):
    """The server refused a worker request for good (a wrong secret, a task it does not know); a
    task that meets it fails with this message."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class WorkerClient:
    """Requests to the server's worker API, authenticated, one HTTP connection pool per thread."""

    def __init__(self, base_url: str, secret: str, timeout_s: float = TIMEOUT_S) -> None:
        self.base = base_url.rstrip("/")
        self.headers = {WORKER_HEADER: worker_token(secret)}
        self.timeout_s = timeout_s
        self._local = threading.local()

    @property
    def http(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(base_url=self.base, headers=self.headers, timeout=self.timeout_s)
            self._local.client = client
        return client

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The answer to one request; raises :class:`TransientError` when the server cannot be
        reached (the task is tried again later) and :class:`WorkerRefused` when it says no."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise TransientError(self.unreachable(exc)) from None
        return self.check(response)

    def unreachable(self, exc: Exception) -> str:
        return (f"The worker could not reach the studio at {self.base} ({type(exc).__name__}); "
                "check STUDIO_SERVER_URL on the worker.")  # fmt: skip

    def check(self, response: httpx.Response) -> httpx.Response:
        if response.status_code < 400:
            return response
        if response.status_code in (429, 502, 503, 504):
            raise TransientError(
                f"The studio at {self.base} is not answering right now ({response.status_code})."
            )
        if response.status_code == 401:
            raise WorkerRefused("The studio refused this worker: STUDIO_WORKER_SECRET differs between the "
                                "worker and the server.", 401)  # fmt: skip
        raise WorkerRefused(f"The studio refused the worker's request: {problem_detail(response)}",
                            response.status_code)  # fmt: skip

    def stream(self, path: str) -> Generator[httpx.Response]:
        """A streamed GET (the caller reads ``iter_bytes()``); see :meth:`request` for errors."""
        try:
            with self.http.stream("GET", path) as response:
                if response.status_code >= 400:
                    response.read()
                yield self.check(response)
        except httpx.TransportError as exc:
            raise TransientError(self.unreachable(exc)) from None

    def ping(self) -> None:
        """Raises unless the server answers and accepts this worker's secret."""
        self.request("GET", "/api/worker/hello", timeout=5.0)


class RemoteLedger:
    """:class:`~tasks.ledger.Ledger` through the server's worker API."""

    def __init__(self, client: WorkerClient) -> None:
        self.client = client
        # Whether each running task was asked to stop, and when the server last said so.
        self._cancel: dict[str, tuple[bool, float]] = {}
        self._lock = threading.Lock()

    def _noted(self, task_id: str, cancel: bool) -> None:
        with self._lock:
            self._cancel[task_id] = (cancel, time.monotonic())

    def claim(self, queue: str, worker: str) -> dict[str, Any] | None:
        body = self.client.request(
            "POST", "/api/worker/claim", json={"queue": queue, "worker": worker}
        ).json()
        task: dict[str, Any] | None = body.get("task")
        if task is not None:
            task["project_folder"] = body.get("project_folder")  # None: the project was deleted
            self._noted(task["id"], False)
        return task

    def progress(self, task_id: str, fraction: float) -> None:
        self._informational("progress", task_id, json={"progress": fraction})

    def preview(self, task_id: str, png: bytes) -> None:
        self._informational("preview", task_id, content=png, headers={"Content-Type": "image/png"})

    def _informational(self, what: str, task_id: str, **kwargs: Any) -> None:
        # Progress and previews are news, not the task's outcome: one that cannot be told is
        # dropped (the next one carries the state again), and the task goes on.
        try:
            answer = self.client.request("POST", f"/api/worker/tasks/{task_id}/{what}", **kwargs).json()
        except (TransientError, WorkerRefused, ValueError) as exc:
            log.warning("worker_%s_not_told task=%s error=%s", what, task_id, exc)
            return
        self._noted(task_id, bool(answer.get("cancel_requested")))

    def cancel_requested(self, task_id: str) -> bool:
        with self._lock:
            known, at = self._cancel.get(task_id, (False, 0.0))
        if known or time.monotonic() - at < CANCEL_POLL_S:
            return known
        try:
            task = self.client.request("GET", f"/api/worker/tasks/{task_id}").json()
        except (TransientError, WorkerRefused, ValueError) as exc:
            log.warning("worker_cancel_not_checked task=%s error=%s", task_id, exc)
            return known
        cancel = bool(task.get("cancel_requested"))
        self._noted(task_id, cancel)
        return cancel

    def heartbeat(self, task_ids: list[str]) -> None:
        if not task_ids:
            return
        answer = self.client.request("POST", "/api/worker/heartbeat", json={"tasks": task_ids}).json()
        for task_id in answer.get("cancel_requested", []):
            self._noted(str(task_id), True)

    def finish(self, task_id: str, attempt: int, state: str, *, error: str | None = None,
               outputs: list[dict[str, Any]] | None = None) -> bool:  # fmt: skip
        body = {"attempt": attempt, "state": state, "error": error, "outputs": outputs or []}
        return self._end(task_id, "finish", body)

    def retry_later(self, task_id: str, attempt: int, delay_s: float, error: str) -> bool:
        return self._end(task_id, "retry", {"attempt": attempt, "delay_s": delay_s, "error": error})

    def _end(self, task_id: str, what: str, body: dict[str, Any]) -> bool:
        try:
            for tries in range(1, FINISH_TRIES + 1):
                try:
                    answer = self.client.request("POST", f"/api/worker/tasks/{task_id}/{what}", json=body)
                    return bool(answer.json().get("ended"))
                except TransientError:
                    # Past the last try the task stays "running" without heartbeats; the watchdog
                    # then retries it, so nothing is left stuck.
                    if tries == FINISH_TRIES:
                        raise
                    time.sleep(0.5 * tries)
            return False
        finally:
            with self._lock:
                self._cancel.pop(task_id, None)


class RemoteProject:
    """:class:`~tasks.project_files.ProjectFiles` of a running task, fetched from the server."""

    def __init__(self, client: WorkerClient, task: dict[str, Any]) -> None:
        self.client, self.task_id = client, str(task["id"])
        self._name = str(task.get("project_folder") or "project")
        self._scratch: Path | None = None
        self._fetched: dict[str, Path | None] = {}

    @property
    def name(self) -> str:
        return self._name

    def _url(self, what: str) -> str:
        return f"/api/worker/tasks/{self.task_id}/{what}"

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.client.request("GET", self._url("state")).json()
        return state

    def file(self, rel: str) -> Path | None:
        clean = safe_rel(rel)
        if clean is None:
            return None
        if clean not in self._fetched:
            self._fetched[clean] = self._download(clean)
        return self._fetched[clean]

    def _download(self, rel: str) -> Path | None:
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix=f"studio-{self.task_id[:8]}-"))
        target = self._scratch / f"{len(self._fetched):04d}{Path(rel).suffix}"
        try:
            for response in self.client.stream(self._url("files/" + quote(rel))):
                with open(target, "wb") as out:
                    for chunk in response.iter_bytes(1 << 20):
                        out.write(chunk)
        except WorkerRefused as exc:
            if exc.status == 404:
                return None
            raise
        return target

    def tree(self) -> Tree:
        stream = self.client.stream(self._url("tree"))
        response = next(stream)
        count = int(response.headers.get("x-studio-files", "0"))

        def entries() -> Iterator[tuple[str, IO[bytes]]]:
            try:
                yield from read_tar(response.iter_bytes(1 << 20))
            except httpx.TransportError as exc:
                raise TransientError(self.client.unreachable(exc)) from None
            finally:
                stream.close()

        return Tree(count, entries())

    def bundle(self, dest: Path) -> None:
        for response in self.client.stream(self._url("bundle")):
            with open(dest, "wb") as out:
                for chunk in response.iter_bytes(1 << 20):
                    out.write(chunk)

    def close(self) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
        self._fetched.clear()


class RemoteWebhookBook:
    """The webhook targets and delivery log a worker's ``deliver_webhook`` actor needs, from the
    server (``tasks.webhooks.DeliveryBook``)."""

    def __init__(self, client: WorkerClient) -> None:
        self.client = client

    def target(self, hook_id: str) -> tuple[str, str] | None:
        try:
            answer = self.client.request("GET", f"/api/worker/webhooks/{quote(hook_id)}").json()
        except WorkerRefused as exc:
            if exc.status == 404:
                return None  # deleted or paused since the event
            raise
        return str(answer["url"]), str(answer["secret"])

    def record(self, hook_id: str, event_id: str, event_type: str, attempt: int, *, status_code: int | None,
               duration_ms: float | None, error: str | None, will_retry: bool) -> None:  # fmt: skip
        body = {"event_id": event_id, "event_type": event_type, "attempt": attempt, "status_code": status_code,
                "duration_ms": duration_ms, "error": error, "will_retry": will_retry}  # fmt: skip
        try:
            self.client.request("POST", f"/api/worker/webhooks/{quote(hook_id)}/deliveries", content=json.dumps(body),
                                headers={"Content-Type": "application/json"})  # fmt: skip
        except (TransientError, WorkerRefused) as exc:
            log.warning("webhook_delivery_not_logged hook=%s error=%s", hook_id, exc)
