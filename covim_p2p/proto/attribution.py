"""Who may add what: edits and cursors are attributed to the static key that sent them.

Why: with per-pair keys (handshake.py) every datagram on a link comes from
the peer whose static key the handshake proved, and that handshake also
proved its Yjs client id and whether it holds a writer certificate
(keys.py).  These rules turn that into what the document accepts.

Rules (``refusal`` says which one a message breaks, as a drop reason):

* An UPDATE is its sender's own transaction, sent directly: it may add
  items of the sender's client id only ("forged edit"), and only if the
  sender is a writer ("read-only").
* A SyncStep2 answers our SyncStep1, and a peer rightly relays what others
  typed (a joiner gets the whole document from the host).  But we ask each
  peer only for what is *not* the own work of another peer we are linked to
  directly (``request_vector`` claims to have all of theirs), and take
  their work from them alone: a SyncStep2 adding items of such a peer's
  client is refused ("forged edit"), and asked for again with the right
  vector (a link may have come up while it travelled).  A read-only peer's
  SyncStep2 may add nothing.
* An awareness update may carry the sender's own client id only ("forged
  cursor").

What this does not stop: a writer editing as itself (it may), deleting
anyone's text (Yjs deletions carry no author), or inventing items for a
client id of a peer that left or that we cannot reach directly; see
docs/protocol.md, threat model.
"""

from __future__ import annotations

from pycrdt import get_state

from .codec import DecodeError, Reader, write_varuint
from .document import decode_state_vector_untrusted

ALL = 2**53 - 1  # a clock no client reaches: "I have all of it"


def update_clocks_untrusted(update: bytes) -> dict[int, int]:
    """Client id -> the clock after its last item in a Yjs v1 update.  ValueError (not a
    DecodeError: the message was well formed, its update is what pycrdt cannot read) if none."""
    return decode_state_vector_untrusted(get_state(update))


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


def refusal(update: bytes, have: dict[int, int], sender_client: int | None, writer: bool,
            others: set[int], direct: bool) -> str | None:
    """Why this update from a link may not be applied, or None.  ``others``: the client ids of
    the other peers we hold a proven, up link to."""
    new = [client for client, clock in update_clocks_untrusted(update).items() if clock > have.get(client, 0)]
    if not new:
        return None
    if not writer:
        return "read-only"
    for client in new:
        if client != sender_client and (direct or client in others):
            return "forged edit"
    return None


def request_vector(have: dict[int, int], others: set[int]) -> bytes:
    """A SyncStep1 state vector: ours, claiming all of the linked peers' own work."""
    vector = dict(have)
    vector.update(dict.fromkeys(others, ALL))
    out = bytearray()
    write_varuint(out, len(vector))
    for client, clock in vector.items():
        write_varuint(out, client)
        write_varuint(out, clock)
    return bytes(out)
