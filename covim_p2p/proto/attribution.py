"""Who may say where a cursor is: awareness updates speak only for their sender's client id.

Why: edits carry their author's signature (authorship.py, ledger.py), but
cursors are y-protocols awareness states, unsigned.  Each travels directly
from the peer it describes, over a link whose handshake proved the peer's
author key, and so its client id (handshake.py); so a link may only speak
for that client id ("forged cursor" otherwise), and nobody relays cursors.
"""

from __future__ import annotations

from .codec import DecodeError, Reader


def awareness_clients_untrusted(update: bytes) -> list[int]:
    """The client ids a y-protocols awareness update speaks for."""
    r = Reader(update)
    clients = []
    for _ in range(r.uint()):
        clients.append(r.uint())
        r.uint()  # clock
        r.blob()  # JSON state
    if not r.at_end():
        raise DecodeError("trailing bytes in an awareness update")
    return clients
