"""Webhooks: owners configure them; task and commit events reach a real HTTP receiver, signed
with HMAC-SHA256; a failing receiver is retried with backoff and every attempt is in the log."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from tests.conftest import LiveServer, Person, start_server, start_worker, stop_server, stop_worker


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """A real HTTP server on a free port that records each POST and answers from ``statuses``
    (then 200)."""

    statuses: list[int] = field(default_factory=list)
    got: list[Received] = field(default_factory=list)
    url: str = ""

    def wait(self, ok: Callable[[list[Received]], bool], seconds: float = 20) -> list[Received]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if ok(self.got):
                return self.got
            time.sleep(0.05)
        raise AssertionError(
            f"the receiver got {[(r.headers.get('x-studio-event'), r.body[:80]) for r in self.got]}"
        )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            rec.got.append(Received({k.lower(): v for k, v in self.headers.items()}, body, time.monotonic()))
            status = rec.statuses.pop(0) if rec.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/studio"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("webhooks"), STUDIO_BENCH_TASKS="true", STUDIO_SEED_SAMPLES="false",
                        STUDIO_RATE_LIMIT_AUTH="1000")  # fmt: skip
    yield live
    stop_server(live)


def owner_project(server: LiveServer) -> tuple[dict[str, str], str]:
    token = httpx.post(f"{server.url}/api/auth/guest").json()["token"]
    h = {"Authorization": f"Bearer {token}"}
    pid = httpx.post(f"{server.url}/api/projects", headers=h, json={"name": "Hooked"}).json()["id"]
    return h, pid


def verify(secret: str, got: Received) -> dict[str, Any]:
    """What a receiver does: recompute the HMAC over '<timestamp>.<raw body>' and check freshness."""
    timestamp = got.headers["x-studio-timestamp"]
    expected = (
        "sha256="
        + hmac.new(secret.encode(), timestamp.encode() + b"." + got.body, hashlib.sha256).hexdigest()
    )
    assert hmac.compare_digest(expected, got.headers["x-studio-signature"])
    assert abs(time.time() - int(timestamp)) < 60
    payload: dict[str, Any] = json.loads(got.body)
    assert payload["type"] == got.headers["x-studio-event"]
    assert payload["id"] == got.headers["x-studio-delivery"]
    return payload


def test_task_events_reach_the_receiver_signed(server: LiveServer, receiver: Receiver) -> None:
    h, pid = owner_project(server)
    r = httpx.post(f"{server.url}/api/projects/{pid}/webhooks", headers=h,
                   json={"url": receiver.url, "events": ["task.*"]})  # fmt: skip
    assert r.status_code == 201, r.text
    hook = r.json()
    assert hook["secret"].startswith("whsec_")
    task = httpx.post(f"{server.url}/api/projects/{pid}/tasks", headers=h,
                      json={"kind": "bench.steps", "params": {"steps": 3}}).json()  # fmt: skip

    got = receiver.wait(lambda g: len(g) >= 3)
    payloads = [verify(hook["secret"], g) for g in got]
    assert sorted(p["type"] for p in payloads) == ["task.queued", "task.running", "task.succeeded"]
    assert all(p["project_id"] == pid and p["data"]["task"]["id"] == task["id"] for p in payloads)
    succeeded = next(p for p in payloads if p["type"] == "task.succeeded")
    assert succeeded["data"]["task"]["state"] == "succeeded"
    assert not any(p["type"] == "task.progress" for p in payloads)  # progress is never sent

    # A tampered body does not verify with the secret.
    forged = Received({**got[0].headers}, got[0].body.replace(b"task.", b"tusk."), got[0].at)
    with pytest.raises(AssertionError):
        verify(hook["secret"], forged)

    log = httpx.get(f"{server.url}/api/projects/{pid}/webhooks/{hook['id']}/deliveries", headers=h).json()
    assert len(log) == 3
    assert {(d["status_code"], d["attempt"], d["ok"], d["error"]) for d in log} == {(200, 1, True, None)}
    assert all(d["duration_ms"] > 0 for d in log)


def test_a_failing_receiver_is_retried_with_backoff_and_the_log_shows_each_attempt(
    server: LiveServer, receiver: Receiver
) -> None:
    receiver.statuses = [500, 503]
    h, pid = owner_project(server)
    hook = httpx.post(f"{server.url}/api/projects/{pid}/webhooks", headers=h,
                      json={"url": receiver.url, "events": ["task.succeeded"]}).json()  # fmt: skip
    httpx.post(f"{server.url}/api/projects/{pid}/tasks", headers=h,
               json={"kind": "bench.steps", "params": {"steps": 1}})  # fmt: skip

    got = receiver.wait(lambda g: len(g) >= 3, seconds=30)
    assert len({g.headers["x-studio-delivery"] for g in got}) == 1  # the same event, three times
    for g in got:
        verify(hook["secret"], g)  # each attempt signed afresh
    assert got[1].at - got[0].at >= 0.9  # backoff: 1 to 2 s, then 2 to 4 s
    assert got[2].at - got[1].at >= 1.9

    def log() -> list[dict[str, Any]]:
        return list(
            httpx.get(f"{server.url}/api/projects/{pid}/webhooks/{hook['id']}/deliveries", headers=h).json()
        )

    deadline = time.monotonic() + 5
    while len(log()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    attempts = sorted(log(), key=lambda d: d["attempt"])
    assert [(d["attempt"], d["status_code"], d["ok"], d["will_retry"]) for d in attempts] == [
        (1, 500, False, True),
        (2, 503, False, True),
        (3, 200, True, False),
    ]
    assert attempts[0]["error"] == "The receiver answered 500 Internal Server Error"
    assert attempts[2]["error"] is None
    assert {d["event_type"] for d in attempts} == {"task.succeeded"}


def test_commits_reach_the_receiver(server: LiveServer, receiver: Receiver) -> None:
    h, pid = owner_project(server)
    hook = httpx.post(f"{server.url}/api/projects/{pid}/webhooks", headers=h,
                      json={"url": receiver.url, "events": ["commit"]}).json()  # fmt: skip
    assert (
        httpx.patch(
            f"{server.url}/api/projects/{pid}", headers=h, json={"name": "Hooked, renamed"}
        ).status_code
        == 200
    )
    got = receiver.wait(lambda g: len(g) >= 1)
    payload = verify(hook["secret"], got[0])
    assert payload["type"] == "commit"
    history = httpx.get(f"{server.url}/api/projects/{pid}/history", headers=h).json()
    assert payload["data"]["sha"] == history[0]["sha"]
    assert payload["data"]["message"] == history[0]["message"]


def test_only_owners_manage_webhooks_and_the_secret_is_shown_once(
    client: TestClient[Any], user_factory: Callable[..., Person]
) -> None:
    owner, editor, stranger = user_factory(), user_factory(), user_factory()
    pid = client.post("/api/projects", headers=owner.headers, json={"name": "Owned"}).json()["id"]
    r = client.post(f"/api/projects/{pid}/members", headers=owner.headers,
                    json={"email": editor.user["email"], "role": "editor"})  # fmt: skip
    assert r.status_code in (200, 201), r.text
    base = f"/api/projects/{pid}/webhooks"

    created = client.post(base, headers=owner.headers, json={"url": "https://hooks.example.org/studio"})
    assert created.status_code == 201, created.text
    hook = created.json()
    assert hook["events"] == ["task.*", "commit"]
    assert hook["active"] is True
    listed = client.get(base, headers=owner.headers).json()
    assert [h["id"] for h in listed] == [hook["id"]]
    assert "secret" not in listed[0]
    assert "secret" not in client.get(f"{base}/{hook['id']}", headers=owner.headers).json()

    # Every webhook route, through the one owner guard: 403 for other members, 404 for strangers,
    # decided before the body is read (a stranger's malformed body is still a 404).
    one = f"{base}/{hook['id']}"
    routes = [("GET", base, None), ("POST", base, {"url": "https://x.example"}), ("GET", one, None),
              ("PATCH", one, {"active": False}), ("DELETE", one, None), ("GET", f"{one}/deliveries", None)]  # fmt: skip
    for method, url, body in routes:
        assert client.request(method, url, headers=editor.headers, json=body).status_code == 403, (
            method,
            url,
        )
        assert client.request(method, url, headers=stranger.headers, json=body).status_code == 404, (
            method,
            url,
        )
    assert client.post(base, headers=stranger.headers, json={"url": 42}).status_code == 404
    assert client.post(base, headers=editor.headers, json={"url": 42}).status_code == 403
    assert client.get(base).status_code == 401
    assert (
        client.get(one, headers=owner.headers).json()["active"] is True
    )  # the refused PATCH changed nothing

    changed = client.patch(f"{base}/{hook['id']}", headers=owner.headers,
                           json={"events": ["task.failed"], "active": False})  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert (changed.json()["events"], changed.json()["active"]) == (["task.failed"], False)
    assert client.get(f"{base}/{hook['id']}/deliveries", headers=owner.headers).json() == []
    assert client.delete(f"{base}/{hook['id']}", headers=owner.headers).status_code == 204
    assert client.get(f"{base}/{hook['id']}", headers=owner.headers).status_code == 404
    assert client.delete(f"{base}/{hook['id']}", headers=owner.headers).status_code == 404


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"url": "ftp://files.example.org/drop"}, "http:// or https://"),
        ({"url": "javascript:alert(1)"}, "http:// or https://"),
        ({"url": "hooks.example.org/no-scheme"}, "http:// or https://"),
        ({"url": "https://"}, "no host name"),
        ({"url": "https://user:pw@hooks.example.org/"}, "no user name or password"),
        ({"url": "https://hooks.example.org:99999/"}, "port"),
        ({"url": "https://hooks.example.org/", "events": ["task.exploded"]}, "unknown event 'task.exploded'"),
        ({"url": "https://hooks.example.org/", "events": []}, "events"),
    ],
)
def test_bad_webhooks_are_422_with_what_is_wrong(client: TestClient[Any], guest: Person, body: dict[str, Any],
                                                 words: str) -> None:  # fmt: skip
    pid = client.post("/api/projects", headers=guest.headers, json={"name": "P"}).json()["id"]
    r = client.post(f"/api/projects/{pid}/webhooks", headers=guest.headers, json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert words in r.json()["detail"]
    assert client.get(f"/api/projects/{pid}/webhooks", headers=guest.headers).json() == []


def test_with_redis_and_a_separate_worker_each_event_is_delivered_once(
    tmp_path: Any, redis_url: str, receiver: Receiver
) -> None:
    url = redis_url.rsplit("/", 1)[0] + "/6"
    live = start_server(
        tmp_path, STUDIO_BROKER_URL=url, STUDIO_BENCH_TASKS="true", STUDIO_SEED_SAMPLES="false"
    )
    worker = start_worker(tmp_path, url, STUDIO_BENCH_TASKS="true", STUDIO_SERVER_URL=live.url)
    try:
        h, pid = owner_project(live)
        hook = httpx.post(f"{live.url}/api/projects/{pid}/webhooks", headers=h,
                          json={"url": receiver.url, "events": ["*"]}).json()  # fmt: skip
        httpx.post(f"{live.url}/api/projects/{pid}/tasks", headers=h,
                   json={"kind": "bench.steps", "params": {"steps": 2}})  # fmt: skip
        got = receiver.wait(lambda g: any(b"task.succeeded" in r.body for r in g), seconds=30)
        time.sleep(1.0)  # anything sent twice would arrive by now
        types = sorted(verify(hook["secret"], g)["type"] for g in got)
        assert types == ["task.queued", "task.running", "task.succeeded"]
    finally:
        stop_worker(worker)
        stop_server(live)
