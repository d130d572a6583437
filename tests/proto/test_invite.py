"""Invitations (``:CoVim start`` / ``:CoVim add``): no keystream is ever used twice.

The attack these pin (issue 9): the same peer token added from two sessions
(two hosts, a restart, the same token added twice) used to seal both INVITEs
with one key and one nonce, so a member of the first session XORed the two
ciphertexts with her own token and read the second session's token, secret
included.  Written against protocol v3 first, where the recovery succeeded.
"""

from __future__ import annotations

import os

from covim_p2p.proto.framing import KIND_RENDEZVOUS
from covim_p2p.proto.invite import InviteWaiter
from covim_p2p.proto.seal import session_seal
from covim_p2p.proto.rendezvous import Introducer, InviteAnswered
from covim_p2p.proto.rendezvous_messages import Invite, Join, Welcome, encode_message
from covim_p2p.proto.token import SessionToken

NONCE = bytes(range(16))
WAITER = ("127.0.0.9", 9009)
TAG = 16


def invitation(token: SessionToken, nonce: bytes = NONCE, *, now: float = 0.0) -> bytes:
    intro = Introducer(token.session, token.secret)
    intro.invite((WAITER,), nonce, token.encode(), now)
    intro.handle_timer(now)
    ((data, addr),) = intro.datagrams_to_send(now)
    assert addr == WAITER
    return data


def xor(*parts: bytes) -> bytes:
    out = bytearray(parts[0])
    for part in parts[1:]:
        for i, b in enumerate(part[:len(out)]):
            out[i] ^= b
    return bytes(out)


def test_two_invitations_for_one_peer_token_do_not_leak_each_other():
    """Mallory is a member of session 1 (she knows its token) and records both INVITEs."""
    mine = SessionToken((("10.0.0.1", 8555),), 0x1111, b"A" * 16)
    theirs = SessionToken((("10.0.0.2", 8555),), 0x2222, b"B" * 16)
    first, second = invitation(mine), invitation(theirs)
    known = encode_message(Invite(mine.encode(), bytes(16)))  # the layout, her token; the nonce she lacks
    n = len(known)
    c1, c2 = first[-TAG - n:-TAG], second[-TAG - n:-TAG]  # ciphertexts, aligned from the tag
    recovered = xor(known[:-16], c1, c2)
    assert theirs.encode().encode() not in recovered
    assert b"covim1-" not in recovered[:12]


def test_the_same_token_added_twice_uses_fresh_keys():
    token = SessionToken((("10.0.0.1", 8555),), 0x1111, b"A" * 16)
    a, b = invitation(token), invitation(token)
    assert a[20:] != b[20:]  # same plaintext, yet different bytes: a fresh key (or nonce) each time


def test_two_introducers_of_one_session_share_no_keystream():
    """Two hosts (or a restarted one) for the same token: both speak as sender 0."""
    token = SessionToken((("10.0.0.1", 8555),), 0x1111, b"A" * 16)
    sent = []
    for joiner, addr in ((0x11, ("10.0.0.3", 1111)), (0x23, ("10.0.0.4", 2222))):
        intro = Introducer(token.session, token.secret)
        member = session_seal(token.session, token.secret, os.urandom(16))
        join = member.seal(KIND_RENDEZVOUS, token.session, joiner, encode_message(Join(token.secret, f"p{joiner}")),
                           Introducer.ID)
        intro.receive_datagram(join, addr, 0.0)
        ((data, _),) = intro.datagrams_to_send(0.0)
        sent.append((data, encode_message(Welcome(addr, ()))))
    (d1, p1), (d2, p2) = sent
    assert len(p1) == len(p2)
    n = len(p1)
    assert xor(d1[-TAG - n:-TAG], d2[-TAG - n:-TAG]) != xor(p1, p2)


def test_the_waiter_accepts_its_invitation_and_the_introducer_hears_the_ack():
    token = SessionToken((("10.0.0.1", 8555),), 0x1111, b"A" * 16)
    intro = Introducer(token.session, token.secret)
    intro.invite((WAITER,), NONCE, token.encode(), 0.0)
    intro.handle_timer(0.0)
    waiter = InviteWaiter(NONCE, 0x77)
    for data, _ in intro.datagrams_to_send(0.0):
        waiter.receive_datagram(data, ("10.0.0.1", 8555), 0.0)
    assert waiter.invited is not None and waiter.invited.secret == token.secret
    for data, _ in waiter.datagrams_to_send(0.0):
        intro.receive_datagram(data, WAITER, 0.0)
    assert intro.events == [InviteAnswered(WAITER)]
    assert waiter.dropped == 0 and intro.dropped == 0


def test_an_invitation_for_another_nonce_is_dropped():
    token = SessionToken((("10.0.0.1", 8555),), 0x1111, b"A" * 16)
    waiter = InviteWaiter(bytes(16), 0x77)
    waiter.receive_datagram(invitation(token), ("10.0.0.1", 8555), 0.0)
    assert waiter.invited is None and waiter.dropped == 1
