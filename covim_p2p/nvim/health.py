"""The network half of :checkhealth covim (lua/covim/health.lua calls network_report).

Blocking and short: it binds a UDP socket as a session would, lists the host
candidates a token would carry, and asks the STUN servers of g:covim_stun for
this socket's public address with the session's own gatherer (at most
proto/gather.DEADLINE, 1 s).  Every failure is a sentence in the result.
"""

from __future__ import annotations

import os
import select
import socket
import time
from typing import Any

from .. import peer as assembly
from ..proto.gather import StunGatherer


def network_report(bind: str, host_addr: Any, stun: Any) -> dict:
    out: dict[str, Any] = {"bound": "", "error": "", "candidates": [], "note": "", "stun": [], "reflexive": []}
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((bind, 0))
    except OSError as exc:
        out["error"] = f"no UDP socket binds on {bind}: {exc.strerror or exc}"
        return out
    with sock:
        out["bound"] = "%s:%d" % sock.getsockname()[:2]
        candidates, out["note"] = assembly.host_candidates(sock, host_addr)
        out["candidates"] = [f"{c.addr[0]}:{c.addr[1]}" for c in candidates]
        try:
            servers = assembly.stun_servers(stun)
        except ValueError as exc:
            out["stun"] = [str(exc)]
            return out
        resolved = []
        for host, port in servers:
            try:
                resolved.append((socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)[0][4][0], port))
            except OSError as exc:
                out["stun"].append(f"{host}:{port} does not resolve ({exc.strerror or exc})")
        if resolved:
            gatherer = StunGatherer(os.urandom)
            gatherer.start(resolved, time.monotonic())
            sock.setblocking(False)
            while not gatherer.done:
                for data, addr in gatherer.datagrams_to_send(time.monotonic()):
                    try:
                        sock.sendto(data, addr)
                    except OSError as exc:
                        out["stun"].append(f"cannot send to {addr[0]}:{addr[1]} ({exc.strerror or exc})")
                timer = gatherer.get_timer()
                wait = 0.05 if timer is None else max(0.0, min(0.25, timer - time.monotonic()))
                if select.select([sock], [], [], wait)[0]:
                    try:
                        data, addr = sock.recvfrom(2048)
                    except OSError:
                        continue
                    gatherer.receive_datagram(data, addr[:2], time.monotonic())
                gatherer.handle_timer(time.monotonic())
            out["reflexive"] = [f"{ip}:{port}" for ip, port in gatherer.reflexive]
            if not gatherer.reflexive:
                names = ", ".join(f"{h}:{p}" for h, p in servers)
                out["stun"].append(f"no STUN answer within 1 s from {names}")
    return out
