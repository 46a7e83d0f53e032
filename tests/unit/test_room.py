"""The room on its own, with an in-memory channel pair whose traffic the test flushes explicitly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from pycrdt import Doc, Map

from sync import protocol
from sync.protocol import Kind
from sync.room import Room, Who
from sync.updatelog import MemoryUpdateLog

OWNER = Who("u-owner", "Olga", can_write=True)
VIEWER = Who("u-viewer", "Vi", can_write=False)


class Pipe:
    """One peer's side: frames the test sends in, frames the room sent out, and a journal."""

    def __init__(self, journal: list[str], name: str) -> None:
        self.inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.sent: list[bytes] = []
        self.closed: tuple[int, str] | None = None
        self.journal = journal
        self.name = name

    async def send(self, data: bytes) -> None:
        self.sent.append(data)
        if protocol.parse(data).kind is Kind.SYNC_UPDATE:
            self.journal.append(f"sent to {self.name}")

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    async def frames(self) -> AsyncIterator[bytes]:
        while (frame := await self.inbox.get()) is not None:
            yield frame


class JournalLog(MemoryUpdateLog):
    def __init__(self, journal: list[str]) -> None:
        super().__init__()
        self.journal = journal

    def append(self, project_id: str, data: bytes, user_id: str) -> int:
        self.journal.append(f"logged by {user_id}")
        return super().append(project_id, data, user_id)


def seeded_doc(project_id: str) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    doc.get("meta", type=Map)["uuid"] = project_id
    return doc


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def an_edit(name: str) -> bytes:
    doc: Doc[Any] = Doc()
    doc.get("story", type=Map)["logline"] = name
    return protocol.sync_update(doc.get_update())


def test_d1_updates_are_logged_before_any_peer_receives_them() -> None:
    async def run() -> None:
        journal: list[str] = []
        touched: list[str] = []
        room = Room("p", seeded_doc("p"), JournalLog(journal), touched.append)
        a, b = Pipe(journal, "a"), Pipe(journal, "b")
        ta = asyncio.create_task(room.serve(a, OWNER, a.frames()))
        tb = asyncio.create_task(room.serve(b, OWNER, b.frames()))
        await settle()
        await a.inbox.put(an_edit("A storm"))
        await settle()
        assert journal == ["logged by u-owner", "sent to b"]
        assert touched == ["u-owner"]
        # The sender does not get its own update back; a duplicate is neither logged nor sent.
        await a.inbox.put(an_edit("A storm"))
        await settle()
        assert [protocol.parse(f).kind for f in a.sent] == [Kind.SYNC_STEP1]
        await a.inbox.put(None)
        await b.inbox.put(None)
        await asyncio.gather(ta, tb)

    asyncio.run(run())


def test_p2_viewer_updates_are_refused() -> None:
    async def run() -> None:
        journal: list[str] = []
        log = JournalLog(journal)
        room = Room("p", seeded_doc("p"), log, lambda user: None)
        viewer, owner = Pipe(journal, "viewer"), Pipe(journal, "owner")
        tasks = [
            asyncio.create_task(room.serve(viewer, VIEWER, viewer.frames())),
            asyncio.create_task(room.serve(owner, OWNER, owner.frames())),
        ]
        await settle()
        await viewer.inbox.put(an_edit("viewer was here"))
        await owner.inbox.put(an_edit("owner edit"))
        await settle()
        assert room.doc.get("story", type=Map).get("logline") == "owner edit"
        assert journal == ["logged by u-owner", "sent to viewer"]
        assert viewer.closed is None
        for pipe in (viewer, owner):
            await pipe.inbox.put(None)
        await asyncio.gather(*tasks)

    asyncio.run(run())


def test_a1_awareness_is_relayed_and_cleared_when_its_owner_leaves() -> None:
    async def run() -> None:
        room = Room("p", seeded_doc("p"), MemoryUpdateLog(), lambda user: None)
        a, b = Pipe([], "a"), Pipe([], "b")
        ta = asyncio.create_task(room.serve(a, OWNER, a.frames()))
        tb = asyncio.create_task(room.serve(b, OWNER, b.frames()))
        await settle()
        await a.inbox.put(protocol.awareness(protocol.encode_awareness([(77, 3, '{"cursor":[4,5]}')])))
        await settle()
        relayed = [protocol.decode_awareness(protocol.parse(f).payload) for f in b.sent[1:]]
        assert relayed == [[(77, 3, '{"cursor":[4,5]}')]]
        # A late joiner is told who is here.
        c = Pipe([], "c")
        tc = asyncio.create_task(room.serve(c, OWNER, c.frames()))
        await settle()
        assert protocol.decode_awareness(protocol.parse(c.sent[1]).payload) == [(77, 3, '{"cursor":[4,5]}')]
        await a.inbox.put(None)
        await ta
        await settle()
        assert protocol.decode_awareness(protocol.parse(b.sent[-1]).payload) == [(77, 4, "null")]
        assert room.awareness == {}
        for pipe in (b, c):
            await pipe.inbox.put(None)
        await asyncio.gather(tb, tc)

    asyncio.run(run())


def test_a1_silent_awareness_expires() -> None:
    async def run() -> None:
        room = Room("p", seeded_doc("p"), MemoryUpdateLog(), lambda user: None)
        a, b = Pipe([], "a"), Pipe([], "b")
        tasks = [asyncio.create_task(room.serve(p, OWNER, p.frames())) for p in (a, b)]
        await settle()
        await a.inbox.put(protocol.awareness(protocol.encode_awareness([(9, 1, '{"name":"Olga"}')])))
        await settle()
        room.expire_awareness(now=room.awareness[9].seen + 31)
        await settle()
        assert protocol.decode_awareness(protocol.parse(b.sent[-1]).payload) == [(9, 2, "null")]
        for pipe in (a, b):
            await pipe.inbox.put(None)
        await asyncio.gather(*tasks)

    asyncio.run(run())


def test_s1_a_room_takes_in_what_another_process_appended_once_and_logs_it_once() -> None:
    async def run() -> None:
        journal: list[str] = []
        log = JournalLog(journal)  # the log both "processes" share
        seed = seeded_doc("p").get_update()
        log.append("p", seed, "studio")
        here, there = Room("p", Doc(), log, lambda user: None), Room("p", Doc(), log, lambda user: None)
        for room in (here, there):
            room.doc.apply_update(seed)
            room.seen_seq = 1
        a, b = Pipe(journal, "a"), Pipe(journal, "b")
        ta = asyncio.create_task(here.serve(a, OWNER, a.frames()))
        tb = asyncio.create_task(there.serve(b, OWNER, b.frames()))
        await settle()
        await a.inbox.put(an_edit("A storm"))  # taken by this process's room
        await settle()
        assert journal == ["logged by studio", "logged by u-owner"]  # appended once, here
        assert there.doc.get("story", type=Map).get("logline") is None
        assert there.catch_up() == 1  # the other process's room reads it from the log …
        await settle()
        assert there.doc.get("story", type=Map)["logline"] == "A storm"
        assert journal.count("sent to b") == 1  # … passes it to its peer, without logging it again
        assert journal.count("logged by u-owner") == 1
        assert here.catch_up() == 0  # its own update changes nothing where it was taken
        assert there.catch_up() == 0  # and nothing comes twice
        assert journal.count("sent to a") == 0
        for pipe in (a, b):
            await pipe.inbox.put(None)
        await asyncio.gather(ta, tb)

    asyncio.run(run())
