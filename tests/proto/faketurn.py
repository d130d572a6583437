"""A fake TURN server for FakeNetwork: allocations, send and data indications, no auth.

Enough RFC 5766 for covim's TurnClient: ALLOCATE, REFRESH and CREATE_PERMISSION
succeed (without a challenge, so without MESSAGE-INTEGRITY), a SEND
indication leaves from the client's relayed address, and what arrives at a
relayed address from a permitted ip goes back to the client as a DATA
indication.  ``attach(net)`` puts the server and every relay port on the net.
"""

from __future__ import annotations

from covim_p2p.proto import stun
from covim_p2p.proto.machine import Addr


class _RelayPort:
    """The machine at one relayed address."""

    def __init__(self, server: "FakeTurn", addr: Addr, client: Addr) -> None:
        self.server, self.addr, self.client = server, addr, client
        self.out: list[tuple[bytes, Addr]] = []
        self.permitted: set[str] = set()

    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        if addr[0] not in self.permitted:
            return
        txid = bytes(12)
        msg = stun.Message(stun.DATA, stun.INDICATION, txid)
        msg.add(stun.A_XOR_PEER, stun.xor_addr(addr, txid)).add(stun.A_DATA, data)
        self.server.out.append((stun.encode(msg), self.client))

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        out, self.out = self.out, []
        return out

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        pass


class FakeTurn:
    def __init__(self, addr: Addr, net) -> None:
        self.addr = addr
        self.net = net
        self.out: list[tuple[bytes, Addr]] = []
        self.ports: dict[Addr, _RelayPort] = {}  # client (as seen) -> its relay port
        self.relayed = 0
        net.attach(addr, self)

    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        msg = stun.decode_untrusted(data)
        if msg.cls == stun.INDICATION and msg.method == stun.SEND:
            port = self.ports.get(addr)
            if port is not None:
                peer = stun.read_xor_addr(msg.get(stun.A_XOR_PEER), msg.txid)
                port.out.append((msg.get(stun.A_DATA) or b"", peer))
                self.relayed += 1
            return
        if msg.cls != stun.REQUEST:
            return
        reply = stun.Message(msg.method, stun.SUCCESS, msg.txid)
        if msg.method == stun.ALLOCATE:
            port = self.ports.get(addr)
            if port is None:
                relay = (self.addr[0], 50000 + len(self.ports))
                port = self.ports[addr] = _RelayPort(self, relay, addr)
                self.net.attach(relay, port)
            reply.add(stun.A_XOR_RELAYED, stun.xor_addr(port.addr, msg.txid))
            reply.add(stun.A_XOR_MAPPED, stun.xor_addr(addr, msg.txid))
            reply.add(stun.A_LIFETIME, (600).to_bytes(4, "big"))
        elif msg.method == stun.CREATE_PERMISSION and addr in self.ports:
            self.ports[addr].permitted.add(stun.read_xor_addr(msg.get(stun.A_XOR_PEER), msg.txid)[0])
        elif msg.method == stun.BINDING:
            reply.add(stun.A_XOR_MAPPED, stun.xor_addr(addr, msg.txid))
        self.out.append((stun.encode(reply), addr))

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        out, self.out = self.out, []
        return out

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        pass
