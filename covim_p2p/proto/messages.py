"""Session messages carried whole (reassembled) over a link's reliable channel.

Each starts with one type byte::

    SYNC      0x00 | y-sync message (step1 state vector / step2 update)
    AWARENESS 0x01 | y-awareness message
    WANT      0x03 | vector: count, then client/seq varuint pairs (ledger.py)
    SIGNED    0x04 | reply:u8 | bundle of signed records (authorship.py)

Document changes travel only as SIGNED records (protocol v5): a WANT asks
for what the asker lacks, author by author, and SIGNED answers it (``reply``
1) or carries new changes.  SYNC is the y-protocols message a Yjs peer
sends; it is decoded so that it can be refused and counted ("unsigned"),
since nothing vouches for who wrote its content.  AWARENESS is exactly
y-protocols'.
"""

from __future__ import annotations

from dataclasses import dataclass

from pycrdt import YMessageType, YSyncMessageType, create_awareness_message
from pycrdt._sync import create_message

from .authorship import Material, decode_bundle_untrusted, encode_bundle
from .codec import DecodeError, Reader
from .document import decode_state_vector_untrusted

M_SYNC, M_AWARENESS, M_WANT, M_SIGNED = 0, 1, 3, 4


@dataclass(frozen=True, slots=True)
class SyncStep1:
    state_vector: bytes


@dataclass(frozen=True, slots=True)
class SyncStep2:
    update: bytes


@dataclass(frozen=True, slots=True)
class Want:
    vector: bytes


@dataclass(frozen=True, slots=True)
class Signed:
    materials: tuple[Material, ...]
    reply: bool = False


@dataclass(frozen=True, slots=True)
class AwarenessUpdate:
    update: bytes


SessionMessage = SyncStep1 | SyncStep2 | Want | Signed | AwarenessUpdate


def encode_session_message(msg: SessionMessage) -> bytes:
    if isinstance(msg, SyncStep1):
        return bytes([M_SYNC]) + create_message(msg.state_vector, YSyncMessageType.SYNC_STEP1)
    if isinstance(msg, SyncStep2):
        return bytes([M_SYNC]) + create_message(msg.update, YSyncMessageType.SYNC_STEP2)
    if isinstance(msg, Want):
        return bytes([M_WANT]) + msg.vector
    if isinstance(msg, Signed):
        return bytes([M_SIGNED, int(msg.reply)]) + encode_bundle(list(msg.materials))
    if isinstance(msg, AwarenessUpdate):
        return bytes([M_AWARENESS]) + create_awareness_message(msg.update)
    raise TypeError(msg)  # pragma: no cover


def decode_session_message_untrusted(data: bytes) -> SessionMessage:
    r = Reader(data)
    t = r.u8()
    if t == M_WANT:
        vector = r.rest()
        decode_state_vector_untrusted(vector)
        return Want(vector)
    if t == M_SIGNED:
        reply = r.u8()
        if reply > 1:
            raise DecodeError(f"SIGNED with reply flag {reply}")
        return Signed(tuple(decode_bundle_untrusted(r.rest())), bool(reply))
    ytype = r.u8()
    if t == M_AWARENESS:
        if ytype != YMessageType.AWARENESS:
            raise DecodeError("awareness message without the awareness tag")
        msg: SessionMessage = AwarenessUpdate(r.blob())
    elif t == M_SYNC:
        if ytype != YMessageType.SYNC:
            raise DecodeError("sync message without the sync tag")
        sub = r.u8()
        payload = r.blob()
        if sub == YSyncMessageType.SYNC_STEP1:
            msg = SyncStep1(payload)
        elif sub in (YSyncMessageType.SYNC_STEP2, YSyncMessageType.SYNC_UPDATE):
            msg = SyncStep2(payload)
        else:
            raise DecodeError(f"unknown sync message {sub}")
    else:
        raise DecodeError(f"unknown session message {t}")
    if not r.at_end():
        raise DecodeError("trailing bytes in session message")
    return msg
