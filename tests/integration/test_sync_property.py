"""A property (C1, O1, D1, M1): for any interleaving of edits, disconnects and reconnects, every
replica, the SQLite log and the Git files end equal."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Map, Text

from sync import protocol, repo
from sync.docmodel import doc_to_state, state_to_doc
from sync.jsonfile import normalize
from sync.materializer import Materializer
from sync.model import apply_template, empty_state, files_to_state
from sync.protocol import Kind
from sync.room import Peer, Room, Who
from sync.templates import get_template
from sync.updatelog import SQLiteUpdateLog
from sync.workspace import scaffold

PID = "7d9c2f52-0d5e-4a8e-9d61-2f1f6d7ac001"
USERS = [Who(f"user-{i}", f"Person {i}", can_write=True) for i in range(3)]


class Quiet:
    async def send(self, data: bytes) -> None:  # frames are read from the outbox directly
        return None

    async def close(self, code: int, reason: str) -> None:
        return None


class Replica:
    def __init__(self, room: Room, who: Who) -> None:
        self.room, self.who = room, who
        self.doc: Doc[Any] = Doc()
        self.peer: Peer | None = None

    def connect(self) -> None:
        self.peer = Peer(Quiet(), self.who)
        self.room.peers.add(self.peer)
        self.room.handle(self.peer, protocol.sync_step1(self.doc.get_state()))
        self.receive()
        self.room.handle(self.peer, protocol.sync_update(self.doc.get_update()))  # offline edits (O1)

    def disconnect(self) -> None:
        if self.peer is not None:
            self.room.peers.discard(self.peer)
            self.peer = None

    def edit(self, change: Any) -> None:
        before = self.doc.get_state()
        change(self.doc)
        if self.peer is not None:
            self.room.handle(self.peer, protocol.sync_update(self.doc.get_update(before)))

    def receive(self) -> None:
        while self.peer is not None and not self.peer.outbox.empty():
            frame = self.peer.outbox.get_nowait()
            if frame is None:
                continue
            message = protocol.parse(frame)
            if message.kind in (Kind.SYNC_STEP2, Kind.SYNC_UPDATE):
                self.doc.apply_update(message.payload)


def set_param(node: str, key: str, value: int) -> Any:
    def change(doc: Doc[Any]) -> None:
        nodes = doc.get("canvases", type=Map)["main"]["nodes"]
        if node not in nodes:
            nodes[node] = Map({"type": "note", "x": 0, "y": 0, "params": Map()})
        nodes[node]["params"][key] = value

    return change


def type_text(position: int, text: str) -> Any:
    def change(doc: Doc[Any]) -> None:
        description = doc.get("meta", type=Map)["description"]
        assert isinstance(description, Text)
        description.insert(min(position, len(description)), text)

    return change


operations = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.one_of(
            st.tuples(
                st.just("param"),
                st.sampled_from(["n1", "n2"]),
                st.sampled_from(["steps", "seed"]),
                st.integers(0, 99),
            ),
            st.tuples(st.just("text"), st.integers(0, 20), st.text("abcxyz ", min_size=1, max_size=4)),
            st.tuples(st.just("disconnect")),
            st.tuples(st.just("connect")),
            st.tuples(st.just("deliver")),
        ),
    ),
    max_size=40,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_c1_every_replica_the_log_and_git_converge(ops: list[Any]) -> None:
    asyncio.run(_run(ops))


async def _run(ops: list[Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "Project"
        state = apply_template(empty_state(uuid=PID, name="Prop", template="three-act", created="t"),
                               get_template("three-act"))  # fmt: skip
        root.mkdir()
        scaffold(root, state)
        repo.init(root)
        repo.commit_all(root, "Create", repo.Author("a", "a@b.c"))
        log = SQLiteUpdateLog(Path(tmp) / "sync.db")
        server_doc = state_to_doc(state)  # the server seeds the doc once (R1)
        log.append(PID, server_doc.get_update(), "filesystem")
        room = Room(PID, server_doc, log, lambda user: None)
        replicas = [Replica(room, who) for who in USERS]
        for r in replicas:
            r.connect()
        for i, op in ops:
            r = replicas[i]
            if op[0] == "param":
                r.edit(set_param(op[1], op[2], op[3]))
            elif op[0] == "text":
                r.edit(type_text(op[1], op[2]))
            elif op[0] == "disconnect":
                r.disconnect()
            elif op[0] == "connect" and r.peer is None:
                r.connect()
            for other in replicas:
                if op[0] == "deliver" or other is not r:
                    other.receive()
        for r in replicas:
            if r.peer is None:
                r.connect()
        for _ in range(3):
            for r in replicas:
                r.receive()
        expected = normalize(doc_to_state(room.doc))
        for r in replicas:
            assert normalize(doc_to_state(r.doc)) == expected
        rebuilt: Doc[Any] = Doc()
        for entry in log.load(PID).updates:
            rebuilt.apply_update(entry.data)
        assert normalize(doc_to_state(rebuilt)) == expected
        materializer = Materializer(authors=lambda ids: {u: repo.Author(u, f"{u}@x.y") for u in ids})
        materializer.write(PID, root, doc_to_state(room.doc), [w.user_id for w in USERS])
        assert normalize(files_to_state(root)) == expected
