"""The trio driver over real loopback UDP sockets: a host stack and two peers converge."""

from __future__ import annotations

import secrets
import socket

import pytest
import trio

from covim_p2p.editor.edits import TextEdit
from covim_p2p.io.udp import UdpDriver, bind_udp, now
from covim_p2p.proto.hoststack import HostStack
from covim_p2p.proto.node import PeerNode
from covim_p2p.proto.rendezvous import Introducer
from covim_p2p.proto.token import SessionToken


def _host(text: str) -> tuple[HostStack, socket.socket, SessionToken]:
    sock = bind_udp("127.0.0.1", 0)
    token = SessionToken((sock.getsockname()[:2],), secrets.randbits(63) | 1, secrets.token_bytes(16))
    introducer = Introducer(token.session, token.keys().introduction)
    node = PeerNode(name="host", token=token, peer_id=1, client_id=11, now=now(), initial_text=text,
                    introducer=introducer)
    introducer._local_sink = node.on_local_rendezvous
    return HostStack(introducer, node), sock, token


async def _wait(predicate, seconds: float = 10) -> None:
    with trio.fail_after(seconds):
        while not predicate():
            await trio.sleep(0.01)


def test_drivers_carry_a_session_over_real_sockets():
    async def main():
        stack, host_sock, token = _host("shared ✓")
        peers = [PeerNode(name=f"p{i}", token=token, peer_id=100 + i, client_id=200 + i, now=now()) for i in range(2)]
        socks = [bind_udp("127.0.0.1", 0) for _ in peers]
        activity = {"count": 0}

        def bump():
            activity["count"] += 1

        drivers = [UdpDriver(stack, host_sock, bump)] + [UdpDriver(p, s, bump) for p, s in zip(peers, socks)]
        async with trio.open_nursery() as nursery:
            for d in drivers:
                await nursery.start(d.run)
            nodes = [stack.node, *peers]
            await _wait(lambda: all(len([l for l in n.links.values() if l.up]) == 2 for n in nodes))
            peers[0].local_edits([TextEdit(0, 0, "p0 says hi\n")], now())
            drivers[1].poke()  # input from outside the driver: it must send promptly
            await _wait(lambda: all(str(n.document) == "p0 says hi\nshared ✓" for n in nodes))
            assert activity["count"] > 0
            assert all(d.received > 0 for d in drivers)
            nursery.cancel_scope.cancel()
        for s in [host_sock, *socks]:
            s.close()

    trio.run(main)


def test_a_busy_port_is_a_clear_error():
    busy = bind_udp("127.0.0.1", 0)
    try:
        with pytest.raises(OSError, match="already in use"):
            bind_udp("127.0.0.1", busy.getsockname()[1])
    finally:
        busy.close()


def test_garbage_on_the_socket_is_dropped_not_fatal():
    async def main():
        stack, sock, token = _host("x")
        driver = UdpDriver(stack, sock, lambda: None)
        junk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        async with trio.open_nursery() as nursery:
            await nursery.start(driver.run)
            for i in range(100):
                junk.sendto(bytes([i]) * (i + 1), sock.getsockname())
            await _wait(lambda: driver.received == 100)
            nursery.cancel_scope.cancel()
        junk.close()
        sock.close()
        return stack.node.dropped

    assert trio.run(main) == 100


def test_a_machine_fed_before_its_driver_runs_gets_looked_at_at_once():
    """What happened before run() (a gatherer started with no server that resolved) must not wait
    for a timer that never comes: the driver reports activity as soon as it runs."""

    class Idle:
        def receive_datagram(self, data, addr, now):
            pass

        def datagrams_to_send(self, now):
            return []

        def get_timer(self):
            return None

        def handle_timer(self, now):
            pass

    async def main():
        seen = trio.Event()
        sock = bind_udp("127.0.0.1", 0)
        driver = UdpDriver(Idle(), sock, seen.set)
        driver.poke()  # before run(): no trio token yet, so this alone reaches nobody
        async with trio.open_nursery() as nursery:
            await nursery.start(driver.run)
            with trio.fail_after(2):
                await seen.wait()
            nursery.cancel_scope.cancel()
        sock.close()

    trio.run(main)
