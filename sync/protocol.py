"""The y-websocket wire protocol, server side: message kinds, limits and close codes.

Every frame is binary: a var-uint message type, then the payload. Sync messages (type 0) carry
a sync sub-type (step 1: a state vector; step 2 and update: a Yjs v1 update) and a
length-prefixed payload; awareness messages (type 1) carry a length-prefixed awareness update.
The twin of this module in the browser is ``pwa/src/lib/sync/protocol.ts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from pycrdt import Decoder, YMessageType, YSyncMessageType, create_awareness_message, write_var_uint

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 8 * 1024 * 1024
MAX_AWARENESS_BYTES = 64 * 1024


class Close(IntEnum):
    """Close codes, sent before any document byte when a peer is refused."""

    NORMAL = 1000
    GOING_AWAY = 1001
    TOO_LARGE = 1009
    BAD_MESSAGE = 4400
    UNAUTHENTICATED = 4401
    FORBIDDEN = 4403
    NOT_FOUND = 4404
    SLOW_CONSUMER = 4408
    RATE_LIMITED = 4429
    # Not at connect: an open socket whose person became editor or viewer. In the 4500-4599 range
    # ("try again"), so the stock y-websocket client reconnects by itself and gets the new role.
    ROLE_CHANGED = 4500


class ProtocolError(ValueError):
    """A frame the server refuses; ``code`` is the close code to answer with."""

    def __init__(self, reason: str, code: Close = Close.BAD_MESSAGE) -> None:
        super().__init__(reason)
        self.code = code


class Kind(IntEnum):
    SYNC_STEP1 = 1
    SYNC_STEP2 = 2
    SYNC_UPDATE = 3
    AWARENESS = 4
    QUERY_AWARENESS = 5


@dataclass(frozen=True)
class Message:
    kind: Kind
    payload: bytes


def parse(frame: bytes) -> Message:
    """Decode one frame; raises :class:`ProtocolError` for anything malformed.

    >>> parse(bytes([0, 0, 1, 0])).kind
    <Kind.SYNC_STEP1: 1>
    """
    if not frame:
        raise ProtocolError("empty frame")
    if len(frame) > MAX_FRAME_BYTES:
        raise ProtocolError(
            f"frame of {len(frame)} bytes is over the {MAX_FRAME_BYTES} limit", Close.TOO_LARGE
        )
    try:
        decoder = Decoder(frame)
        msg_type = decoder.read_var_uint()
        if msg_type == YMessageType.SYNC:
            sub = decoder.read_var_uint()
            payload = decoder.read_message()
            if payload is None or decoder.length != 0:
                raise ProtocolError("sync message with a bad length")
            kinds = {
                YSyncMessageType.SYNC_STEP1: Kind.SYNC_STEP1,
                YSyncMessageType.SYNC_STEP2: Kind.SYNC_STEP2,
                YSyncMessageType.SYNC_UPDATE: Kind.SYNC_UPDATE,
            }
            if sub not in kinds:
                raise ProtocolError(f"unknown sync message type {sub}")
            return Message(kinds[YSyncMessageType(sub)], payload)
        if msg_type == YMessageType.AWARENESS:
            payload = decoder.read_message()
            if payload is None or decoder.length != 0:
                raise ProtocolError("awareness message with a bad length")
            if len(payload) > MAX_AWARENESS_BYTES:
                raise ProtocolError("awareness state too large", Close.TOO_LARGE)
            return Message(Kind.AWARENESS, payload)
        if msg_type == 3:  # query awareness
            return Message(Kind.QUERY_AWARENESS, b"")
        raise ProtocolError(f"unknown message type {msg_type}")
    except ProtocolError:
        raise
    except Exception as exc:  # the decoder raises assorted errors on truncated input
        raise ProtocolError(f"malformed frame ({type(exc).__name__})") from None


def sync_step1(state_vector: bytes) -> bytes:
    return (
        bytes([YMessageType.SYNC, YSyncMessageType.SYNC_STEP1])
        + write_var_uint(len(state_vector))
        + state_vector
    )


def sync_step2(update: bytes) -> bytes:
    return bytes([YMessageType.SYNC, YSyncMessageType.SYNC_STEP2]) + write_var_uint(len(update)) + update


def sync_update(update: bytes) -> bytes:
    return bytes([YMessageType.SYNC, YSyncMessageType.SYNC_UPDATE]) + write_var_uint(len(update)) + update


def awareness(payload: bytes) -> bytes:
    return create_awareness_message(payload)


def decode_awareness(payload: bytes) -> list[tuple[int, int, str]]:
    """The (client id, clock, state JSON) entries of an awareness update."""
    try:
        decoder = Decoder(payload)
        count = decoder.read_var_uint()
        if count > 1000:
            raise ProtocolError("awareness update with too many clients")
        entries = []
        for _ in range(count):
            client_id = decoder.read_var_uint()
            clock = decoder.read_var_uint()
            state = decoder.read_var_string()
            entries.append((client_id, clock, state))
        return entries
    except ProtocolError:
        raise
    except Exception as exc:
        raise ProtocolError(f"malformed awareness update ({type(exc).__name__})") from None


def encode_awareness(entries: list[tuple[int, int, str]]) -> bytes:
    """An awareness update from (client id, clock, state JSON) entries; ``"null"`` removes a client."""
    out = bytearray(write_var_uint(len(entries)))
    for client_id, clock, state in entries:
        data = state.encode()
        out += write_var_uint(client_id) + write_var_uint(clock) + write_var_uint(len(data)) + data
    return bytes(out)
