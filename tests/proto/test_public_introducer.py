"""The public introducer (covim-rendezvous's machine): many sessions, NATed hosts, no traffic key."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest

from covim_p2p.proto import stun
from covim_p2p.proto.codec import DecodeError
from covim_p2p.proto.framing import KIND_HANDSHAKE, KIND_PEER
from covim_p2p.proto.introduction import PUBLIC_BIT, introduction_secret
from covim_p2p.proto.node import PeerNode
from covim_p2p.proto.registration import (KEY_REPLY, REGISTER_MAGIC, Registration, encode_key_request,
                                          open_register_untrusted, seal_register)
from covim_p2p.proto.public_introducer import BURST, MAX_SESSIONS_PER_SOURCE, SESSION_IDLE, PublicIntroducer
from covim_p2p.proto.seal import session_seal
from covim_p2p.proto.token import SessionToken

sys.path.insert(0, str(Path(__file__).parent))
from fakenet import FakeNetwork  # noqa: E402

SERVER = ("198.51.100.5", 8555)
SECRET = bytes(range(16))
SERVER_KEY = bytes([7] * 32)


def encode_register(session: int, credential: bytes, server_key: bytes = SERVER_KEY) -> bytes:
    """A REGISTER as a host seals it to this test's server key."""
    r = Registration(session, credential, bytes([9] * 32))
    r.receive_key_reply_untrusted(KEY_REPLY + PublicIntroducer(key=server_key).public_key)
    return r.datagram()


def _ids():
    n = itertools.count(1)
    return lambda k: next(n).to_bytes(k, "big")


def nated_session(host_kind=("eim", "apdf"), guest_kind=("eim", "apdf"), seed=3):
    """alice hosts from behind a NAT through the public introducer; bob joins from behind another."""
    net = FakeNetwork(seed)
    server = PublicIntroducer(_ids(), key=SERVER_KEY)
    net.attach(SERVER, server)
    session = 0x1234 | PUBLIC_BIT
    alice_in, bob_in = ("10.1.0.2", 5000), ("10.2.0.2", 5000)
    net.add_nat("203.0.113.1", {alice_in[0]}, mapping=host_kind[0], filtering=host_kind[1])
    net.add_nat("203.0.113.2", {bob_in[0]}, mapping=guest_kind[0], filtering=guest_kind[1])
    alice = PeerNode(name="alice", token=SessionToken((SERVER,), session, SECRET), peer_id=1, client_id=1, now=0.0,
                     initial_text="from behind a NAT", candidates=(alice_in,),
                     register=Registration(session, introduction_secret(session, SECRET), bytes([5] * 32)))
    net.attach(alice_in, alice)
    token = SessionToken((SERVER, alice_in), session, SECRET)  # what alice's token says
    bob = PeerNode(name="bob", token=token, peer_id=2, client_id=2, now=0.0, candidates=(bob_in,))
    net.attach(bob_in, bob)
    return net, server, alice, bob


def test_a_host_behind_a_nat_is_joined_through_the_public_introducer_and_links_directly():
    net, server, alice, bob = nated_session()
    net.run(until=3.0)
    assert alice.state == bob.state == "joined" and bob.synced
    assert str(bob.document) == "from behind a NAT"
    (link,) = bob.links.values()
    assert link.up and link.path.kind == "direct" and link.addr[0] == "203.0.113.1"
    assert any("'bob' at 203.0.113.2:" in line and "joined (2 members)" in line for line in server.log)
    assert server.log[0].startswith("session 8000000000001234 opened by 203.0.113.1:")


def test_the_introducer_never_holds_the_traffic_key():
    net, server, alice, bob = nated_session()
    captured: list[bytes] = []
    net.intercept = lambda data, src, dst, now: captured.append(data) or True
    net.run(until=3.0)
    (entry,) = server.sessions.values()
    keys = bob.token.keys()
    assert entry.credential == introduction_secret(bob.token.session, SECRET) == keys.introduction
    assert entry.credential not in (SECRET, keys.psk, keys.handshake)
    # v4: peer traffic is keyed by per-pair Noise handshakes; the credential opens none of it
    peer = [d for d in captured if d[:2] == b"CV" and d[3] in (KIND_PEER, KIND_HANDSHAKE)]
    assert peer
    for data in peer:
        for receiver in (1, 2):
            with pytest.raises(DecodeError):
                session_seal(bob.token.session, entry.credential, bytes(16)).open_untrusted(data, receiver, 0.0)


def test_two_symmetric_nats_are_introduced_but_cannot_punch():
    net, server, alice, bob = nated_session(("apdm", "apdf"), ("apdm", "apdf"))
    net.run(until=4.0)
    assert alice.state == bob.state == "joined"
    assert not any(link.up for link in bob.links.values())  # needs TURN (or forwarding): not a punchable pair


def test_stun_binding_is_answered_with_the_address_it_came_from():
    server = PublicIntroducer(_ids(), key=SERVER_KEY)
    txid = bytes(range(12))
    server.receive_datagram(stun.encode(stun.Message(stun.BINDING, stun.REQUEST, txid)), ("203.0.113.9", 4242), 0.0)
    ((reply, to),) = server.datagrams_to_send(0.0)
    msg = stun.decode_untrusted(reply)
    assert to == ("203.0.113.9", 4242) and msg.cls == stun.SUCCESS
    assert stun.read_xor_addr(msg.get(stun.A_XOR_MAPPED), txid) == ("203.0.113.9", 4242)


def test_sessions_are_bounded_per_source_and_expire_when_empty():
    server = PublicIntroducer(_ids(), key=SERVER_KEY)
    for i in range(MAX_SESSIONS_PER_SOURCE + 3):
        server.receive_datagram(encode_register(i | PUBLIC_BIT, bytes(16)), ("203.0.113.7", 1000 + i), i * 0.05)
    assert len(server.sessions) == MAX_SESSIONS_PER_SOURCE
    assert server.drops.by_reason["too many sessions from one address"] == 3
    server.receive_datagram(encode_register(1 | PUBLIC_BIT, b"x" * 16), ("203.0.113.8", 1), 1.0)  # hijack attempt
    assert server.sessions[1 | PUBLIC_BIT].credential == bytes(16)
    server.handle_timer(2.0 + SESSION_IDLE)
    assert server.sessions == {} and server.log[-1].endswith(f"closed (no members for {SESSION_IDLE:g} s)")


def test_a_flood_from_one_address_is_rate_limited_and_others_still_served():
    server = PublicIntroducer(_ids(), key=SERVER_KEY)
    for _ in range(int(BURST) + 50):
        server.receive_datagram(b"\x00\x01junk", ("203.0.113.66", 1), 0.0)
    assert server.drops.by_reason["rate limited"] == 50
    server.receive_datagram(encode_register(5 | PUBLIC_BIT, bytes(16)), ("203.0.113.10", 1), 0.0)
    assert 5 | PUBLIC_BIT in server.sessions


def test_register_is_only_for_public_sessions():
    with pytest.raises(ValueError):
        Registration(9, bytes(16), bytes(32))
    server = PublicIntroducer(_ids(), key=SERVER_KEY)
    server.receive_datagram(seal_register(9, bytes(16), server.public_key, bytes([3] * 32)), ("203.0.113.10", 1), 0.0)
    assert server.sessions == {} and server.drops.by_reason["register does not open"] == 1


# ---- REGISTER is sealed (registration.py) ---------------------------------------------

def test_an_eavesdropper_sees_no_credential_name_token_byte_or_session_id_and_registers_nothing():
    net, server, alice, bob = nated_session()
    captured: list[tuple[bytes, tuple, tuple]] = []
    net.intercept = lambda data, src, dst, now: captured.append((data, src, dst)) or True
    net.run(until=3.0)
    assert alice.state == bob.state == "joined" and bob.synced  # it still works, one round trip later
    keys = bob.token.keys()
    session = bob.token.session.to_bytes(8, "big")
    wire = b"".join(d for d, _, _ in captured)
    for secret in (SECRET, keys.introduction, keys.handshake, keys.psk, bob.token.encode().encode(),
                   b"alice", b"bob", b"from behind a NAT"):
        assert secret not in wire, secret
    registers = [d for d, _, dst in captured if d.startswith(REGISTER_MAGIC)]
    assert registers and all(session not in d for d in registers)  # the session id travels sealed too
    # an on-path observer replays, tampers with, or re-seals what it saw: nothing opens, nothing changes
    other = PublicIntroducer(_ids(), key=bytes([8] * 32))
    with pytest.raises(DecodeError):
        open_register_untrusted(registers[0], bytes([8] * 32))
    forged = registers[0][:-1] + bytes([registers[0][-1] ^ 1])
    before = dict(server.sessions)
    server.receive_datagram(forged, ("203.0.113.66", 4000), 3.0)
    server.receive_datagram(seal_register(bob.token.session, b"h" * 16, server.public_key, bytes([4] * 32)),
                            ("203.0.113.66", 4001), 3.0)  # hijack: the session id with another credential
    assert server.sessions == before and server.drops.by_reason["register does not open"] >= 1
    assert server.drops.by_reason["register with another credential"] == 1
    assert server.sessions[bob.token.session].credential == keys.introduction
    assert other.sessions == {}


def test_a_host_re_registers_when_the_server_restarted_with_a_new_key():
    net, server, alice, bob = nated_session()
    net.run(until=2.0)
    restarted = PublicIntroducer(_ids(), key=bytes([11] * 32))
    net.detach(SERVER)
    net.attach(SERVER, restarted)
    net.run(until=2.0 + 12.0)  # the next keepalive REGISTER does not open: KEY! comes back, the host re-seals
    assert bob.token.session in restarted.sessions
    assert restarted.drops.by_reason["register does not open"] >= 1


def test_the_key_request_amplifies_nothing():
    server = PublicIntroducer(_ids(), key=SERVER_KEY)
    request = encode_key_request()
    server.receive_datagram(request, ("203.0.113.10", 1), 0.0)
    ((reply, _),) = server.datagrams_to_send(0.0)
    assert reply == KEY_REPLY + server.public_key and len(reply) < len(request)
