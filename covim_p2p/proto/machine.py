"""The one shape every sans-I/O machine here has (as aioquic's QuicConnection does).

A driver (io/udp.py, or tests/proto/fakenet.py) feeds datagrams in, sends what
``datagrams_to_send`` returns, and re-arms one timer from ``get_timer``.
"""

from __future__ import annotations

from typing import Protocol

Addr = tuple[str, int]


class Machine(Protocol):
    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None: ...
    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]: ...
    def get_timer(self) -> float | None: ...
    def handle_timer(self, now: float) -> None: ...
