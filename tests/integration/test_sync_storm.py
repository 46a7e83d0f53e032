"""D1/R1 under load: ``kill -9`` of the server in the middle of a 20-client edit storm. After a
restart the stock clients reconnect by themselves and converge; every update any client saw is
there, and the Git repository matches the document."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from tests.integration.test_sync_interop import (
    NODES,
    Api,
    Node,
    kill_group,
    launch,
    shutdown,
)
from tests.interop_driver import free_port

CLIENTS = 20
EDITS_EACH = 10


def test_d1_r1_kill_9_in_a_20_client_storm_then_everyone_converges(tmp_path: Path, node: Node) -> None:
    port = free_port()
    first = launch(tmp_path, port, "server-1.log")
    api = Api(first.url)
    owner = api.guest()
    pid = api.project(owner, "Storm")["id"]
    names = [f"c{i}" for i in range(CLIENTS)]
    for name in [*names, "watcher"]:
        # keep_trying: after the crash they reconnect on their own, as browsers do.
        reply = node.open(name, api.ws, pid, owner.token, keep_trying=True, max_backoff_ms=300)
        assert reply.get("synced") is True, reply
    edits = [(names[i % CLIENTS], f"k{i}") for i in range(CLIENTS * EDITS_EACH)]
    crash_at = len(edits) // 2
    seen_before_crash: dict[str, Any] = {}
    try:
        for n, (client, key) in enumerate(edits):
            if n == crash_at:
                time.sleep(0.3)  # let the first half reach everyone
                seen_before_crash = node.state("watcher")["canvases"]["main"]["nodes"]
                kill_group(first.process)
            node("set", client, path=[*NODES, key], value={"type": "note", "x": n, "y": 0}, deep=True)
    finally:
        kill_group(first.process)
    assert len(seen_before_crash) >= crash_at // 2, "the storm never got going before the crash"

    second = launch(tmp_path, port, "server-2.log")
    try:
        last = edits[-1][1]
        for name in [*names, "watcher"]:
            node.wait_for(
                name, [*NODES, last], {"type": "note", "x": len(edits) - 1, "y": 0}, timeout_ms=20000
            )
        # The last edit can arrive before an earlier one that a client re-sends on reconnecting:
        # convergence is judged once the watcher holds every edit, each client given until the
        # deadline to reach the same state (under a loaded CI machine a resync takes a while).
        deadline = time.monotonic() + 20
        keys = {key for _, key in edits}
        final = settled(
            lambda: node.state("watcher"), lambda s: keys <= set(s["canvases"]["main"]["nodes"]), deadline
        )
        for name in names:
            state = settled(partial(node.state, name), lambda s: s == final, deadline)
            assert state == final, f"{name} did not converge"
        assert node.state("watcher") == final, "the watcher changed after every client converged"
        nodes = final["canvases"]["main"]["nodes"]
        assert keys <= set(nodes)
        for key, value in seen_before_crash.items():
            assert nodes[key] == value, f"{key}, seen before the crash, changed or vanished"
        root = second.workspace / api_path(api, owner, pid)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            on_disk = json.loads((root / "02_Source_Creative/Canvases/main.json").read_text())["nodes"]
            if on_disk == nodes:
                break
            time.sleep(0.2)
        assert on_disk == nodes, "the Git files never caught up with the document"
    finally:
        node.close_all()
        shutdown(second)


def settled(read: Callable[[], Any], done: Callable[[Any], bool], deadline: float) -> Any:
    """``read()`` again every 0.1 s until ``done`` holds for it or ``deadline`` passes; the last value."""
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.1)
        value = read()
    return value


def api_path(api: Api, owner: Any, pid: str) -> str:
    import httpx

    return str(httpx.get(f"{api.url}/api/projects/{pid}", headers=owner.headers).json()["path"])
