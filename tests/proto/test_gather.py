"""Server-reflexive candidates (proto/gather.py): Binding requests on our socket, bounded by 1 s."""

from __future__ import annotations

import itertools

from covim_p2p.proto import stun
from covim_p2p.proto.gather import StunGatherer
from covim_p2p.proto.hoststack import HostStack
from covim_p2p.proto.stack import Stack

S1, S2 = ("198.51.100.1", 3478), ("198.51.100.2", 3478)


def _ids():
    counter = itertools.count(1)
    return lambda n: next(counter).to_bytes(n, "big")


def _answer(request: bytes, mapped, xor: bool = True) -> bytes:
    msg = stun.decode_untrusted(request)
    reply = stun.Message(stun.BINDING, stun.SUCCESS, msg.txid)
    if xor:
        reply.add(stun.A_XOR_MAPPED, stun.xor_addr(mapped, msg.txid))
    else:
        reply.add(stun.A_MAPPED, bytes([0, 1]) + mapped[1].to_bytes(2, "big") + bytes(map(int, mapped[0].split("."))))
    return stun.encode(reply)


def test_each_server_answers_and_the_mapped_addresses_are_kept_once():
    g = StunGatherer(_ids())
    g.start([S1, S2], 0.0)
    out = g.datagrams_to_send(0.0)
    assert [a for _, a in out] == [S1, S2] and all(stun.looks_like_stun(d) for d, _ in out)
    assert not g.done and g.get_timer() == 0.1
    g.receive_datagram(_answer(out[0][0], ("203.0.113.7", 40000)), S1, 0.02)
    g.receive_datagram(_answer(out[1][0], ("203.0.113.7", 40000), xor=False), S2, 0.03)  # RFC 3489 server
    assert g.done and g.reflexive == [("203.0.113.7", 40000)] and g.get_timer() is None


def test_retransmits_then_gives_up_after_one_second():
    g = StunGatherer(_ids())
    g.start([S1], 10.0)
    sent = [10.0]
    g.datagrams_to_send(10.0)
    while (t := g.get_timer()) is not None:
        g.handle_timer(t)
        if g.datagrams_to_send(t):
            sent.append(round(t, 3))
    assert sent == [10.0, 10.1, 10.3, 10.7]
    assert g.done and g.reflexive == []


def test_forged_and_stray_answers_are_dropped():
    g = StunGatherer(_ids())
    g.start([S1], 0.0)
    (req, _), = g.datagrams_to_send(0.0)
    g.receive_datagram(_answer(req, ("1.2.3.4", 5)), ("6.6.6.6", 3478), 0.01)  # right txid, wrong server
    other = stun.encode(stun.Message(stun.BINDING, stun.SUCCESS, b"x" * 12))
    assert not g.wants(other)
    g.receive_datagram(b"\x00\x01garbage", S1, 0.01)
    assert g.dropped == 2 and not g.done


def test_the_stack_gives_stun_answers_to_the_gatherer_and_other_stun_to_the_node():
    class Inner:
        def __init__(self):
            self.got = []

        def receive_datagram(self, data, addr, now):
            self.got.append(addr)

        def datagrams_to_send(self, now):
            return []

        def get_timer(self):
            return None

        def handle_timer(self, now):
            pass

    inner, g = Inner(), StunGatherer(_ids())
    stack = Stack(inner, gatherer=g)
    g.start([S1], 0.0)
    (req, _), = stack.datagrams_to_send(0.0)
    turn_reply = stun.encode(stun.Message(stun.ALLOCATE, stun.SUCCESS, b"t" * 12))
    stack.receive_datagram(turn_reply, S1, 0.01)  # the TURN client's answer: the node's wire takes it
    stack.receive_datagram(_answer(req, ("203.0.113.9", 1)), S1, 0.02)
    assert inner.got == [S1] and g.reflexive == [("203.0.113.9", 1)]


def test_the_hosts_turn_replies_reach_its_node_not_the_floor():
    """HostStack used to drop every STUN datagram (not a covim header): the host's TURN never worked."""
    class Node:
        got = 0
        dropped = 0

        def receive_datagram(self, data, addr, now):
            Node.got += 1

    stack = HostStack.__new__(HostStack)
    Stack.__init__(stack, Node(), introducer=object())  # any introducer: STUN must not reach it
    stack.receive_datagram(stun.encode(stun.Message(stun.ALLOCATE, stun.SUCCESS, b"t" * 12)), S1, 0.0)
    assert Node.got == 1
