"""What a task hands back, and the two ways it reaches the server.

A task kind never writes into the project: it gives its results to the :class:`Context`
(``tasks.kinds``) as :class:`Output` values, and only when the task has finished without being
cancelled does the runner hand them all to a :class:`Delivery`. The server stores them (takes
under ``03_Renders/``, exports, cache files) with one function; the in-process workers call it
directly, ``studio worker`` processes POST the files to ``/api/tasks/{id}/outputs``, so a GPU
worker on another machine needs no shared disk for its results. A cancelled or failed task
delivers nothing, so nothing partial is ever kept.

The upload is authenticated by a per-task token, ``HMAC-SHA256(worker secret, task id)``: the
secret itself never travels, and a token is good for its one task only.

>>> upload_token("s3cret", "0b9c…")  # doctest: +SKIP
'5d41…'
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

Role = Literal["take", "export", "cache"]
SECRET_FILE = "worker.secret"  # noqa: S105 - a file name, not a secret
UPLOAD_TIMEOUT_S = 300.0


@dataclass
class Output:
    """One result of a task, not yet stored.

    ``role`` says where the server puts it: ``take`` a numbered take of the task's target under
    ``03_Renders/``, ``export`` and ``cache`` the path ``dest`` under ``06_Exports/`` or
    ``05_Cache/``. The bytes are in ``data`` or, for large results, in the file ``source`` (a
    temporary file the runner deletes afterwards). ``meta`` is recorded with a take (``seed``,
    ``model`` …)."""

    name: str
    media_type: str
    role: Role
    data: bytes | None = None
    source: Path | None = None
    dest: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.source is not None
        return self.source.read_bytes()

    def describe(self) -> dict[str, Any]:
        """The manifest entry the upload sends with the file."""
        return {"name": self.name, "media_type": self.media_type, "role": self.role, "dest": self.dest,
                "meta": self.meta}  # fmt: skip

    def discard(self) -> None:
        if self.source is not None:
            self.source.unlink(missing_ok=True)


class DeliveryRefused(Exception):
    """The server would not take the outputs; ``cancelled`` when the task was cancelled meanwhile."""

    def __init__(self, message: str, *, cancelled: bool = False) -> None:
        super().__init__(message)
        self.cancelled = cancelled


# (task id, outputs) → what was stored: [{"path", "kind", "size", "sha256", "role", "take"?}]
Delivery = Callable[[str, list[Output]], list[dict[str, Any]]]


def upload_token(secret: str, task_id: str) -> str:
    """The token that lets a worker hand back the outputs of ``task_id``."""
    return hmac.new(secret.encode(), f"outputs:{task_id}".encode(), hashlib.sha256).hexdigest()


def token_ok(secret: str, task_id: str, token: str) -> bool:
    return hmac.compare_digest(upload_token(secret, task_id), token)


def worker_secret(data_dir: Path, configured: str | None) -> str:
    """``STUDIO_WORKER_SECRET`` when set; else the secret in ``STUDIO_DATA_DIR/worker.secret``,
    made on first use (owner-only), which workers on the same machine read too."""
    if configured:
        return configured
    path = data_dir / SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)  # first writer wins; the others read its secret
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_text().strip()


def stored_worker_secret(data_dir: Path) -> str | None:
    """The secret a server keeps in ``data_dir`` (see :func:`worker_secret`), if it can be read."""
    try:
        return (data_dir / SECRET_FILE).read_text().strip() or None
    except OSError:
        return None


def http_delivery(server_url: str, secret: str) -> Delivery:
    """Hand outputs back by POSTing them to ``{server_url}/api/tasks/{id}/outputs`` (multipart:
    a ``manifest`` JSON field, then the files ``file0``, ``file1`` … in its order)."""
    base = server_url.rstrip("/")

    def deliver(task_id: str, outputs: list[Output]) -> list[dict[str, Any]]:
        files = [(f"file{i}", (o.name, o.read(), o.media_type)) for i, o in enumerate(outputs)]
        manifest = json.dumps([o.describe() for o in outputs])
        try:
            r = httpx.post(
                f"{base}/api/tasks/{task_id}/outputs",
                headers={"Authorization": f"Bearer {upload_token(secret, task_id)}"},
                data={"manifest": manifest},
                files=files,
                timeout=UPLOAD_TIMEOUT_S,
            )
        except httpx.HTTPError as exc:
            raise DeliveryRefused(
                f"The worker could not reach the studio at {base} to hand back its results "
                f"({type(exc).__name__}); check STUDIO_SERVER_URL on the worker."
            ) from None
        if r.status_code == 409:
            raise DeliveryRefused(problem_detail(r), cancelled=True)
        if r.status_code == 401:
            raise DeliveryRefused(
                "The studio refused the worker's results: STUDIO_WORKER_SECRET differs between the "
                "worker and the server."
            )
        if r.status_code >= 400:
            raise DeliveryRefused(f"The studio refused the results: {problem_detail(r)}")
        stored: list[dict[str, Any]] = r.json()["outputs"]
        return stored

    return deliver


def problem_detail(response: httpx.Response) -> str:
    """The ``detail`` of a problem answer, else the start of its text."""
    try:
        return str(response.json().get("detail") or response.text)
    except ValueError:
        return response.text[:300]
