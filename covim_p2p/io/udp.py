"""The trio driver: one UDP socket, one sans-I/O machine, one timer.

This and the other io/ modules are the only code with sockets and clocks.
``now`` is ``time.monotonic()`` so that code outside trio (the Neovim side in
guest mode) can feed the machine with the same clock; trio deadlines are
derived from it.  Sends never block: UDP is lossy anyway and the reliable
channel retransmits, so a full socket buffer just counts a drop.
"""

from __future__ import annotations

import errno
import math
import socket
import time
from typing import Callable

import trio

from ..proto.machine import Addr, Machine


def now() -> float:
    return time.monotonic()


WILDCARDS = ("0.0.0.0", "::")


def _dual_stack(port: int) -> socket.socket | None:
    """One socket for IPv4 and IPv6 (IPv4 peers appear as ::ffff:a.b.c.d), or None without IPv6."""
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    except OSError:
        return None
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", port))
    except OSError:
        sock.close()
        return None
    return sock


def bind_udp(host: str, port: int) -> socket.socket:
    """Bind a non-blocking UDP socket; raises OSError with a clear message.  The wildcard
    ("0.0.0.0", the default, or "::") gets one dual-stack socket where the system has IPv6,
    and an IPv4 one where it has not; UdpDriver hides the difference from the machines."""
    sock = _dual_stack(port) if host in WILDCARDS else None
    if sock is None:
        host = "0.0.0.0" if host in WILDCARDS else host
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise OSError(exc.errno, f"UDP port {port} is already in use (try another port, or 0 for any)") from None
            raise OSError(exc.errno, f"cannot bind UDP {host}:{port}: {exc.strerror}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    except OSError:
        pass
    sock.setblocking(False)
    return sock


def from_socket(addr: tuple) -> Addr:
    """A source address as the machines know it: IPv4 plain, even from a dual-stack socket."""
    ip = addr[0]
    if ip.startswith("::ffff:") and "." in ip:
        ip = ip[7:]
    return (ip, addr[1])


def to_socket(sock: socket.socket, addr: Addr) -> tuple:
    """A destination for ``sock``: IPv4 written as ::ffff:a.b.c.d on a dual-stack socket."""
    if sock.family == socket.AF_INET6 and ":" not in addr[0]:
        return ("::ffff:" + addr[0], addr[1])
    return addr


def local_addr(sock: socket.socket) -> Addr:
    return from_socket(sock.getsockname()[:2])


class UdpDriver:
    def __init__(self, machine: Machine, sock: socket.socket, on_activity: Callable[[], None]) -> None:
        self.machine = machine
        self.sock = sock
        self._on_activity = on_activity
        self._wake = trio.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self.send_errors = 0
        self.received = 0

    @property
    def local_addr(self) -> Addr:
        return local_addr(self.sock)

    def poke(self) -> None:
        """Thread-safe: something was fed to the machine; send and re-arm soon."""
        if self._token is not None:
            try:
                self._token.run_sync_soon(self._set_wake)
            except trio.RunFinishedError:
                pass

    def _set_wake(self) -> None:
        self._wake.set()

    def flush(self) -> None:
        for data, addr in self.machine.datagrams_to_send(now()):
            try:
                self.sock.sendto(data, to_socket(self.sock, addr))
            except (BlockingIOError, InterruptedError):
                self.send_errors += 1
            except OSError:
                self.send_errors += 1  # unreachable network, ICMP errors: the peer's timers decide

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._wake.set()  # a machine fed before we ran (a poke with no token yet) gets its first look now
        tsock = trio.socket.from_stdlib_socket(self.sock)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._receive_loop, tsock)
            nursery.start_soon(self._timer_loop)
            task_status.started()

    async def _receive_loop(self, tsock) -> None:
        while True:
            try:
                data, addr = await tsock.recvfrom(65536)
            except OSError:
                continue  # ICMP port unreachable and friends: not ours to act on
            self.received += 1
            self.machine.receive_datagram(data, from_socket(addr), now())
            # Drain whatever else is queued before flushing, so bursts batch their acks.
            for _ in range(64):
                try:
                    data, addr = self.sock.recvfrom(65536)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    continue
                self.received += 1
                self.machine.receive_datagram(data, from_socket(addr), now())
            self.flush()
            self._on_activity()
            self._wake.set()  # a packet may have created an earlier deadline: re-arm the timer
            await trio.lowlevel.checkpoint()

    async def _timer_loop(self) -> None:
        while True:
            self.flush()
            deadline = self.machine.get_timer()
            wait = math.inf if deadline is None else max(0.0, deadline - now())
            with trio.move_on_after(wait):
                await self._wake.wait()
            self._wake = trio.Event()
            t = now()
            deadline = self.machine.get_timer()
            if deadline is not None and deadline <= t:
                self.machine.handle_timer(t)
            self.flush()
            self._on_activity()
