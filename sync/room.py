"""A room: one project's live document and the peers editing it.

The room knows no transport: a peer is a :class:`Channel` (``send``/``close``) plus who it is.
Rules (numbered as in ``sync/SPEC.md``):

- D1 an update is appended to the log before any peer sees it;
- D2 a peer receives every accepted update except its own, in the order they were accepted;
- D3 a refused frame closes only its sender, and leaves the document untouched;
- P4 a peer whose access is withdrawn while it is connected is closed (4401 signed out, 4403
  no longer a member); one whose role changes writes (or stops writing) from then on and is
  closed with 4500, so its client reconnects and asks for its role again (:meth:`Room.reauthorise`);
- A1 awareness is relayed to every other peer and cleared when its owner leaves or goes quiet;
- S1 updates other server processes appended to the shared log reach this room's peers
  (:meth:`Room.catch_up`); S2 so do their peers' awareness states (:meth:`Room.take_awareness`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, Protocol

from pycrdt import Doc, Map, MapEvent

from sync import protocol
from sync.protocol import Close, Kind, ProtocolError
from sync.updatelog import UpdateLog

log = logging.getLogger("sync.room")
OUTBOX_LIMIT = 2000
AWARENESS_TIMEOUT_S = 30.0
AWARENESS_RATE = 60.0  # messages a second, per peer (cursors at full frame rate)
AWARENESS_BURST = 240.0


class Channel(Protocol):
    async def send(self, data: bytes) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


@dataclass(frozen=True)
class Who:
    user_id: str
    name: str
    can_write: bool
    session: str = ""  # which sign-in (a token's hash): signing out closes its sockets


class Refusal(NamedTuple):
    """A peer's access is gone: close it with ``code`` and ``reason``."""

    code: int
    reason: str


# What a peer may do now: write (True), only read (False), or nothing any more.
Access = bool | Refusal


@dataclass(eq=False)
class Peer:
    channel: Channel
    who: Who
    outbox: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(OUTBOX_LIMIT))
    awareness_ids: set[int] = field(default_factory=set)
    tokens: float = AWARENESS_BURST
    last_refill: float = field(default_factory=time.monotonic)
    closed: bool = False
    task: asyncio.Task[Any] | None = None
    kick: tuple[int, str] | None = None

    def take_awareness_token(self) -> bool:
        now = time.monotonic()
        self.tokens = min(AWARENESS_BURST, self.tokens + (now - self.last_refill) * AWARENESS_RATE)
        self.last_refill = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@dataclass
class AwarenessEntry:
    clock: int
    state: str
    owner: Peer | None  # None: a peer of another server process (S2)
    seen: float


CONFLICT_WINDOW_S = 30.0
LOST_WRITE_TRIES = 10  # how many recent writes by others a lost write is looked for behind
WATCHED_ROOTS = ("meta", "canvases", "story", "assets", "takes")


@dataclass(frozen=True)
class Conflict:
    """A value one person wrote that another person's write replaced moments later (C3)."""

    path: list[str]
    lost: Any
    kept: Any
    lost_by: str
    kept_by: str


def _plain(value: Any) -> Any:
    to_py = getattr(value, "to_py", None)
    if to_py is None:
        return value
    try:
        return to_py()
    except Exception:  # a shared value already removed from the doc
        return None


_MISSING = object()


def _value_at(doc: Doc[Any], path: tuple[str, ...]) -> Any:
    """The plain value at ``path`` (root name, then keys), or ``_MISSING``."""
    node: Any = doc.get(path[0], type=Map)
    for key in path[1:]:
        if not isinstance(node, Map) or key not in node:
            return _MISSING
        node = node[key]
    return _plain(node)


def _writes_at(
    doc: Doc[Any], update: bytes, paths: set[tuple[str, ...]]
) -> list[tuple[tuple[str, ...], Any]]:
    """Apply ``update`` to ``doc``; return the (key path, value) it visibly wrote in the maps at ``paths``."""
    written: list[tuple[tuple[str, ...], Any]] = []

    def collect(root: str) -> Callable[..., None]:
        def observe(events: list[Any], *_: Any) -> None:
            for event in events:
                path = (root, *[str(p) for p in event.path])
                if isinstance(event, MapEvent) and path in paths:
                    for key, change in getattr(event, "keys", {}).items():
                        if change.get("action") in ("add", "update"):
                            written.append(((*path, str(key)), _plain(change.get("newValue"))))

        return observe

    roots = [(doc.get(name, type=Map), name) for name in {p[0] for p in paths}]
    subscriptions = [(root, root.observe_deep(collect(name))) for root, name in roots]
    try:
        doc.apply_update(update)
    finally:
        for root, subscription in subscriptions:
            root.unobserve(subscription)
    return written


def _same_value(a: Any, b: Any) -> bool:
    # 30 == 30.0 (pycrdt hands numbers back as floats), but True is not 1.
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


class Room:
    """See the module docstring. ``on_update(user_id)`` is called after every accepted update;
    ``on_conflict`` hears of every value that lost to a near-simultaneous write by someone else."""

    def __init__(
        self,
        project_id: str,
        doc: Doc[Any],
        updates: UpdateLog,
        on_update: Callable[[str], None],
        on_conflict: Callable[[Conflict], None] = lambda conflict: None,
    ) -> None:
        self.project_id = project_id
        self.doc = doc
        self.updates = updates
        self.on_update = on_update
        self.peers: set[Peer] = set()
        self.awareness: dict[int, AwarenessEntry] = {}
        self.last_active = time.monotonic()
        self.on_conflict = on_conflict
        self._captured: list[bytes] = []
        self._subscription = doc.observe(lambda event: self._captured.append(event.update))
        self._writer = ""
        self._last_write: dict[tuple[str, ...], tuple[str, float]] = {}
        self._silent: set[tuple[str, ...]] = set()
        self._deep_subscriptions = self._watch_keys()
        # The log position up to which this room has looked for the updates of other server
        # processes (its own appends are in the doc already; S1).
        self.seen_seq = 0
        self._catching_up = False
        # Hears the awareness changes of this process's peers, for the other processes (S2).
        self.on_awareness: Callable[[bytes], None] = lambda payload: None

    def _watch_keys(self) -> list[Any]:
        subs: list[Any] = []
        for name in WATCHED_ROOTS:
            root = self.doc.get(name, type=Map)
            # The root is kept alongside its subscription: pycrdt drops the subscription of a
            # shared type that is garbage-collected.
            subs.append((root, root.observe_deep(self._key_observer(name))))
        return subs

    def _key_observer(self, root: str) -> Callable[..., None]:
        # pycrdt calls deep observers with (events, transaction): no default-argument tricks.
        def observe(events: list[Any], *_: Any) -> None:
            self._on_keys(root, events)

        return observe

    def _on_keys(self, root: str, events: list[Any]) -> None:
        # Who wrote each key last, and when: a different person replacing it within the window
        # is a conflict the CRDT resolved silently, so the losing value is reported.
        now = time.monotonic()
        writer = self._writer
        for event in events:
            if isinstance(event, MapEvent) and not getattr(event, "keys", None) and writer:
                # Something was written into this map and nothing it shows changed: a write that
                # lost the merge to a concurrent one (see _report_lost_writes).
                self._silent.add((root, *[str(p) for p in getattr(event, "path", [])]))
            for key, change in (getattr(event, "keys", None) or {}).items():
                path = (root, *[str(p) for p in event.path], str(key))
                # The latest write to the key or to any map above it (a node added whole).
                found = [
                    w for i in range(2, len(path) + 1) if (w := self._last_write.get(path[:i])) is not None
                ]
                previous = max(found, key=lambda w: w[1], default=None)
                if (
                    writer
                    and not self._catching_up  # reported by the process that accepted the write
                    and previous is not None
                    and previous[0] != writer
                    and now - previous[1] < CONFLICT_WINDOW_S
                    and change.get("action") in ("update", "delete")
                ):
                    self.on_conflict(
                        Conflict(list(path), _plain(change.get("oldValue")), _plain(change.get("newValue")),
                                 previous[0], writer)
                    )  # fmt: skip
                self._last_write[path] = (writer, now)

    # -- peers ------------------------------------------------------------------------------------

    async def serve(self, channel: Channel, who: Who, frames: AsyncIterator[bytes]) -> None:
        """Run one peer until its frames end or it is refused."""
        peer = Peer(channel, who, task=asyncio.current_task())
        writer = asyncio.get_running_loop().create_task(self._write(peer))
        self.peers.add(peer)
        self.last_active = time.monotonic()
        try:
            self._queue(peer, protocol.sync_step1(self.doc.get_state()))
            if self.awareness:
                entries = [(cid, e.clock, e.state) for cid, e in self.awareness.items()]
                self._queue(peer, protocol.awareness(protocol.encode_awareness(entries)))
            async for frame in frames:
                self.handle(peer, frame)
                if peer.closed:
                    break
        except ProtocolError as exc:
            log.warning("peer_refused project=%s user=%s reason=%s", self.project_id, who.user_id, exc)
            await self._close(peer, exc.code, str(exc))
        except asyncio.CancelledError:
            if peer.kick is None:
                raise
            # Kicked out (see _kick): the read was interrupted, so closing cannot race it.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            await self._close(peer, *peer.kick)
        finally:
            self.peers.discard(peer)
            self._forget_awareness(peer)
            self.last_active = time.monotonic()
            writer.cancel()

    def handle(self, peer: Peer, frame: bytes) -> None:
        """Handle one frame from ``peer`` (raises :class:`ProtocolError` to refuse it)."""
        message = protocol.parse(frame)
        if message.kind is Kind.SYNC_STEP1:
            try:
                reply = self.doc.get_update(message.payload)
            except Exception:
                raise ProtocolError("sync step 1 with a malformed state vector") from None
            self._queue(peer, protocol.sync_step2(reply))
        elif message.kind in (Kind.SYNC_STEP2, Kind.SYNC_UPDATE):
            self._apply(peer, message.payload)
        elif message.kind is Kind.AWARENESS:
            self._relay_awareness(peer, message.payload)
        elif message.kind is Kind.QUERY_AWARENESS:
            entries = [(cid, e.clock, e.state) for cid, e in self.awareness.items()]
            self._queue(peer, protocol.awareness(protocol.encode_awareness(entries)))

    # -- document ---------------------------------------------------------------------------------

    def _apply(self, peer: Peer, update: bytes) -> None:
        if update in (b"\x00\x00", b""):
            return
        if not peer.who.can_write:
            log.info(
                "viewer_update_refused project=%s user=%s bytes=%d",
                self.project_id,
                peer.who.user_id,
                len(update),
            )
            return
        self._check_foreign(update)
        self._captured.clear()
        self._silent.clear()
        self._writer = peer.who.user_id
        try:
            self.doc.apply_update(update)
        except Exception:
            self._captured.clear()
            raise ProtocolError("the update could not be decoded") from None
        finally:
            self._writer = ""
        changes, self._captured = self._captured, []
        silent, self._silent = self._silent, set()
        if not changes:
            return  # nothing new (a duplicate, or waiting for updates it depends on)
        if not self._still_this_project():
            self._reload()
            raise ProtocolError("the update belongs to another document")
        if silent:
            self._report_lost_writes(update, silent, peer.who.user_id)
        for change in changes:
            seq = self.updates.append(self.project_id, change, peer.who.user_id)  # D1: durable first
            self._appended(seq)
            self.broadcast(protocol.sync_update(change), exclude=peer)
        self.last_active = time.monotonic()
        self.on_update(peer.who.user_id)

    def apply_local(self, user_id: str, mutate: Callable[[Doc[Any]], object]) -> bool:
        """Change the doc on the server's side (restore, files edited on disk, tasks) as ``user_id``."""
        self._captured.clear()
        self._writer = user_id
        try:
            mutate(self.doc)
        finally:
            self._writer = ""
        changes, self._captured = self._captured, []
        for change in changes:
            self._appended(self.updates.append(self.project_id, change, user_id))
            self.broadcast(protocol.sync_update(change))
        if changes:
            self.on_update(user_id)
        return bool(changes)

    def _appended(self, seq: int) -> None:
        # Nobody else wrote in between: the room has seen the log up to its own append, so the
        # next catch-up does not read it back (S1).
        if seq == self.seen_seq + 1:
            self.seen_seq = seq

    def catch_up(self) -> int:
        """S1: integrate what other server processes appended to the shared log since this room
        last looked, and broadcast it to this room's peers (nothing is appended: it is in the log
        already). Its own appends come back only when another process wrote in between, and then
        change nothing. Returns how many updates
        changed the doc."""
        project_id = self.project_id
        if self.updates.snapshot_seq(project_id) > self.seen_seq:
            # Another process compacted the log past this room's position: its snapshot holds
            # what this room missed (applying a state it partly has changes only what is new).
            loaded = self.updates.load(project_id)
            batch = [(loaded.snapshot or b"", "", loaded.snapshot_seq)]
            batch += [(e.data, e.user_id, e.seq) for e in loaded.updates]
        else:
            batch = [(e.data, e.user_id, e.seq) for e in self.updates.since(project_id, self.seen_seq)]
        changed = 0
        for data, user_id, seq in batch:
            self.seen_seq = max(self.seen_seq, seq)
            if not data:
                continue
            self._captured.clear()
            self._writer, self._catching_up = user_id, True
            try:
                self.doc.apply_update(data)
            except Exception:  # accepted by another process, so not expected; never fatal here
                log.exception("catch_up_failed project=%s seq=%s", project_id, seq)
            finally:
                self._writer, self._catching_up = "", False
            changes, self._captured = self._captured, []
            for change in changes:
                self.broadcast(protocol.sync_update(change))
            changed += bool(changes)
        if changed:
            self.last_active = time.monotonic()
        return changed

    def _report_lost_writes(self, update: bytes, paths: set[tuple[str, ...]], writer: str) -> None:
        """C3 for the write that loses the merge: Yjs orders concurrent writes to one key by client
        id, so a write arriving after a concurrent one may never show. Replayed without the other
        people's recent writes it may have lost to (newest first, one more each try), the update
        shows what it wrote; each value the document does not hold is reported as lost."""
        loaded = self.updates.load(self.project_id)
        cutoff = time.time() - CONFLICT_WINDOW_S
        entries = loaded.updates
        others = [i for i, e in enumerate(entries) if e.user_id != writer and e.time >= cutoff]
        if not others:
            return
        try:
            base: Doc[Any] = Doc()
            if loaded.snapshot:
                base.apply_update(loaded.snapshot)
            for entry in entries[: others[0]]:
                base.apply_update(entry.data)
            prefix = base.get_update()
            excluded: set[int] = set()
            for index in reversed(others[-LOST_WRITE_TRIES:]):
                excluded.add(entries[index].seq)
                scratch: Doc[Any] = Doc()
                scratch.apply_update(prefix)
                for entry in entries[others[0] :]:
                    if entry.seq not in excluded:
                        scratch.apply_update(entry.data)
                lost = [
                    (path, value, kept)
                    for path, value in _writes_at(scratch, update, paths)
                    if (kept := _value_at(self.doc, path)) is not _MISSING and not _same_value(kept, value)
                ]
                if lost:
                    break
            else:
                return
        except Exception:  # the log the room was loaded from: not expected, and never fatal here
            log.exception("lost_write_replay_failed project=%s", self.project_id)
            return
        for path, value, kept in lost:
            kept_by = self._last_write.get(path, ("", 0.0))[0]
            self.on_conflict(Conflict(list(path), value, kept, writer, kept_by))

    def _check_foreign(self, update: bytes) -> None:
        # Whatever of the update stands on its own integrates into an empty doc: a whole document
        # sent to the wrong room shows its own meta.uuid there. (Checked before applying, since a
        # conflicting uuid may lose the merge and hide in the doc without changing what it shows.)
        scratch: Doc[Any] = Doc()
        try:
            scratch.apply_update(update)
        except Exception:
            raise ProtocolError("the update could not be decoded") from None
        uuid = scratch.get("meta", type=Map).get("uuid")
        if uuid not in (None, self.project_id):
            raise ProtocolError("the update belongs to another document")

    def _still_this_project(self) -> bool:
        uuid = self.doc.get("meta", type=Map).get("uuid")
        return uuid in (None, self.project_id)

    def _reload(self) -> None:
        # Undo a refused update: rebuild the doc from what the log holds (it never held that one).
        doc = self.updates.load(self.project_id).replay()
        self.doc.unobserve(self._subscription)
        self.doc = doc
        self._subscription = doc.observe(lambda event: self._captured.append(event.update))
        self._deep_subscriptions = self._watch_keys()

    # -- awareness --------------------------------------------------------------------------------

    def _relay_awareness(self, peer: Peer, payload: bytes) -> None:
        if not peer.take_awareness_token():
            raise ProtocolError("too many awareness messages", Close.RATE_LIMITED)
        now = time.monotonic()
        kept = []
        for client_id, clock, state in protocol.decode_awareness(payload):
            entry = self.awareness.get(client_id)
            if entry is not None and entry.owner is not peer:
                continue  # a peer speaks only for its own clients
            if state != "null":
                try:
                    json.loads(state)
                except ValueError:
                    raise ProtocolError("awareness state is not JSON") from None
            peer.awareness_ids.add(client_id)
            if state == "null":
                self.awareness.pop(client_id, None)
            else:
                self.awareness[client_id] = AwarenessEntry(clock, state, peer, now)
            kept.append((client_id, clock, state))
        if kept:
            payload = protocol.encode_awareness(kept)
            self.broadcast(protocol.awareness(payload), exclude=peer)
            self.on_awareness(payload)

    def take_awareness(self, payload: bytes) -> None:
        """S2: awareness states of another server process's peers, relayed to this room's peers and
        kept (for peers that join later) until cleared, replaced or 30 s old. A client id one of
        this process's peers speaks for is left to that peer."""
        now = time.monotonic()
        kept = []
        try:
            entries = protocol.decode_awareness(payload)
        except ProtocolError:
            log.warning("remote_awareness_malformed project=%s", self.project_id)
            return
        for client_id, clock, state in entries:
            entry = self.awareness.get(client_id)
            if entry is not None and entry.owner is not None:
                continue
            if state == "null":
                self.awareness.pop(client_id, None)
            else:
                self.awareness[client_id] = AwarenessEntry(clock, state, None, now)
            kept.append((client_id, clock, state))
        if kept:
            self.broadcast(protocol.awareness(protocol.encode_awareness(kept)))

    def local_awareness(self) -> bytes | None:
        """The awareness states of this process's own peers (for a process that just loaded the
        room: S2), or None when there are none."""
        entries = [(cid, e.clock, e.state) for cid, e in self.awareness.items() if e.owner is not None]
        return protocol.encode_awareness(entries) if entries else None

    def _forget_awareness(self, peer: Peer) -> None:
        gone = [(cid, e.clock + 1, "null") for cid, e in self.awareness.items() if e.owner is peer]
        for cid, _, _ in gone:
            del self.awareness[cid]
        if gone:
            payload = protocol.encode_awareness(gone)
            self.broadcast(protocol.awareness(payload))
            self.on_awareness(payload)

    def expire_awareness(self, now: float | None = None) -> None:
        """Clear awareness states their owners stopped renewing (y-protocols renews every 15 s)."""
        now = time.monotonic() if now is None else now
        stale = [
            (cid, e.clock + 1, "null")
            for cid, e in self.awareness.items()
            if now - e.seen > AWARENESS_TIMEOUT_S
        ]
        for cid, _, _ in stale:
            del self.awareness[cid]
        if stale:
            self.broadcast(protocol.awareness(protocol.encode_awareness(stale)))

    # -- sending ----------------------------------------------------------------------------------

    def broadcast(self, frame: bytes, exclude: Peer | None = None) -> None:
        for peer in list(self.peers):
            if peer is not exclude:
                self._queue(peer, frame)

    def _queue(self, peer: Peer, frame: bytes) -> None:
        if peer.closed:
            return
        try:
            peer.outbox.put_nowait(frame)
        except asyncio.QueueFull:
            # A peer that cannot keep up is dropped; it resyncs when it reconnects.
            self._kick(peer, Close.SLOW_CONSUMER, "too slow to keep up")

    async def _write(self, peer: Peer) -> None:
        try:
            while True:
                frame = await peer.outbox.get()
                if frame is None:
                    return
                await peer.channel.send(frame)
        except Exception:  # the socket went away; the reader side ends the peer
            peer.closed = True

    async def _close(self, peer: Peer, code: int, reason: str) -> None:
        peer.closed = True
        self.peers.discard(peer)
        try:
            await peer.channel.close(code, reason)
        except Exception:  # already gone
            log.debug("close_failed project=%s", self.project_id)

    def _kick(self, peer: Peer, code: int, reason: str) -> None:
        """Close a peer from outside its own task: interrupt its read, and its task closes it.

        Closing a socket while another coroutine waits on its receive blocks (Granian), so the
        peer's task is cancelled with the reason attached and closes the socket itself."""
        peer.closed = True
        peer.kick = (code, reason)
        if peer.task is not None and peer.task is not asyncio.current_task():
            peer.task.cancel()

    def sessions(self) -> set[tuple[str, str]]:
        """(user id, session) of every open peer."""
        return {(p.who.user_id, p.who.session) for p in self.peers if not p.closed}

    def reauthorise(self, access: dict[tuple[str, str], Access]) -> int:
        """Apply what each session may do now (P4); sessions not in ``access`` are left as they are.
        Returns how many peers were closed."""
        closed = 0
        for peer in list(self.peers):
            now = access.get((peer.who.user_id, peer.who.session))
            if now is None or peer.closed:
                continue
            if isinstance(now, Refusal):
                log.info("peer_access_withdrawn project=%s user=%s code=%d", self.project_id,
                         peer.who.user_id, now.code)  # fmt: skip
                self._kick(peer, now.code, now.reason)
                closed += 1
            elif now != peer.who.can_write:
                # From this frame on its updates are taken (or refused); the client reconnects and
                # reads its new role, so its screen matches what the server accepts.
                peer.who = replace(peer.who, can_write=now)
                log.info("peer_role_changed project=%s user=%s can_write=%s", self.project_id,
                         peer.who.user_id, now)  # fmt: skip
                self._kick(peer, Close.ROLE_CHANGED, "your role in this project changed")
                closed += 1
        return closed

    async def close_all(self, code: int = Close.GOING_AWAY, reason: str = "server shutting down") -> None:
        peers = list(self.peers)
        for peer in peers:
            self._kick(peer, code, reason)
        tasks = [p.task for p in peers if p.task is not None and p.task is not asyncio.current_task()]
        if tasks:
            await asyncio.wait(tasks, timeout=5)
