"""Session messages carried whole (reassembled) over a link's reliable channel.

Each starts with one type byte; the rest is exactly a y-protocols message as
pycrdt and Yjs write it, so a Yjs peer speaks the same payloads::

    SYNC      0x00 | y-sync message (step1 state vector / step2 update)
    AWARENESS 0x01 | y-awareness message
    UPDATE    0x02 | varbytes dependencies | y-sync update message

UPDATE adds the sender's state vector from before the change, so receivers
can deliver causally (document.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from pycrdt import YMessageType, YSyncMessageType, create_awareness_message
from pycrdt._sync import create_message

from .codec import DecodeError, Reader, Writer

M_SYNC, M_AWARENESS, M_UPDATE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class SyncStep1:
    state_vector: bytes


@dataclass(frozen=True, slots=True)
class SyncStep2:
    update: bytes


@dataclass(frozen=True, slots=True)
class Update:
    dependencies: bytes
    update: bytes


@dataclass(frozen=True, slots=True)
class AwarenessUpdate:
    update: bytes


SessionMessage = SyncStep1 | SyncStep2 | Update | AwarenessUpdate


def encode_session_message(msg: SessionMessage) -> bytes:
    if isinstance(msg, SyncStep1):
        return bytes([M_SYNC]) + create_message(msg.state_vector, YSyncMessageType.SYNC_STEP1)
    if isinstance(msg, SyncStep2):
        return bytes([M_SYNC]) + create_message(msg.update, YSyncMessageType.SYNC_STEP2)
    if isinstance(msg, Update):
        return (Writer().u8(M_UPDATE).blob(msg.dependencies).bytes()
                + create_message(msg.update, YSyncMessageType.SYNC_UPDATE))
    if isinstance(msg, AwarenessUpdate):
        return bytes([M_AWARENESS]) + create_awareness_message(msg.update)
    raise TypeError(msg)  # pragma: no cover


def decode_session_message_untrusted(data: bytes) -> SessionMessage:
    r = Reader(data)
    t = r.u8()
    deps = r.blob(1 << 20) if t == M_UPDATE else b""
    ytype = r.u8()
    if t == M_AWARENESS:
        if ytype != YMessageType.AWARENESS:
            raise DecodeError("awareness message without the awareness tag")
        msg: SessionMessage = AwarenessUpdate(r.blob())
    elif t in (M_SYNC, M_UPDATE):
        if ytype != YMessageType.SYNC:
            raise DecodeError("sync message without the sync tag")
        sub = r.u8()
        payload = r.blob()
        if t == M_UPDATE:
            if sub != YSyncMessageType.SYNC_UPDATE:
                raise DecodeError(f"update envelope around sync message {sub}")
            msg = Update(deps, payload)
        elif sub == YSyncMessageType.SYNC_STEP1:
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
