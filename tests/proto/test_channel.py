"""ReliableChannel: exactly-once, in-order delivery over a terrible fake network.

The channel has no addresses, so ``ChannelNode`` below wraps one in the machine
shape (DESIGN.md section 1): it packs ``frames_to_send`` into covim datagrams
of at most MAX_DATAGRAM bytes and routes decoded Data/Ack frames back in.
Time is the fake network's virtual clock, so retransmit times are asserted
exactly, as aioquic's tests do.
"""

from __future__ import annotations

import random
import sys
from collections import OrderedDict
from pathlib import Path

import pytest

from covim_p2p.proto import channel as channel_mod
from covim_p2p.proto.channel import (
    CHUNK,
    INITIAL_RTO,
    MAX_RTO,
    RECV_AHEAD,
    WINDOW,
    ChannelError,
    ReliableChannel,
)
from covim_p2p.proto.framing import (
    HEADER_LEN,
    KIND_PEER,
    MAX_DATAGRAM,
    Ack,
    Data,
    decode_datagram_untrusted,
    decode_frames_untrusted,
    encode_datagram,
    encode_frames,
    frame_size,
)

sys.path.insert(0, str(Path(__file__).parent))  # the fakenet helper, whatever the import mode
from fakenet import FakeNetwork, SimulationError  # noqa: E402

A = ("10.0.0.1", 4001)
B = ("10.0.0.2", 4002)
BODY_BUDGET = MAX_DATAGRAM - HEADER_LEN


class ChannelNode:
    """A ReliableChannel to one fixed peer, in the shape FakeNetwork pumps."""

    def __init__(self, peer, sender_id: int) -> None:
        self.channel = ReliableChannel()
        self.peer = peer
        self.sender_id = sender_id
        self.received: list[bytes] = []
        self.max_inflight = 0

    def receive_datagram(self, data: bytes, addr, now: float) -> None:
        assert addr == self.peer
        header, body = decode_datagram_untrusted(data)
        assert header.kind == KIND_PEER
        for frame in decode_frames_untrusted(body):
            if isinstance(frame, Data):
                self.channel.on_data(frame)
            elif isinstance(frame, Ack):
                self.channel.on_ack(frame, now)
        while (message := self.channel.next_message()) is not None:
            self.received.append(message)

    def datagrams_to_send(self, now: float):
        frames = self.channel.frames_to_send(now)
        self.max_inflight = max(self.max_inflight, len(self.channel._inflight))
        bodies: list[list] = []
        size = 0
        for frame in frames:
            n = frame_size(frame)
            if not bodies or size + n > BODY_BUDGET:
                bodies.append([])
                size = 0
            bodies[-1].append(frame)
            size += n
        out = []
        for group in bodies:
            datagram = encode_datagram(KIND_PEER, 1, self.sender_id, encode_frames(group))
            assert len(datagram) <= MAX_DATAGRAM
            out.append((datagram, self.peer))
        return out

    def get_timer(self):
        return self.channel.get_timer()

    def handle_timer(self, now: float) -> None:
        self.channel.handle_timer(now)


def pair(net: FakeNetwork) -> tuple[ChannelNode, ChannelNode]:
    a, b = ChannelNode(B, 1), ChannelNode(A, 2)
    net.attach(A, a)
    net.attach(B, b)
    return a, b


def data_seqs(datagram: bytes) -> list[int]:
    _, body = decode_datagram_untrusted(datagram)
    return [f.seq for f in decode_frames_untrusted(body) if isinstance(f, Data)]


def random_messages(rng: random.Random, count: int, max_size: int) -> list[bytes]:
    # Log-uniform sizes: mostly keystroke-sized updates, some multi-chunk pastes,
    # plus both extremes, so the run stays fast while covering 0 B .. max_size.
    sizes = [0, max_size, CHUNK - 1, CHUNK, CHUNK + 1]
    while len(sizes) < count:
        sizes.append(min(max_size, int(2 ** rng.uniform(0, max_size.bit_length())) - 1))
    rng.shuffle(sizes)
    return [rng.randbytes(n) for n in sizes]


# ---- whole transfers ---------------------------------------------------------


def test_lossless_thousand_messages_arrive_exactly_in_order():
    rng = random.Random(1)
    messages = random_messages(rng, 1000, 50_000)
    net = FakeNetwork(seed=1, latency=0.005)
    a, b = pair(net)
    for m in messages:
        a.channel.send(m)
    net.run(until_idle=True, until=60.0)
    assert b.received == messages
    assert not a.channel.pending()
    assert a.channel.get_timer() is None
    assert a.channel.retransmissions == 0
    assert b.channel.duplicates == 0
    assert net.stats["dropped"] == net.stats["duplicated"] == 0
    assert net.stats["delivered"] == net.stats["sent"]


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_lossy_network_every_message_once_in_order_both_ways(seed):
    rng = random.Random(seed)
    a_to_b = random_messages(rng, 150, 20_000)
    b_to_a = random_messages(rng, 150, 5_000)
    net = FakeNetwork(seed=seed, drop=0.2, duplicate=0.1, reorder=0.2, latency=0.01, jitter=0.005)
    a, b = pair(net)
    for m in a_to_b:
        a.channel.send(m)
    for m in b_to_a:
        b.channel.send(m)
    net.run(until_idle=True, until=600.0)
    assert b.received == a_to_b
    assert a.received == b_to_a
    assert not a.channel.pending() and not b.channel.pending()
    # The network really was terrible, and the channel really recovered.
    assert net.stats["dropped"] > 0 and net.stats["duplicated"] > 0
    assert a.channel.retransmissions > 0 and b.channel.retransmissions > 0
    assert b.channel.duplicates > 0
    assert a.max_inflight <= WINDOW and b.max_inflight <= WINDOW


@pytest.mark.parametrize("seed", [11, 12])
def test_lossy_network_two_megabyte_message_intact(seed):
    big = random.Random(seed).randbytes(2 << 20)
    net = FakeNetwork(seed=seed, drop=0.2, duplicate=0.1, reorder=0.2, latency=0.01)
    a, b = pair(net)
    a.channel.send(b"before")
    a.channel.send(big)
    a.channel.send(b"after")
    net.run(until_idle=True, until=600.0)
    assert len(b.received) == 3
    assert b.received[0] == b"before" and b.received[2] == b"after"
    assert b.received[1] == big
    assert a.max_inflight == WINDOW  # the window was the limit, and it held


def test_messages_sent_while_running_keep_order():
    net = FakeNetwork(seed=3, drop=0.2, reorder=0.3, latency=0.01)
    a, b = pair(net)
    sent = []
    for i in range(100):
        message = f"update {i}".encode()
        a.channel.send(message)
        sent.append(message)
        net.run(until=net.now + 0.003)  # a keystroke every 3 ms
    net.run(until_idle=True, until=600.0)
    assert b.received == sent


# ---- exact retransmission timing ---------------------------------------------


def test_rto_exact_times_direct():
    ch = ReliableChannel()
    ch.send(b"x")
    t0 = 10.0
    [frame] = ch.frames_to_send(t0)  # lost
    assert frame == Data(0, True, b"x")
    assert ch.get_timer() == t0 + INITIAL_RTO
    ch.handle_timer(t0 + INITIAL_RTO - 1e-6)  # not yet
    assert ch.frames_to_send(t0 + INITIAL_RTO - 1e-6) == []
    t1 = ch.get_timer()
    ch.handle_timer(t1)
    assert ch.frames_to_send(t1) == [frame]
    assert ch.retransmissions == 1
    # Backoff per try: 0.4, 0.8, 1.6, then capped at MAX_RTO.
    assert ch.get_timer() == t1 + INITIAL_RTO * 2
    t2 = ch.get_timer()
    ch.handle_timer(t2)
    assert ch.frames_to_send(t2) == [frame]
    assert ch.get_timer() == t2 + INITIAL_RTO * 4
    t3 = ch.get_timer()
    ch.handle_timer(t3)
    ch.frames_to_send(t3)
    assert ch.get_timer() == t3 + INITIAL_RTO * 8
    t4 = ch.get_timer()
    ch.handle_timer(t4)
    ch.frames_to_send(t4)
    assert ch.get_timer() == t4 + MAX_RTO
    assert ch.retransmissions == 4
    ch.on_ack(Ack(1), t4 + 0.01)
    assert ch.get_timer() is None and not ch.pending()
    assert ch.srtt is None  # Karn: a retransmitted chunk gives no RTT sample


def test_rto_exact_times_over_fake_network():
    net = FakeNetwork(seed=0, latency=0.001)
    a, b = pair(net)
    sends: list[float] = []

    def lose_first_two(data, src, dst, now):
        if src == A and data_seqs(data) == [0]:
            sends.append(now)
            return len(sends) > 2
        return True

    net.intercept = lose_first_two
    a.channel.send(b"hello")
    net.run(until_idle=True, until=10.0)
    assert sends == [0.0, INITIAL_RTO, INITIAL_RTO + 2 * INITIAL_RTO]
    assert b.received == [b"hello"]
    assert a.channel.retransmissions == 2
    assert net.stats["intercepted"] == 2
    assert net.now == sends[-1] + 2 * 0.001  # done when the ack came back


def test_rtt_sample_sets_rto():
    ch = ReliableChannel()
    ch.send(b"x")
    ch.frames_to_send(0.0)
    ch.on_ack(Ack(1), 0.1)
    assert ch.srtt == 0.1
    # RFC 6298: RTO = SRTT + 4 * RTTVAR, RTTVAR = R / 2 on the first sample.
    assert ch.rto == pytest.approx(0.3)
    ch.send(b"y")
    ch.frames_to_send(1.0)
    assert ch.get_timer() == 1.0 + ch.rto


def test_rto_is_clamped():
    fast = ReliableChannel()
    fast.send(b"x")
    fast.frames_to_send(0.0)
    fast.on_ack(Ack(1), 0.001)
    assert fast.rto == channel_mod.MIN_RTO
    slow = ReliableChannel()
    slow.send(b"x")
    slow.frames_to_send(0.0)
    slow.on_ack(Ack(1), 5.0)
    assert slow.rto == MAX_RTO


# ---- RACK-style early retransmit ---------------------------------------------


def _rack_run(spacing: float):
    """Chunk 0 is lost once; chunks 1..5 follow ``spacing`` apart and are acked."""
    latency = 0.005
    net = FakeNetwork(seed=0, latency=latency)
    a, b = pair(net)
    sends: list[float] = []

    def lose_first_chunk0(data, src, dst, now):
        if src == A and 0 in data_seqs(data):
            sends.append(now)
            return len(sends) > 1
        return True

    net.intercept = lose_first_chunk0
    for i in range(6):
        a.channel.send(bytes([i]))
        net.run(until=net.now + spacing)
    net.run(until_idle=True, until=10.0)
    assert b.received == [bytes([i]) for i in range(6)]
    assert a.channel.retransmissions == 1
    return sends, 2 * latency


def test_rack_retransmits_on_a_later_ack_long_before_rto():
    sends, rtt = _rack_run(spacing=0.01)
    assert len(sends) == 2
    # Chunk 1 left at 0.01 and its ack came back at 0.02: by then chunk 0 had been
    # out 2 RTTs > 1.25 SRTT, so it is resent on that ack, not at the 0.2 s RTO.
    assert sends[1] == pytest.approx(0.01 + rtt)
    assert sends[1] < INITIAL_RTO / 4


def test_rack_retransmits_a_burst_head_about_one_rtt_late():
    # Chunks 0..5 leave together; 1..5 are acked after one RTT, when chunk 0 has
    # been out exactly one RTT, and no later ack will ever come.  A lost chunk
    # should still cost about 1.25 RTT, not a timeout.
    sends, rtt = _rack_run(spacing=0.0)
    assert len(sends) == 2
    # SRTT is one RTT after the first sample; the reorder deadline is 1.25 SRTT + 1 ms.
    assert sends[1] == pytest.approx(1.25 * rtt + 0.001)


def test_handle_timer_is_idempotent():
    ch = ReliableChannel()
    ch.send(b"x")
    ch.frames_to_send(0.0)
    ch.handle_timer(INITIAL_RTO)
    ch.handle_timer(INITIAL_RTO)  # e.g. a driver woken twice before it sends
    assert ch.frames_to_send(INITIAL_RTO) == [Data(0, True, b"x")]
    assert ch.retransmissions == 1
    assert ch.get_timer() == INITIAL_RTO + 2 * INITIAL_RTO


def test_rack_mark_then_timer_resends_once():
    ch = ReliableChannel()
    for i in range(3):
        ch.send(bytes([i]))
    ch.frames_to_send(0.0)
    ch.on_ack(Ack(0, ((1, 2),)), 0.01)  # first sample: SRTT 0.01, chunk 0 not yet late
    ch.on_ack(Ack(0, ((1, 3),)), 0.5)  # chunk 0 is late: marked for resend
    ch.handle_timer(0.5)  # and its deadline has passed as well
    assert ch.frames_to_send(0.5) == [Data(0, True, b"\x00")]
    assert ch.retransmissions == 1


# ---- window ------------------------------------------------------------------


def test_window_limits_chunks_in_flight():
    ch = ReliableChannel()
    ch.send(b"z" * (CHUNK * (WINDOW + 20)))
    first = ch.frames_to_send(0.0)
    assert [f.seq for f in first] == list(range(WINDOW))
    assert all(len(f.payload) == CHUNK for f in first)
    assert ch.frames_to_send(0.001) == []  # window full: nothing more
    ch.on_ack(Ack(10), 0.01)
    more = ch.frames_to_send(0.01)
    assert [f.seq for f in more] == list(range(WINDOW, WINDOW + 10))
    # Selective acks free window slots too (and, RACK-style, mark 10..19 lost:
    # they have been out 0.02 s > 1.25 * SRTT): resends take no new slots.
    ch.on_ack(Ack(10, ((20, 25),)), 0.02)
    assert [f.seq for f in ch.frames_to_send(0.02)] == list(range(10, 20)) + list(range(WINDOW + 10, WINDOW + 15))
    assert len(ch._inflight) == WINDOW


def test_message_chunking():
    ch = ReliableChannel()
    ch.send(b"")
    ch.send(b"a" * CHUNK)
    ch.send(b"b" * (CHUNK + 1))
    frames = ch.frames_to_send(0.0)
    assert frames == [
        Data(0, True, b""),
        Data(1, True, b"a" * CHUNK),
        Data(2, False, b"b" * CHUNK),
        Data(3, True, b"b"),
    ]


# ---- the receiving side ------------------------------------------------------


def test_duplicates_counted_not_delivered_twice():
    rx = ReliableChannel()
    rx.on_data(Data(0, True, b"a"))
    rx.on_data(Data(0, True, b"a"))  # below next expected
    rx.on_data(Data(2, True, b"c"))
    rx.on_data(Data(2, True, b"c"))  # already buffered ahead
    assert rx.duplicates == 2
    assert rx.frames_to_send(0.0) == [Ack(1, ((2, 3),))]
    rx.on_data(Data(1, True, b"b"))
    assert [rx.next_message() for _ in range(4)] == [b"a", b"b", b"c", None]
    rx.on_data(Data(1, True, b"b"))
    assert rx.duplicates == 3
    assert rx.next_message() is None
    # A duplicate still gets an ack: the sender's ack may have been lost.
    assert rx.frames_to_send(0.0) == [Ack(3)]


def test_chunk_beyond_recv_ahead_is_ignored():
    rx = ReliableChannel()
    rx.on_data(Data(RECV_AHEAD, True, b"far"))
    assert rx.frames_to_send(0.0) == [Ack(0)]
    assert rx.duplicates == 0
    rx.on_data(Data(RECV_AHEAD - 1, True, b"edge"))  # the last seq still accepted
    assert rx.frames_to_send(0.0) == [Ack(0, ((RECV_AHEAD - 1, RECV_AHEAD),))]
    rx.on_data(Data(10**12, True, b"very far"))
    assert rx.frames_to_send(0.0) == [Ack(0, ((RECV_AHEAD - 1, RECV_AHEAD),))]


def test_ack_carries_at_most_32_ranges_lowest_first():
    rx = ReliableChannel()
    for seq in range(1, 100, 2):  # 50 holes
        rx.on_data(Data(seq, True, b""))
    [ack] = rx.frames_to_send(0.0)
    assert ack.next_seq == 0
    assert ack.ranges == tuple((s, s + 1) for s in range(1, 65, 2))


def test_message_over_max_message_raises(monkeypatch):
    monkeypatch.setattr(channel_mod, "MAX_MESSAGE", 3 * CHUNK)
    tx, rx = ReliableChannel(), ReliableChannel()
    tx.send(b"o" * (3 * CHUNK))  # exactly the limit: fine
    tx.send(b"x" * (3 * CHUNK + 1))
    frames = tx.frames_to_send(0.0)
    for f in frames[:3]:
        rx.on_data(f)
    assert rx.next_message() == b"o" * (3 * CHUNK)
    with pytest.raises(ChannelError) as exc:
        for f in frames[3:]:
            rx.on_data(f)
    assert str(exc.value) == f"peer sent a message larger than {3 * CHUNK} bytes"
    assert rx.next_message() is None


def test_spurious_and_out_of_range_acks_are_harmless():
    ch = ReliableChannel()
    ch.send(b"q" * (3 * CHUNK))
    ch.frames_to_send(0.0)
    ch.on_ack(Ack(0, ((5, 10**9),)), 0.01)  # ranges past anything we sent
    assert ch.pending()
    assert ch.get_timer() == INITIAL_RTO
    ch.on_ack(Ack(3), 0.02)
    ch.on_ack(Ack(1), 0.03)  # an old, reordered ack
    assert not ch.pending()


def test_forged_huge_ack_range_costs_only_the_inflight_span():
    class CountingDict(OrderedDict):
        pops = 0

        def pop(self, *args):
            CountingDict.pops += 1
            return super().pop(*args)

    ch = ReliableChannel()
    ch._send_seq = 10**6  # as after a long session
    ch.send(b"a")
    ch.send(b"b")
    ch.frames_to_send(0.0)
    ch._inflight = CountingDict(ch._inflight)
    ch.on_ack(Ack(0, ((0, 10**18),)), 0.01)
    assert not ch.pending()
    assert CountingDict.pops <= 2


# ---- RTT estimation ----------------------------------------------------------


def test_srtt_converges_to_round_trip_time():
    latency = 0.02
    net = FakeNetwork(seed=5, latency=latency)
    a, b = pair(net)
    for i in range(50):
        a.channel.send(bytes(100))
        net.run(until=net.now + 0.05)
    assert a.channel.srtt == pytest.approx(2 * latency, rel=1e-9)
    assert b.received == [bytes(100)] * 50


def test_srtt_converges_with_jitter_and_loss():
    latency, jitter = 0.02, 0.004
    net = FakeNetwork(seed=6, latency=latency, jitter=jitter, drop=0.1)
    a, b = pair(net)
    for i in range(200):
        a.channel.send(bytes(100))
        net.run(until=net.now + 0.05)
    net.run(until_idle=True, until=600.0)
    assert len(b.received) == 200
    # Mean one-way delay is latency + jitter / 2.
    assert a.channel.srtt == pytest.approx(2 * latency + jitter, abs=jitter)
    assert a.channel.rto >= a.channel.srtt


# ---- the fake network itself -------------------------------------------------


def _stats_for(seed: int) -> dict:
    net = FakeNetwork(seed=seed, drop=0.2, duplicate=0.1, reorder=0.2, latency=0.01)
    a, b = pair(net)
    for i in range(30):
        a.channel.send(bytes(2000))
    net.run(until_idle=True, until=60.0)
    return {**net.stats, "now": net.now}


def test_fakenet_is_deterministic_per_seed():
    assert _stats_for(7) == _stats_for(7)
    assert _stats_for(7) != _stats_for(8)


def test_fakenet_detach_loses_packets_and_run_stops_at_until():
    net = FakeNetwork(seed=0, latency=0.01)
    a, b = pair(net)
    net.detach(B)
    a.channel.send(b"into the void")
    net.run(until=30.0)
    assert net.now == 30.0
    assert net.stats["delivered"] == 0 and net.stats["undeliverable"] > 0
    assert a.channel.pending()
    # Capped backoff: 0.2 + 0.4 + 0.8 + 1.6 then every 2 s.
    assert a.channel.retransmissions == 4 + int((30.0 - 3.0) / MAX_RTO)


def test_fakenet_max_steps_and_condition():
    net = FakeNetwork(seed=0, latency=0.01)
    a, b = pair(net)
    net.detach(B)
    a.channel.send(b"x")
    with pytest.raises(SimulationError):
        net.run(max_steps=5)
    net2 = FakeNetwork(seed=0, latency=0.01)
    a2, b2 = pair(net2)
    for i in range(10):
        a2.channel.send(bytes([i]) * 1000)  # one datagram each
    net2.run(condition=lambda: len(b2.received) >= 3)
    assert 3 <= len(b2.received) < 10


class _Blaster:
    """Sends ``count`` numbered datagrams to ``dest`` at the first chance, then nothing."""

    def __init__(self, dest, count: int) -> None:
        self.dest, self.count = dest, count
        self.arrivals: list[tuple[int, float]] = []

    def receive_datagram(self, data, addr, now):
        self.arrivals.append((int.from_bytes(data, "big"), now))

    def datagrams_to_send(self, now):
        out = [(i.to_bytes(4, "big"), self.dest) for i in range(self.count)]
        self.count = 0
        return out

    def get_timer(self):
        return None

    def handle_timer(self, now):
        raise AssertionError("no timer was set")


def test_fakenet_impairments_match_their_probabilities():
    n, latency, jitter = 4000, 0.01, 0.002
    net = FakeNetwork(seed=9, drop=0.2, duplicate=0.1, reorder=0.2, latency=latency, jitter=jitter)
    src, sink = _Blaster(B, n), _Blaster(A, 0)
    net.attach(A, src)
    net.attach(B, sink)
    net.run()
    stats = net.stats
    assert stats["sent"] == n
    assert abs(stats["dropped"] - 0.2 * n) < 4 * (0.2 * 0.8 * n) ** 0.5
    assert abs(stats["duplicated"] - 0.1 * 0.8 * n) < 4 * (0.08 * 0.92 * n) ** 0.5
    assert stats["delivered"] == len(sink.arrivals) == n - stats["dropped"] + stats["duplicated"]
    numbers = [i for i, _ in sink.arrivals]
    assert numbers != sorted(numbers)  # reordered
    assert len(set(numbers)) == n - stats["dropped"]
    times = [t for _, t in sink.arrivals]
    assert times == sorted(times)
    assert latency <= min(times) and max(times) <= latency + jitter + FakeNetwork.REORDER_FACTOR * latency
    # Without reorder, equal-delay datagrams keep their order.
    calm = FakeNetwork(seed=9, latency=latency)
    src2, sink2 = _Blaster(B, 100), _Blaster(A, 0)
    calm.attach(A, src2)
    calm.attach(B, sink2)
    calm.run()
    assert sink2.arrivals == [(i, latency) for i in range(100)]
