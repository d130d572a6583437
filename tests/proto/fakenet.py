"""A deterministic, event-driven fake UDP network for pumping pure protocol machines.

Any object with the machine shape of DESIGN.md section 1 can be attached at an
address::

    receive_datagram(data, addr, now)
    datagrams_to_send(now) -> [(bytes, dest_addr)]
    get_timer() -> float | None
    handle_timer(now)

Theory of operation: the network owns a virtual clock ``now`` (starting at 0.0).
Every step it first collects what every machine wants to send and schedules each
datagram for delivery at ``now + latency (+ jitter) (+ reorder delay)``, unless
it is dropped (and perhaps also schedules a duplicate).  Then it jumps ``now``
to the earliest pending event, the next delivery or the earliest machine timer,
and runs it.  Nothing sleeps and nothing touches a socket, so a lossy transfer of
megabytes takes a fraction of a second, and the same seed gives the same run.

All randomness comes from one ``random.Random(seed)``.

NAT routers (``add_nat``): machines attached at private addresses behind a
router reach the rest through its public address, with the mapping and
filtering behaviours of RFC 4787 (``mapping``: "eim" endpoint-independent or
"apdm" address-and-port-dependent, i.e. symmetric; ``filtering``: "eif",
"adf" or "apdf"); ``hairpin`` lets its LAN reach its own public address.
A firewall is ``add_nat(ip, inside={ip}, mapping="none", filtering="apdf")``:
no translation, only stateful filtering.  Datagrams a NAT refuses count in
``stats["filtered"]``.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable

from covim_p2p.proto.machine import Addr, Machine


class Nat:
    """One router: its public ip, the inner ips behind it, and its translation state."""

    def __init__(self, public_ip: str, inside: set[str], mapping: str, filtering: str, hairpin: bool) -> None:
        if mapping not in ("eim", "apdm", "none") or filtering not in ("eif", "adf", "apdf"):
            raise ValueError(f"unknown NAT behaviour {mapping}/{filtering}")
        self.public_ip, self.inside, self.mapping, self.filtering, self.hairpin = (
            public_ip, inside, mapping, filtering, hairpin)
        self._ports: dict[tuple, int] = {}  # mapping key -> public port
        self._inner: dict[int, Addr] = {}  # public port -> inner address
        self._permits: set[tuple] = set()
        self._next_port = 40000

    def outbound(self, src: Addr, dst: Addr) -> Addr:
        """The public address ``src`` appears from when sending to ``dst``."""
        if self.mapping == "none":
            pub = src
        else:
            key = (src,) if self.mapping == "eim" else (src, dst)
            port = self._ports.get(key)
            if port is None:
                port = self._ports[key] = self._next_port
                self._next_port += 1
                self._inner[port] = src
            pub = (self.public_ip, port)
        self._permits.add((pub[1], dst[0]) if self.filtering == "adf" else (pub[1], dst))
        return pub

    def flush(self) -> None:
        """Forget every mapping (``conntrack -F``, a router reboot): the next send out gets a new port."""
        self._ports.clear()
        self._inner.clear()
        self._permits.clear()

    def inbound(self, src: Addr, dst: Addr) -> Addr | None:
        """Where a datagram from ``src`` to our public ``dst`` goes inside, or None (filtered)."""
        inner = dst if self.mapping == "none" else self._inner.get(dst[1])
        if inner is None:
            return None
        if self.filtering == "adf" and (dst[1], src[0]) not in self._permits:
            return None
        if self.filtering == "apdf" and (dst[1], src) not in self._permits:
            return None
        return inner


class SimulationError(RuntimeError):
    """The simulation did not settle within ``max_steps``."""


class FakeNetwork:
    """See the module docstring.

    ``intercept(data, src, dst, now) -> bool``, when set, is asked about every
    datagram before the random drop: returning False drops it (counted in
    ``stats["intercepted"]``).  Tests use it to lose exactly the packet they mean.
    """

    REORDER_FACTOR = 5.0  # a reordered datagram waits up to this many extra latencies

    def __init__(
        self,
        seed: int,
        *,
        drop: float = 0.0,
        duplicate: float = 0.0,
        reorder: float = 0.0,
        latency: float = 0.001,
        jitter: float = 0.0,
    ) -> None:
        for name, p in (("drop", drop), ("duplicate", duplicate), ("reorder", reorder)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability, got {p}")
        if latency < 0 or jitter < 0:
            raise ValueError("latency and jitter cannot be negative")
        self.rng = random.Random(seed)
        self.drop = drop
        self.duplicate = duplicate
        self.reorder = reorder
        self.latency = latency
        self.jitter = jitter
        self.now = 0.0
        self.machines: dict[Addr, Machine] = {}
        self.nats: list[Nat] = []
        self.intercept: Callable[[bytes, Addr, Addr, float], bool] | None = None
        # (deliver_at, tie-breaker, data, src, dst): FIFO among equal times.
        self._in_flight: list[tuple[float, int, bytes, Addr, Addr]] = []
        self._counter = 0
        self.stats = {
            "sent": 0,
            "dropped": 0,
            "duplicated": 0,
            "delivered": 0,
            "intercepted": 0,
            "undeliverable": 0,
            "filtered": 0,
        }

    # ---- topology --------------------------------------------------------

    def attach(self, addr: Addr, machine: Machine) -> None:
        if addr in self.machines:
            raise ValueError(f"address {addr} already in use")
        self.machines[addr] = machine

    def add_nat(self, public_ip: str, inside: set[str], *, mapping: str = "eim", filtering: str = "apdf",
                hairpin: bool = False) -> Nat:
        nat = Nat(public_ip, set(inside), mapping, filtering, hairpin)
        self.nats.append(nat)
        return nat

    def _nat_of(self, ip: str) -> Nat | None:
        return next((n for n in self.nats if ip in n.inside), None)

    def _route(self, src: Addr, dst: Addr) -> tuple[Addr, Addr] | None:
        """(source as the receiver sees it, real destination) through the NATs, or None if filtered."""
        here = self._nat_of(src[0])
        there = self._nat_of(dst[0])
        if here is not None and here is there:
            return src, dst  # on one LAN: no NAT in between
        if there is not None and there.mapping != "none":
            return None  # another LAN's private address: no route from here
        if here is not None:
            if dst[0] == here.public_ip and not here.hairpin:
                return None
            src = here.outbound(src, dst)
        target = next((n for n in self.nats if n.public_ip == dst[0] and n.mapping != "none"), None)
        if target is None and there is not None and there.mapping == "none":
            target = there
        if target is not None:
            inner = target.inbound(src, dst)
            if inner is None:
                return None
            dst = inner
        return src, dst

    def detach(self, addr: Addr) -> None:
        """The machine vanishes: datagrams still in flight to it are lost."""
        del self.machines[addr]

    def in_flight(self) -> int:
        return len(self._in_flight)

    # ---- the simulation --------------------------------------------------

    def _delay(self) -> float:
        delay = self.latency
        if self.jitter:
            delay += self.rng.uniform(0.0, self.jitter)
        if self.reorder and self.rng.random() < self.reorder:
            delay += self.rng.uniform(0.0, self.REORDER_FACTOR * max(self.latency, 1e-6))
        return delay

    def _schedule(self, data: bytes, src: Addr, dst: Addr) -> None:
        heapq.heappush(self._in_flight, (self.now + self._delay(), self._counter, data, src, dst))
        self._counter += 1

    def _collect(self) -> None:
        """Take everything every machine wants to send and put it on the wire."""
        for src, machine in list(self.machines.items()):
            for data, dst in machine.datagrams_to_send(self.now):
                self.stats["sent"] += 1
                if self.intercept is not None and not self.intercept(data, src, dst, self.now):
                    self.stats["intercepted"] += 1
                    continue
                if self.drop and self.rng.random() < self.drop:
                    self.stats["dropped"] += 1
                    continue
                routed = self._route(src, dst) if self.nats else (src, dst)
                if routed is None:
                    self.stats["filtered"] += 1
                    continue
                seen_from, to = routed
                self._schedule(bytes(data), seen_from, to)
                if self.duplicate and self.rng.random() < self.duplicate:
                    self.stats["duplicated"] += 1
                    self._schedule(bytes(data), seen_from, to)

    def _next_event(self) -> float | None:
        times = [t for m in self.machines.values() if (t := m.get_timer()) is not None]
        if self._in_flight:
            times.append(self._in_flight[0][0])
        return min(times) if times else None

    def run(
        self,
        until: float | None = None,
        *,
        max_steps: int = 1_000_000,
        until_idle: bool = False,
        condition: Callable[[], bool] | None = None,
    ) -> None:
        """Advance the simulation.

        Stops when ``condition()`` is true (checked after every step), when
        nothing is in flight and no timer is set before ``until`` (with
        ``until_idle``, or always when ``until`` is None), or at ``until``, where
        ``now`` is left equal to ``until``.  Raises :class:`SimulationError`
        after ``max_steps`` events.
        """
        steps = 0
        while True:
            self._collect()
            if condition is not None and condition():
                return
            t = self._next_event()
            if t is None or (until is not None and t > until):
                if until is not None and not until_idle:
                    self.now = max(self.now, until)
                return
            steps += 1
            if steps > max_steps:
                raise SimulationError(f"no quiescence after {max_steps} steps (now={self.now})")
            self.now = max(self.now, t)
            self._step()

    def _step(self) -> None:
        """Run one event at ``now``: the earliest due delivery, else every due timer."""
        if self._in_flight and self._in_flight[0][0] <= self.now:
            _, _, data, src, dst = heapq.heappop(self._in_flight)
            machine = self.machines.get(dst)
            if machine is None:
                self.stats["undeliverable"] += 1
            else:
                self.stats["delivered"] += 1
                machine.receive_datagram(data, src, self.now)
            return
        for machine in list(self.machines.values()):
            t = machine.get_timer()
            if t is not None and t <= self.now:
                machine.handle_timer(self.now)
