"""The TURN client against a scripted server: every exchange, by the bytes it sends."""

from __future__ import annotations

import itertools

import pytest

from covim_p2p.proto import stun
from covim_p2p.proto.turn import LIFETIME, PERMISSION_RENEW, RTO, TRIES, TurnClient

SERVER = ("203.0.113.40", 3478)
RELAYED, MAPPED, PEER = ("203.0.113.40", 50000), ("203.0.113.22", 61000), ("203.0.113.21", 4000)
KEY = stun.long_term_key("covim", "lab", "secret")


def counter_bytes():
    n = itertools.count(1)
    return lambda k: next(n).to_bytes(k, "big")


def sent(client) -> list[tuple[stun.Message, bytes]]:
    return [(stun.decode_untrusted(raw), raw) for raw in client.datagrams_to_send()]


def answer(req: stun.Message, cls: int, attrs, key: bytes | None = None) -> bytes:
    return stun.encode(stun.Message(req.method, cls, req.txid, list(attrs)), key)


def challenge(req):
    return answer(req, stun.ERROR, [(stun.A_ERROR_CODE, b"\0\0\4\x01Unauthorized"), (stun.A_REALM, b"lab"),
                                    (stun.A_NONCE, b"n0nce")])


def allocated(password="secret") -> tuple[TurnClient, stun.Message]:
    client = TurnClient(SERVER, "covim", password, counter_bytes(), 0.0)
    ((first, raw),) = sent(client)
    assert first.method == stun.ALLOCATE and first.get(stun.A_INTEGRITY) is None
    client.receive(challenge(first), 0.01)
    ((auth, raw),) = sent(client)
    assert auth.get(stun.A_USERNAME) == b"covim" and auth.get(stun.A_NONCE) == b"n0nce"
    assert stun.integrity_ok(raw, KEY) == (password == "secret")
    assert auth.get(stun.A_REQUESTED_TRANSPORT) == bytes([17, 0, 0, 0])
    return client, auth


def test_allocate_authenticates_after_the_challenge_and_becomes_ready():
    client, auth = allocated()
    ok = answer(auth, stun.SUCCESS, [(stun.A_XOR_RELAYED, stun.xor_addr(RELAYED, auth.txid)),
                                     (stun.A_XOR_MAPPED, stun.xor_addr(MAPPED, auth.txid)),
                                     (stun.A_LIFETIME, (600).to_bytes(4, "big"))], KEY)
    client.receive(ok, 0.02)
    assert client.state == "ready" and client.relayed == RELAYED and client.mapped == MAPPED
    assert client.get_timer() == pytest.approx(0.02 + 300)  # refresh at half the lifetime
    client.handle_timer(300.02)
    ((refresh, raw),) = sent(client)
    assert refresh.method == stun.REFRESH and stun.integrity_ok(raw, KEY)


def ready_client() -> TurnClient:
    client, auth = allocated()
    client.receive(answer(auth, stun.SUCCESS, [(stun.A_XOR_RELAYED, stun.xor_addr(RELAYED, auth.txid))], KEY), 0.02)
    assert client.state == "ready"
    return client


def test_a_success_without_valid_integrity_is_dropped():
    client, auth = allocated()
    client.receive(answer(auth, stun.SUCCESS, [(stun.A_XOR_RELAYED, stun.xor_addr(RELAYED, auth.txid))]), 0.02)
    assert client.state == "allocating" and client.dropped == 1


def test_permissions_are_created_and_renewed_and_data_flows_both_ways():
    client = ready_client()
    client.permit("203.0.113.21", 1.0)
    client.permit("203.0.113.21", 1.1)  # idempotent
    ((perm, raw),) = sent(client)
    assert perm.method == stun.CREATE_PERMISSION and stun.integrity_ok(raw, KEY)
    assert stun.read_xor_addr(perm.get(stun.A_XOR_PEER), perm.txid) == ("203.0.113.21", 0)
    client.receive(answer(perm, stun.SUCCESS, [], KEY), 1.2)
    client.handle_timer(1.0 + PERMISSION_RENEW)
    assert [m.method for m, _ in sent(client)] == [stun.CREATE_PERMISSION]
    wrapped = stun.decode_untrusted(client.wrap(b"CV hello", PEER))
    assert (wrapped.method, wrapped.cls) == (stun.SEND, stun.INDICATION)
    assert wrapped.get(stun.A_DATA) == b"CV hello"
    assert stun.read_xor_addr(wrapped.get(stun.A_XOR_PEER), wrapped.txid) == PEER
    txid = bytes(12)
    data = stun.encode(stun.Message(stun.DATA, stun.INDICATION, txid, [(stun.A_XOR_PEER, stun.xor_addr(PEER, txid)),
                                                                         (stun.A_DATA, b"CV reply")]))
    assert client.receive(data, 2.0) == [(PEER, b"CV reply")]


def test_permits_asked_before_the_allocation_wait_for_it():
    client, auth = allocated()
    client.permit("203.0.113.21", 0.015)
    assert sent(client) == []
    client.receive(answer(auth, stun.SUCCESS, [(stun.A_XOR_RELAYED, stun.xor_addr(RELAYED, auth.txid))], KEY), 0.02)
    assert [m.method for m, _ in sent(client)] == [stun.CREATE_PERMISSION]


def test_a_stale_nonce_is_replaced_and_the_request_repeated():
    client = ready_client()
    client.permit("203.0.113.21", 1.0)
    ((perm, _),) = sent(client)
    client.receive(answer(perm, stun.ERROR, [(stun.A_ERROR_CODE, b"\0\0\4\x26Stale Nonce"), (stun.A_REALM, b"lab"),
                                             (stun.A_NONCE, b"fresh")]), 1.1)
    ((again, raw),) = sent(client)
    assert again.method == stun.CREATE_PERMISSION and again.get(stun.A_NONCE) == b"fresh" and again.txid != perm.txid


def test_wrong_credentials_fail_with_a_sentence():
    client, auth = allocated(password="wrong")
    client.receive(challenge(auth), 0.02)
    assert client.state == "failed" and "check the user name and password in g:covim_turn" in client.problem


def test_no_answer_retransmits_then_fails():
    client = TurnClient(SERVER, "covim", "secret", counter_bytes(), 0.0)
    times = []
    now = 0.0
    sent(client)
    for _ in range(TRIES + 2):
        t = client.get_timer()
        if t is None:
            break
        now = t
        client.handle_timer(now)
        if sent(client):
            times.append(now)
    assert times == [RTO * (2 ** k - 1) for k in range(1, TRIES)]  # 0.5, 1.5, 3.5, 7.5
    assert client.state == "failed" and client.problem.startswith("relay unavailable: no answer from the TURN server")


def test_close_gives_the_allocation_back():
    client = ready_client()
    client.close(5.0)
    ((bye, raw),) = sent(client)
    assert bye.method == stun.REFRESH and bye.get(stun.A_LIFETIME) == bytes(4) and stun.integrity_ok(raw, KEY)
    assert client.get_timer() is None and LIFETIME > 0


def test_a_refused_permission_is_not_asked_for_again():
    client = ready_client()
    client.permit("10.0.0.3", 1.0)
    ((perm, _),) = sent(client)
    client.receive(answer(perm, stun.ERROR, [(stun.A_ERROR_CODE, b"\0\0\4\x03Forbidden IP")]), 1.1)
    client.permit("10.0.0.3", 6.0)
    assert sent(client) == [] and client.state == "ready"
