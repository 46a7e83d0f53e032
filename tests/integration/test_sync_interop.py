"""The stock npm clients (``yjs`` + ``y-websocket``) against the real ``studio serve`` (sync/SPEC.md).

Node clients run in one ``tests/interop/client.mjs`` process (``tests/interop_driver.py``); the
Python :class:`~sync.client.SyncClient` runs on its own event loop in a thread, so one test can
hold both. Each test works in its own project; accounts come from the REST API. Test names carry
the rule ids of ``sync/SPEC.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import websockets
from pycrdt import Map, Text

from sync import protocol
from sync.client import SyncClient
from sync.docmodel import doc_to_state
from tests.conftest import LiveServer, children, free_port, git, start_server, stop_server
from tests.interop_driver import NodeClients, node_available

pytestmark = pytest.mark.skipif(not node_available(), reason="node and npm are needed for the npm yjs client")

T = TypeVar("T")
ABSENT = object()
CANVAS_FILE = "02_Source_Creative/Canvases/main.json"
NODES = ["canvases", "main", "nodes"]
FAST_LIMITS = {
    "STUDIO_RATE_LIMIT_USER": "100000",
    "STUDIO_RATE_LIMIT_IP": "100000",
    "STUDIO_RATE_LIMIT_AUTH": "100000",
    "STUDIO_SEED_SAMPLES": "false",
}


# -- accounts and projects over the REST API ----------------------------------------------------------


@dataclass
class Account:
    token: str
    user: dict[str, Any]
    email: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Api:
    def __init__(self, url: str) -> None:
        self.url = url
        self.ws = url.replace("http://", "ws://", 1)

    def _post(self, path: str, body: Any = None, who: Account | None = None, status: int = 201) -> Any:
        r = httpx.post(f"{self.url}{path}", json=body, headers=who.headers if who else {}, timeout=30)
        assert r.status_code == status, f"POST {path}: {r.status_code} {r.text}"
        return r.json()

    def guest(self) -> Account:
        return Account(**self._post("/api/auth/guest"))

    def register(self, name: str) -> Account:
        email = f"{uuid.uuid4().hex[:12]}@example.org"
        body = {"email": email, "password": "correct horse battery", "name": name}
        return Account(**self._post("/api/auth/register", body), email=email)

    def project(self, who: Account, name: str = "Interop", description: str = "") -> dict[str, Any]:
        body = {"name": f"{name} {uuid.uuid4().hex[:6]}", "template": "three-act", "description": description}
        return dict(self._post("/api/projects", body, who))

    def add_member(self, owner: Account, project_id: str, member: Account, role: str) -> None:
        self._post(f"/api/projects/{project_id}/members", {"email": member.email, "role": role}, owner, 200)

    def remove_member(self, owner: Account, project_id: str, member: Account) -> None:
        r = httpx.delete(
            f"{self.url}/api/projects/{project_id}/members/{member.user['id']}",
            headers=owner.headers,
            timeout=30,
        )
        assert r.status_code == 204, r.text

    def login(self, who: Account) -> Account:
        """A second sign-in of ``who`` (another browser): same person, another token."""
        body = {"email": who.email, "password": "correct horse battery"}
        got = self._post("/api/auth/login", body, status=200)
        return Account(token=got["token"], user=got["user"], email=who.email)

    def logout(self, who: Account) -> None:
        r = httpx.post(f"{self.url}/api/auth/logout", headers=who.headers, timeout=30)
        assert r.status_code == 204, r.text

    def trash(self, owner: Account, project_id: str) -> None:
        r = httpx.delete(f"{self.url}/api/projects/{project_id}", headers=owner.headers, timeout=30)
        assert r.status_code in (200, 204), r.text


# -- Node clients ------------------------------------------------------------------------------------


class Node:
    """The Node clients one test opens (closed when it ends), over the module's Node process."""

    def __init__(self, node: NodeClients, prefix: str) -> None:
        self.node = node
        self.prefix = prefix
        self.names: set[str] = set()

    def name(self, client: str) -> str:
        return f"{self.prefix}-{client}"

    def open(self, client: str, ws: str, project_id: str, token: str, **kw: Any) -> dict[str, Any]:
        self.names.add(client)
        params = {"token": token} if token else {}
        return self.node.call(
            "open", client=self.name(client), url=f"{ws}/sync", room=project_id, params=params, **kw
        )

    def join(self, client: str, ws: str, project_id: str, token: str) -> None:
        reply = self.open(client, ws, project_id, token)
        assert reply.get("synced") is True, reply

    def __call__(self, cmd: str, client: str, **kw: Any) -> dict[str, Any]:
        return self.node.call(cmd, client=self.name(client), **kw)

    def wait_for(self, client: str, path: list[Any], value: Any, timeout_ms: int = 5000) -> None:
        self("wait_for", client, path=path, value=value, timeout_ms=timeout_ms)

    def state(self, client: str) -> dict[str, Any]:
        return dict(self("state", client)["state"])

    def get(self, client: str, path: list[Any]) -> Any:
        """The JSON value at ``path``, or :data:`ABSENT`."""
        reply = self("get", client, path=path)
        return reply.get("value", ABSENT)

    def close_all(self) -> None:
        for client in self.names:
            with contextlib.suppress(Exception):
                self("close", client)
        self.names.clear()


# -- a Python SyncClient on its own event loop ------------------------------------------------------------


class PyPeer:
    """A :class:`SyncClient` driven from a synchronous test: every call runs on the client's loop thread."""

    def __init__(self, ws: str, project_id: str, token: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.client: SyncClient = self.call(lambda: SyncClient(ws, project_id, token))

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 15) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T]) -> T:
        async def wrapped() -> T:
            return fn()

        return self.run(wrapped())

    def connect(self) -> None:
        self.run(self.client.connect())

    def edit(self, fn: Callable[[Any], None]) -> None:
        def apply() -> None:
            with self.client.doc.transaction():
                fn(self.client.doc)

        self.call(apply)
        self.run(self.client.flushed())

    def state(self) -> dict[str, Any]:
        return self.call(lambda: doc_to_state(self.client.doc))

    def wait(
        self, check: Callable[[dict[str, Any]], bool], timeout: float = 5, what: str = ""
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if check(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"python client: {what or 'condition'} not met in {timeout} s: {state}")
            time.sleep(0.02)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.run(self.client.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


# -- fixtures --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    s = start_server(tmp_path_factory.mktemp("sync-interop"), **FAST_LIMITS)
    workers = children(s.process.pid)
    yield s
    stop_server(s)
    reap(workers)  # stop_server kills only the parent when it is slow to stop


@pytest.fixture(scope="module")
def api(server: LiveServer) -> Api:
    return Api(server.url)


@pytest.fixture(scope="module")
def node_process() -> Iterator[NodeClients]:
    with NodeClients() as n:
        yield n


@pytest.fixture
def node(node_process: NodeClients, request: pytest.FixtureRequest) -> Iterator[Node]:
    clients = Node(node_process, request.node.name)
    yield clients
    clients.close_all()


@pytest.fixture
def py_peers() -> Iterator[Callable[[str, str, str], PyPeer]]:
    opened: list[PyPeer] = []

    def make(ws: str, project_id: str, token: str) -> PyPeer:
        peer = PyPeer(ws, project_id, token)
        opened.append(peer)
        peer.connect()
        return peer

    yield make
    for peer in opened:
        peer.close()


def node_value(x: int, y: int, kind: str = "image") -> dict[str, Any]:
    return {"type": kind, "x": x, "y": y, "params": {}}


def set_py_node(key: str, value: dict[str, Any]) -> Callable[[Any], None]:
    def edit(doc: Any) -> None:
        nodes = doc.get("canvases", type=Map)["main"]["nodes"]
        nodes[key] = Map({k: Map(v) if isinstance(v, dict) else v for k, v in value.items()})

    return edit


def project_root(server: LiveServer, project: dict[str, Any]) -> Path:
    return server.workspace / project["path"]


def commits(root: Path) -> list[str]:
    return git(root, "log", "--format=%H").split()


def wait_for_commit(root: Path, after: int, timeout: float = 3.0) -> float:
    """Seconds until the repository has more than ``after`` commits (fails after ``timeout``)."""
    start = time.monotonic()
    while len(commits(root)) <= after:
        if time.monotonic() - start > timeout:
            raise AssertionError(
                f"no new commit in {root} within {timeout} s:\n{git(root, 'log', '--oneline')}"
            )
        time.sleep(0.05)
    return time.monotonic() - start


async def raw_refusal(url: str) -> tuple[int | None, str, list[Any]]:
    """Connect like y-websocket does (sync step 1 + awareness at once); return the close and every frame."""
    frames: list[Any] = []
    async with websockets.connect(url) as ws:
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(protocol.sync_step1(b"\x00"))
            await ws.send(protocol.awareness(protocol.encode_awareness([(1, 1, "{}")])))
        with contextlib.suppress(websockets.ConnectionClosed):
            async with asyncio.timeout(5):
                async for frame in ws:
                    frames.append(frame)
        return ws.close_code, ws.close_reason or "", frames


# -- P1: refusals come before any document byte -----------------------------------------------------------


@pytest.fixture(scope="module")
def refusal_cases(api: Api) -> dict[str, tuple[str, str, int]]:
    """case → (project id, token, expected close code)."""
    owner, stranger = api.guest(), api.guest()
    mine = api.project(owner, "Private")
    trashed = api.project(owner, "Trashed")
    api.trash(owner, trashed["id"])
    return {
        "no-token": (mine["id"], "", 4401),
        "bad-token": (mine["id"], "not-a-token", 4401),
        "unknown-project": (str(uuid.uuid4()), owner.token, 4404),
        "not-a-uuid": ("no-such-project", owner.token, 4404),
        "trashed-project": (trashed["id"], owner.token, 4404),
        "another-users-project": (mine["id"], stranger.token, 4403),
    }


CASES = ["no-token", "bad-token", "unknown-project", "not-a-uuid", "trashed-project", "another-users-project"]


@pytest.mark.parametrize("case", CASES)
def test_p1_refused_socket_gets_close_code_and_no_frame(
    api: Api, refusal_cases: dict[str, tuple[str, str, int]], case: str
) -> None:
    project_id, token, code = refusal_cases[case]
    url = f"{api.ws}/sync/{project_id}" + (f"?token={token}" if token else "")
    got, reason, frames = asyncio.run(raw_refusal(url))
    assert (got, frames) == (code, []), reason
    assert reason


@pytest.mark.parametrize("case", CASES)
def test_p1_stock_yjs_client_sees_close_code_and_stays_empty(
    api: Api, node: Node, refusal_cases: dict[str, tuple[str, str, int]], case: str
) -> None:
    """y-websocket sends sync step 1 and its awareness the moment the socket opens; the refusal
    must still reach it as the close code (not 1006), and it must hold no document content.
    Five attempts, since an unread frame at close turns the close into a reset only sometimes."""
    project_id, token, code = refusal_cases[case]
    seen = []
    for attempt in range(5):
        client = f"x{attempt}"
        # keep_trying: the driver leaves the provider alone, so its own reconnect decision shows.
        reply = node.open(client, api.ws, project_id, token, timeout_ms=5000, keep_trying=True)
        assert "synced" not in reply, reply
        status = node("status", client)
        seen.append((reply.get("closed"), reply.get("ws_error"), status["should_connect"]))
        state = node.state(client)
        assert state == {"meta": {}, "canvases": {}, "story": {}, "assets": {}, "takes": {}, "chat": []}
        assert node("update_count", client)["count"] == 0
        node("close", client)
    # (code, no socket error, y-websocket gave up reconnecting: a 44xx close is final)
    assert seen == [(code, None, False)] * 5


# -- C1 / D2: concurrent edits converge on every replica ----------------------------------------------------


def test_c1_d2_concurrent_sets_converge_on_two_yjs_clients_and_a_python_client(
    api: Api, node: Node, py_peers: Callable[[str, str, str], PyPeer]
) -> None:
    owner = api.guest()
    project = api.project(owner, "Converge")
    pid = project["id"]
    node.join("a", api.ws, pid, owner.token)
    node.join("b", api.ws, pid, owner.token)
    py = py_peers(api.ws, pid, owner.token)

    # The document is the contract's, seeded by the server from the project's files.
    state = node.state("a")
    assert set(state) >= {"meta", "canvases", "story", "assets", "takes", "chat"}
    assert state["meta"]["uuid"] == pid
    assert state["meta"]["name"] == project["name"]
    assert state["meta"]["template"] == "three-act"
    assert state["meta"]["open_canvas"] == "main"
    assert state["canvases"]["main"] == {"name": "Main", "order": 0, "nodes": {}, "edges": {}}
    assert set(state["story"]["acts"]) == {"act-1", "act-2", "act-3"}
    assert state["chat"] == []
    assert py.state() == state

    # All three write at once: their own node, and the same key (last writer wins, everywhere).
    def edit_a() -> None:
        node("set", "a", path=[*NODES, "na"], value=node_value(10, 20), deep=True)
        node("set", "a", path=[*NODES, "shared"], value=node_value(1, 1, "from-a"), deep=True)

    def edit_b() -> None:
        node("set", "b", path=[*NODES, "nb"], value=node_value(30, 40, "video"), deep=True)
        node("set", "b", path=[*NODES, "shared"], value=node_value(2, 2, "from-b"), deep=True)

    def edit_py() -> None:
        py.edit(set_py_node("npy", node_value(50, 60, "text")))
        py.edit(set_py_node("shared", node_value(3, 3, "from-py")))

    with ThreadPoolExecutor(3) as pool:
        for f in [pool.submit(fn) for fn in (edit_a, edit_b, edit_py)]:
            f.result()

    for client in ("a", "b"):
        node.wait_for(client, [*NODES, "na"], node_value(10, 20))
        node.wait_for(client, [*NODES, "nb"], node_value(30, 40, "video"))
        node.wait_for(client, [*NODES, "npy"], node_value(50, 60, "text"))
    py.wait(lambda s: {"na", "nb", "npy"} <= set(s["canvases"]["main"]["nodes"]), what="all nodes")
    # Converged: the three replicas hold the same document, down to the winner of "shared".
    deadline = time.monotonic() + 5
    while True:
        a, b, p = node.state("a"), node.state("b"), py.state()
        if a == b == p or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert a == b == p
    assert a["canvases"]["main"]["nodes"]["shared"]["type"] in ("from-a", "from-b", "from-py")
    # A late joiner gets the same document from the server alone.
    node.join("late", api.ws, pid, owner.token)
    assert node.state("late") == a


# -- D3: a refused frame closes only its sender ----------------------------------------------------------------


def test_d3_refused_frame_closes_only_its_sender_yjs_clients_carry_on(api: Api, node: Node) -> None:
    owner = api.guest()
    pid = api.project(owner, "Refused")["id"]
    node.join("a", api.ws, pid, owner.token)
    node.join("b", api.ws, pid, owner.token)
    node("set", "a", path=[*NODES, "before"], value=node_value(1, 2), deep=True)
    node.wait_for("b", [*NODES, "before"], node_value(1, 2))

    async def send_garbage() -> int | None:
        async with websockets.connect(f"{api.ws}/sync/{pid}?token={owner.token}") as ws:
            await ws.recv()  # the server's sync step 1
            await ws.send(bytes([0, 2, 5, 1, 2]))  # a sync step 2 whose length runs past the frame
            with contextlib.suppress(websockets.ConnectionClosed):
                async with asyncio.timeout(5):
                    async for _ in ws:
                        pass
            return ws.close_code

    assert asyncio.run(send_garbage()) == 4400
    node("set", "b", path=[*NODES, "after"], value=node_value(3, 4), deep=True)
    node.wait_for("a", [*NODES, "after"], node_value(3, 4))
    assert node("status", "a")["closes"] == []
    assert node("status", "b")["closes"] == []
    assert node.state("a") == node.state("b")


# -- O1: offline edits are delivered on reconnect, once ---------------------------------------------------------


def test_o1_offline_edits_reach_the_room_on_reconnect_once(
    api: Api, node: Node, py_peers: Callable[[str, str, str], PyPeer]
) -> None:
    owner = api.guest()
    pid = api.project(owner, "Offline", description="Harbour at dawn")["id"]
    node.join("a", api.ws, pid, owner.token)
    node.join("b", api.ws, pid, owner.token)
    watcher = py_peers(api.ws, pid, owner.token)

    node("disconnect", "a")
    node("set", "a", path=[*NODES, "offline"], value=node_value(7, 8), deep=True)
    node("text_insert", "a", path=["meta", "description"], index=0, text="Grey ")
    node("set", "b", path=[*NODES, "online"], value=node_value(9, 9), deep=True)  # while a is away
    node.wait_for("b", [*NODES, "online"], node_value(9, 9))
    time.sleep(0.3)
    assert node.get("b", [*NODES, "offline"]) is ABSENT
    watcher.wait(lambda s: "online" in s["canvases"]["main"]["nodes"], what="b's online edit")
    received = watcher.call(lambda: watcher.client.received_updates)

    reply = node("connect", "a")
    assert reply.get("synced") is True, reply
    node.wait_for("b", [*NODES, "offline"], node_value(7, 8))
    node.wait_for("b", ["meta", "description"], "Grey Harbour at dawn")
    node.wait_for("a", [*NODES, "online"], node_value(9, 9))  # and a caught up with b
    watcher.wait(lambda s: s["meta"]["description"] == "Grey Harbour at dawn", what="offline text")
    time.sleep(0.5)  # anything sent twice would have arrived by now
    assert watcher.call(lambda: watcher.client.received_updates) - received == 1
    assert node.get("b", ["meta", "description"]) == "Grey Harbour at dawn"
    assert node.state("a") == node.state("b") == watcher.state()


# -- C2: text merges character by character -----------------------------------------------------------------------


def test_c2_concurrent_inserts_at_both_ends_of_the_description_merge(
    api: Api, node: Node, py_peers: Callable[[str, str, str], PyPeer]
) -> None:
    owner = api.guest()
    pid = api.project(owner, "Text", description="middle")["id"]
    node.join("a", api.ws, pid, owner.token)
    node.join("b", api.ws, pid, owner.token)
    py = py_peers(api.ws, pid, owner.token)
    # The server seeded meta.description from project.json as a Y.Text (text_insert refuses anything else).
    assert py.call(lambda: isinstance(py.client.doc.get("meta", type=Map)["description"], Text))
    assert node.get("a", ["meta", "description"]) == "middle"

    # Truly concurrent: both edit while cut off from each other, then meet again.
    node("disconnect", "a")
    node("disconnect", "b")
    node("text_insert", "a", path=["meta", "description"], index=0, text="start ")
    node("text_insert", "b", path=["meta", "description"], index=len("middle"), text=" end")
    node("text_insert", "a", path=["meta", "description"], index=len("start mid"), text="[a]")
    node("text_insert", "b", path=["meta", "description"], index=len("mid"), text="[b]")
    assert node.get("a", ["meta", "description"]) == "start mid[a]dle"
    assert node.get("b", ["meta", "description"]) == "mid[b]dle end"
    for client in ("a", "b"):
        assert node("connect", client).get("synced") is True

    def merged(text: str) -> bool:
        return text in ("start mid[a][b]dle end", "start mid[b][a]dle end")

    deadline = time.monotonic() + 5
    while True:
        texts = [node.get("a", ["meta", "description"]), node.get("b", ["meta", "description"])]
        texts.append(py.state()["meta"]["description"])
        if (merged(texts[0]) and len(set(texts)) == 1) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert merged(texts[0]), texts
    assert len(set(texts)) == 1, texts

    # Live as well: a Python insert in the middle and a Node insert at the start both land.
    def py_insert(doc: Any) -> None:
        doc.get("meta", type=Map)["description"].insert(len("start "), "X")

    py.edit(py_insert)
    node("text_insert", "a", path=["meta", "description"], index=0, text="Y")
    for client in ("a", "b"):
        deadline = time.monotonic() + 5
        while not (text := node.get(client, ["meta", "description"])).startswith("Ystart Xmid"):
            assert time.monotonic() < deadline, text
            time.sleep(0.05)
    py.wait(lambda s: s["meta"]["description"].startswith("Ystart Xmid"), what="merged text")


# -- A1: awareness is relayed, and cleared when its owner leaves ------------------------------------------------------


@pytest.mark.parametrize("leave", ["close", "disconnect"])
def test_a1_awareness_relayed_and_cleared_when_its_owner_leaves(
    api: Api, node: Node, py_peers: Callable[[str, str, str], PyPeer], leave: str
) -> None:
    owner = api.guest()
    pid = api.project(owner, "Presence")["id"]
    node.join("a", api.ws, pid, owner.token)
    node.join("b", api.ws, pid, owner.token)
    py = py_peers(api.ws, pid, owner.token)
    a_id = node("status", "a")["client_id"]
    presence = {"user": {"name": "Ada", "color": "#f00"}, "cursor": {"node": "n1", "field": "prompt"}}
    node("awareness_set", "a", state=presence)

    deadline = time.monotonic() + 5
    while True:
        peers = node("awareness_peers", "b", min=1)
        if presence in peers["peers"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert presence in peers["peers"]
    assert a_id in peers["ids"]
    py_seen = py.call(lambda: dict(py.client.peers))
    deadline = time.monotonic() + 5
    while json.loads(py_seen.get(a_id, "null")) != presence and time.monotonic() < deadline:
        time.sleep(0.05)
        py_seen = py.call(lambda: dict(py.client.peers))
    assert json.loads(py_seen[a_id]) == presence

    node(leave, "a")  # no goodbye message: the server must clear a's state for everyone
    left = time.monotonic()
    while True:
        peers = node("awareness_peers", "b")
        gone_b = a_id not in peers["ids"]
        gone_py = a_id not in py.call(lambda: dict(py.client.peers))
        if (gone_b and gone_py) or time.monotonic() - left > 5:
            break
        time.sleep(0.05)
    assert gone_b, f"b still sees a's awareness {time.monotonic() - left:.1f} s after a left: {peers}"
    assert gone_py, "the Python client still sees a's awareness"


# -- P2: viewers receive but cannot write -------------------------------------------------------------------------


def test_p2_viewer_receives_edits_but_its_own_never_reach_anyone_or_git(
    api: Api, node: Node, server: LiveServer
) -> None:
    owner, viewer = api.register("Olive Owner"), api.register("Victor Viewer")
    project = api.project(owner, "Viewing")
    pid = project["id"]
    api.add_member(owner, pid, viewer, "viewer")
    root = project_root(server, project)
    node.join("o", api.ws, pid, owner.token)
    node.join("v", api.ws, pid, viewer.token)
    before = len(commits(root))

    node("set", "o", path=[*NODES, "by-owner"], value=node_value(30, 40), deep=True)
    node.wait_for("v", [*NODES, "by-owner"], node_value(30, 40))

    node("set", "v", path=[*NODES, "by-viewer"], value=node_value(66, 66), deep=True)
    node("text_insert", "v", path=["meta", "description"], index=0, text="viewer was here")
    # The viewer stays connected and keeps receiving after its refused write.
    node("set", "o", path=[*NODES, "by-owner-2"], value=node_value(1, 2), deep=True)
    node.wait_for("v", [*NODES, "by-owner-2"], node_value(1, 2))
    assert node("status", "v")["connected"] is True
    time.sleep(0.5)
    assert node.get("o", [*NODES, "by-viewer"]) is ABSENT
    assert node.get("o", ["meta", "description"]) == ""
    # Nor is it in the room: a fresh client gets the owner's edits only.
    node.join("fresh", api.ws, pid, owner.token)
    nodes = node.get("fresh", NODES)
    assert set(nodes) == {"by-owner", "by-owner-2"}

    wait_for_commit(root, before)
    time.sleep(1.5)  # let any later commit land too
    canvas = json.loads((root / CANVAS_FILE).read_text())
    assert set(canvas["nodes"]) == {"by-owner", "by-owner-2"}
    assert "viewer was here" not in (root / "project.json").read_text()
    assert "Victor Viewer" not in git(root, "log", "--format=%an %B")


# -- P4: access withdrawn or changed while a socket is open ----------------------------------------------------


def closes_of(node: Node, client: str, code: int, timeout: float = 3.0, times: int = 1) -> dict[str, Any]:
    """The client's status once its socket was closed with ``code`` ``times`` times (fails after
    ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        status = node("status", client)
        if sum(c["code"] == code for c in status["closes"]) >= times:
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"{client} was not closed with {code} within {timeout} s: {status}")
        time.sleep(0.05)


def owner_and_editor_in_a_room(
    api: Api, node: Node, title: str, editor_name: str, client: str
) -> tuple[Account, Account, str]:
    """Olga Owner's project ``title`` with an editor; both connected (as "o" and ``client``)."""
    owner, editor = api.register("Olga Owner"), api.register(editor_name)
    pid = api.project(owner, title)["id"]
    api.add_member(owner, pid, editor, "editor")
    node.join("o", api.ws, pid, owner.token)
    node.join(client, api.ws, pid, editor.token)
    return owner, editor, pid


def test_p4_a_removed_member_is_closed_at_once_and_the_others_carry_on(api: Api, node: Node) -> None:
    owner, editor, pid = owner_and_editor_in_a_room(api, node, "Removing", "Eddie Editor", "e")
    node("set", "e", path=[*NODES, "before"], value=node_value(1, 1), deep=True)
    node.wait_for("o", [*NODES, "before"], node_value(1, 1))

    started = time.monotonic()
    api.remove_member(owner, pid, editor)
    status = closes_of(node, "e", 4403, timeout=2.0)
    assert time.monotonic() - started < 2.0
    assert "no longer a member" in status["closes"][-1]["reason"]
    time.sleep(0.5)  # 4403 is permanent: the stock client does not come back
    assert node("status", "e")["connected"] is False
    # The owner's socket stayed open and the room goes on.
    node("set", "o", path=[*NODES, "after"], value=node_value(2, 2), deep=True)
    node.join("fresh", api.ws, pid, owner.token)
    assert set(node.get("fresh", NODES)) == {"before", "after"}
    assert node("status", "o")["closes"] == []
    # And the removed person cannot come back in.
    assert node.open("again", api.ws, pid, editor.token).get("closed") == 4403


def test_p4_a_role_change_takes_effect_on_the_open_socket(api: Api, node: Node) -> None:
    owner, member, pid = owner_and_editor_in_a_room(api, node, "Roles", "Rory Role", "m")

    api.add_member(owner, pid, member, "viewer")  # an editor becomes a viewer
    closes_of(node, "m", 4500)
    node("connect", "m", keep_trying=True)  # the stock client reconnects by itself; wait for it
    node("set", "m", path=[*NODES, "as-viewer"], value=node_value(5, 5), deep=True)
    node("set", "o", path=[*NODES, "owner-mark"], value=node_value(6, 6), deep=True)
    node.wait_for("m", [*NODES, "owner-mark"], node_value(6, 6))  # still receives
    time.sleep(0.5)
    assert node.get("o", [*NODES, "as-viewer"]) is ABSENT  # its write is refused now

    api.add_member(owner, pid, member, "editor")  # and back
    closes_of(node, "m", 4500, times=2)
    node("connect", "m", keep_trying=True)
    node("set", "m", path=[*NODES, "as-editor"], value=node_value(7, 7), deep=True)
    node.wait_for("o", [*NODES, "as-editor"], node_value(7, 7))


def test_p4_signing_out_closes_that_sign_ins_sockets_only(api: Api, node: Node) -> None:
    person = api.register("Sam Twice")
    laptop, phone = person, api.login(person)
    pid = api.project(person, "Two devices")["id"]
    node.join("laptop", api.ws, pid, laptop.token)
    node.join("phone", api.ws, pid, phone.token)

    api.logout(laptop)
    status = closes_of(node, "laptop", 4401, timeout=2.0)
    assert "signed out" in status["closes"][-1]["reason"]
    node("set", "laptop", path=[*NODES, "after-sign-out"], value=node_value(8, 8), deep=True)
    node("set", "phone", path=[*NODES, "from-phone"], value=node_value(9, 9), deep=True)
    node.join("check", api.ws, pid, phone.token)
    assert set(node.get("check", NODES)) == {"from-phone"}
    assert node("status", "phone")["closes"] == []


def test_p4_access_removed_by_another_server_process_closes_within_seconds(
    api: Api, node: Node, server: LiveServer
) -> None:
    """Another server process (or `sqlite3` by hand) changes the index: the sweep catches it."""
    owner, editor = api.register("Olga Owner"), api.register("Ed Elsewhere")
    pid = api.project(owner, "Elsewhere")["id"]
    api.add_member(owner, pid, editor, "editor")
    node.join("e", api.ws, pid, editor.token)
    with contextlib.closing(sqlite3.connect(server.data_dir / "studio.db")) as db, db:
        db.execute("DELETE FROM members WHERE project_id = ? AND user_id = ?", [pid, editor.user["id"]])
    closes_of(node, "e", 4403, timeout=8.0)


# -- M1: the materializer commits the document to Git, with attribution ----------------------------------------------


def test_m1_edits_are_committed_within_seconds_as_plain_files_by_their_author(
    api: Api, node: Node, server: LiveServer
) -> None:
    ada = api.register("Ada Lovelace")
    project = api.project(ada, "Commit")
    root = project_root(server, project)
    before = len(commits(root))
    node.join("a", api.ws, project["id"], ada.token)
    node.join("b", api.ws, project["id"], ada.token)

    node(
        "set",
        "a",
        path=[*NODES, "n1"],
        value={"type": "image", "x": 30, "y": 40.5, "params": {"seed": 7}},
        deep=True,
    )
    node("set", "a", path=[*NODES, "n1", "params", "prompt"], value="a lighthouse", text=True)
    node("set", "a", path=["canvases", "main", "edges", "e1"],
         value={"source": "n1", "sourceHandle": "out", "target": "n2", "targetHandle": "in"}, deep=True)  # fmt: skip
    node.wait_for("b", ["canvases", "main", "edges", "e1", "target"], "n2")
    took = wait_for_commit(root, before)
    assert took < 3.0

    text = (root / CANVAS_FILE).read_text()
    canvas = json.loads(text)
    assert canvas["nodes"]["n1"] == {
        "type": "image",
        "x": 30,
        "y": 40.5,
        "params": {"seed": 7, "prompt": "a lighthouse"},
    }
    assert canvas["edges"]["e1"] == {
        "source": "n1",
        "sourceHandle": "out",
        "target": "n2",
        "targetHandle": "in",
    }
    assert '"x": 30,' in text
    assert '"seed": 7' in text
    assert "30.0" not in text
    assert text == json.dumps(canvas, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert git(root, "status", "--porcelain") == ""
    name, email = git(root, "log", "-1", "--format=%an%n%ae").split("\n")[:2]
    assert (name, email) == ("Ada Lovelace", ada.email)
    assert "Co-authored-by" not in git(root, "log", "-1", "--format=%B")
    git(root, "fsck", "--strict")


def test_m1_two_editors_one_commit_author_and_co_authored_by_trailer(
    api: Api, node: Node, server: LiveServer
) -> None:
    ada, grace = api.register("Ada Lovelace"), api.register("Grace Hopper")
    project = api.project(ada, "Together")
    api.add_member(ada, project["id"], grace, "editor")
    root = project_root(server, project)
    before = len(commits(root))
    node.join("ada", api.ws, project["id"], ada.token)
    node.join("grace", api.ws, project["id"], grace.token)

    for i in range(3):  # Ada makes most of the updates: she is the author
        node("set", "ada", path=[*NODES, f"ada{i}"], value=node_value(i, i), deep=True)
    node("set", "grace", path=[*NODES, "grace"], value=node_value(100, 200), deep=True)
    node.wait_for("ada", [*NODES, "grace"], node_value(100, 200))
    node.wait_for("grace", [*NODES, "ada2"], node_value(2, 2))
    wait_for_commit(root, before)
    time.sleep(1.5)  # one commit expected; give a stray second one the time to show
    new = len(commits(root)) - before
    assert new == 1, git(root, "log", "--format=%an: %s")

    author, body = git(root, "log", "-1", "--format=%an <%ae>%n%B").split("\n", 1)
    assert author == f"Ada Lovelace <{ada.email}>"
    assert f"Co-authored-by: Grace Hopper <{grace.email}>" in body.splitlines()
    canvas = json.loads((root / CANVAS_FILE).read_text())
    assert set(canvas["nodes"]) == {"ada0", "ada1", "ada2", "grace"}
    assert git(root, "status", "--porcelain") == ""


# -- D1 / R1: kill -9 right after a broadcast, restart on the same data: nothing is lost ----------------------------------


def launch(base: Path, port: int, log_name: str) -> LiveServer:
    """``studio serve`` over ``base/data`` and ``base/workspace`` on ``port``, in its own process group."""
    return start_server(base, port=port, log_name=log_name, **FAST_LIMITS)


def reap(workers: list[int]) -> None:
    """SIGKILL for the Granian workers in ``workers`` that outlived their server."""
    for pid in workers:
        with contextlib.suppress(OSError):
            if b"app.cli" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL for the server and its Granian workers at once, like a power cut or an OOM kill."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def shutdown(server: LiveServer) -> None:
    """Stop a server from :func:`launch` gracefully, then make sure nothing of its group is left."""
    stop_server(server)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGKILL)


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError, httpx.HTTPError), httpx.Client(timeout=0.5) as c:
        c.get(f"http://127.0.0.1:{port}/api/health")
        return True
    return False


def test_d1_r1_kill_9_after_a_broadcast_then_restart_loses_nothing(tmp_path: Path, node: Node) -> None:
    port = free_port()
    first = launch(tmp_path, port, "server-1.log")
    try:
        api = Api(first.url)
        owner = api.guest()
        project = api.project(owner, "Crash", description="before")
        pid = project["id"]
        node.join("a", api.ws, pid, owner.token)
        node.join("b", api.ws, pid, owner.token)

        for i in range(20):
            node("set", "a", path=[*NODES, f"n{i}"], value=node_value(i, 2 * i), deep=True)
        node("text_insert", "a", path=["meta", "description"], index=0, text="after crash, ")
        node(
            "chat_push",
            "b",
            message={"id": "m1", "author": "b", "role": "user", "text": "hello", "time": "t"},
        )
        node("set", "b", path=["story", "logline"], value="A keeper stays.", text=True)
        node.wait_for("b", [*NODES, "n19"], node_value(19, 38))
        node.wait_for("b", ["meta", "description"], "after crash, before")
        node.wait_for("a", ["story", "logline"], "A keeper stays.")
        node.wait_for("a", ["chat", 0, "id"], "m1")
        kill_group(first.process)  # every edit above was seen by a second client: it must survive
    finally:
        kill_group(first.process)
    node("disconnect", "a")  # keep what a and b hold away from the new server for now
    node("disconnect", "b")
    seen = node.state("a")
    assert seen == node.state("b")

    second = launch(tmp_path, port, "server-2.log")
    try:
        node.join("c", api.ws, pid, owner.token)
        assert node.state("c") == seen  # from the log alone
        # The clients reconnect and nothing doubles (the chat message stays one message).
        for client in ("a", "b"):
            assert node("connect", client).get("synced") is True
        node("set", "a", path=[*NODES, "n-after"], value=node_value(1, 1), deep=True)
        node.wait_for("c", [*NODES, "n-after"], node_value(1, 1))
        node.wait_for("b", [*NODES, "n-after"], node_value(1, 1))  # b hears of it a moment later
        final = node.state("c")
        assert len(final["chat"]) == 1
        assert node.state("a") == node.state("b") == final
        assert {f"n{i}" for i in range(20)} <= set(final["canvases"]["main"]["nodes"])
    finally:
        shutdown(second)


def test_m1_r1_repository_catches_up_after_a_crash_without_new_edits(tmp_path: Path, node: Node) -> None:
    """Edits the log holds but Git does not (killed before the materializer ran) reach the
    repository after a restart, without waiting for someone to edit the project again."""
    port = free_port()
    first = launch(tmp_path, port, "server-1.log")
    try:
        api = Api(first.url)
        owner = api.register("Crash Owner")
        project = api.project(owner, "Catch up")
        pid = project["id"]
        root = project_root(first, project)
        node.join("a", api.ws, pid, owner.token)
        node.join("b", api.ws, pid, owner.token)
        node("set", "a", path=[*NODES, "lost"], value=node_value(5, 6), deep=True)
        node.wait_for("b", [*NODES, "lost"], node_value(5, 6))
    finally:
        kill_group(first.process)  # well inside the 1 s quiet period: Git has not seen it
    node("close", "a")
    node("close", "b")
    assert "lost" not in json.loads((root / CANVAS_FILE).read_text())["nodes"]

    second = launch(tmp_path, port, "server-2.log")
    try:
        node.join("c", api.ws, pid, owner.token)  # someone opens the project, edits nothing
        assert node.get("c", [*NODES, "lost"]) == node_value(5, 6)
        deadline = time.monotonic() + 5
        while "lost" not in json.loads(git(root, "show", f"HEAD:{CANVAS_FILE}"))["nodes"]:
            assert time.monotonic() < deadline, (
                "the repository still lacks the edit the log holds, 5 s after the room was reloaded"
            )
            time.sleep(0.1)
        assert git(root, "status", "--porcelain") == ""
        assert git(root, "log", "-1", "--format=%an").strip() == "Crash Owner"
    finally:
        shutdown(second)


def test_r1_sigkill_of_studio_serve_leaves_no_worker_serving(tmp_path: Path) -> None:
    """``kill -9`` of the ``studio serve`` process (what a supervisor or the OOM killer does) must
    not leave its Granian worker running: an orphan keeps the port (with SO_REUSEPORT a restarted
    server shares it), its own copy of every room, and writes to the same repositories. Two
    rounds, killed at different moments after start, since the outcome has depended on timing."""
    outcomes = []
    for n, delay in enumerate((0.0, 1.0)):
        port = free_port()
        server = launch(tmp_path, port, f"server-{n}.log")
        workers = children(server.process.pid)
        assert workers, "no Granian worker found"
        try:
            time.sleep(delay)
            server.process.kill()
            server.process.wait(timeout=10)
            deadline = time.monotonic() + 5
            while (
                alive := [w for w in workers if Path(f"/proc/{w}").exists()]
            ) and time.monotonic() < deadline:
                time.sleep(0.1)
            outcomes.append((delay, alive, port_open(port)))
        finally:
            reap(workers)
            kill_group(server.process)
    # (seconds after start, workers still running 5 s after the kill, port still answering)
    assert outcomes == [(delay, [], False) for delay, _, _ in outcomes]
