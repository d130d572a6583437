"""Classify our NAT with pystun3, off the editing path.

pystun3 is blocking and RFC 3489 only (DESIGN.md section 3), so it runs in a
worker thread that the session never waits for.  We hand it our own socket
with a short per-try timeout: its own 2 s x 4 tries x 2 tests cost 16 s behind
a port-restricted NAT.  It opens its mapping on that separate socket, so this
classifies the NAT; the transport socket's own public address comes from the
introducer's WELCOME.  A stray non-STUN packet makes pystun3 raise KeyError;
any failure becomes a sentence, never a traceback.
"""

from __future__ import annotations

import socket

import stun
import trio

from ..proto.machine import Addr
from ..proto.natclass import NatReport, failed, report

PER_TRY = 0.5  # seconds per STUN request; pystun3 tries 4 times per test
DEADLINE = 30.0


def source_ip_towards(server: Addr) -> str:
    """The local address the kernel would send from to ``server`` (no packet is sent)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(server)
        return probe.getsockname()[0]
    finally:
        probe.close()


def classify(local_ip: str | None, server: Addr, per_try: float = PER_TRY) -> NatReport:
    """Blocking (DNS included).  ``local_ip``: our real address, or None to ask the
    routing table; never 0.0.0.0, which pystun3 would call Full Cone on an open host."""
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    except OSError as exc:
        return failed(f"no socket ({exc.strerror})")
    try:
        if local_ip in (None, "", "0.0.0.0", "::"):  # "::": a dual-stack socket (udp.py)
            local_ip = source_ip_towards(server)
        sock.settimeout(per_try)
        sock.bind((local_ip, 0))
        port = sock.getsockname()[1]
        kind, answer = stun.get_nat_type(sock, local_ip, port, stun_host=server[0], stun_port=server[1])
        return report(kind, answer.get("ExternalIP"), answer.get("ExternalPort"))
    except (OSError, KeyError, ValueError, IndexError) as exc:
        return failed(f"{type(exc).__name__}: {exc}")
    finally:
        sock.close()


async def classify_in_thread(local_ip: str | None, server: Addr) -> NatReport:
    with trio.move_on_after(DEADLINE):
        return await trio.to_thread.run_sync(classify, local_ip, server, abandon_on_cancel=True)
    return failed(f"no result within {DEADLINE:g} s")
