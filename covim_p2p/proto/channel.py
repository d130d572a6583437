"""A reliable, ordered, message-oriented stream over lossy datagrams: one per peer link.

Rules of the machine:

* ``send(message)`` cuts a message into chunks of at most ``CHUNK`` bytes, each
  with the next sequence number; the last chunk carries ``fin``.
* Receivers deliver chunks strictly in sequence order and glue them back into
  messages, so every sender's Yjs updates arrive in the order they were made
  (pycrdt diverges otherwise: DESIGN.md section 3).  Duplicates are dropped.
* Every DATA that arrives is answered by an ACK (cumulative ``next_seq`` plus
  up to 32 selective ranges) at the next ``frames_to_send``.
* A chunk is sent again when its retransmission deadline passes (RTO from an
  RFC 6298 estimator, doubled per try) or, once a later chunk is acked, when
  it has been outstanding longer than ~1.25 smoothed RTTs (RACK-style: at that
  ack, or by a reorder deadline if it is not that old yet), so one lost packet
  costs about an RTT, not a timeout.
* ``kick()`` resends all that is in flight at once: node.py calls it when a
  link hears from the peer after a silence, and on a PING while something is
  ``backed_off()`` (the ping proves the path works now; a NAT that lost its
  mapping reopens it with that ping).  Pings come once a second, so this adds
  at most one round per second.
* At most ``WINDOW`` chunks are in flight; the rest wait in the send queue.

The machine never reads a clock: ``now`` comes in with every call.
"""

from __future__ import annotations

from collections import OrderedDict, deque

from .codec import DecodeError
from .framing import Ack, Data, Frame, MAX_ACK_RANGES

CHUNK = 1100
WINDOW = 256
RECV_AHEAD = 4 * 256        # chunks we accept beyond the next expected one (a sender has WINDOW in flight)
MAX_MESSAGE = 256 << 20     # a peer cannot make us buffer more than this for one message
INITIAL_RTO = 0.2
MIN_RTO = 0.025
MAX_RTO = 2.0


class ChannelError(Exception):
    """The remote side broke the stream's rules; the link should be dropped."""


class _Inflight:
    __slots__ = ("frame", "sent_at", "tries", "deadline")

    def __init__(self, frame: Data, sent_at: float, deadline: float) -> None:
        self.frame = frame
        self.sent_at = sent_at
        self.tries = 1
        self.deadline = deadline


class ReliableChannel:
    def __init__(self) -> None:
        self._send_seq = 0
        self._queue: deque[Data] = deque()
        self._inflight: OrderedDict[int, _Inflight] = OrderedDict()
        self._resend: list[int] = []
        self._recv_next = 0
        self._recv_ahead: dict[int, Data] = {}
        self._partial: list[bytes] = []
        self._partial_size = 0
        self._delivered: deque[bytes] = deque()
        self._ack_due = False
        self.srtt: float | None = None
        self._rttvar = 0.0
        self.rto = INITIAL_RTO
        self.retransmissions = 0
        self.duplicates = 0

    # ---- sending ---------------------------------------------------------

    def send(self, message: bytes) -> None:
        view = memoryview(message)
        n = max(1, (len(message) + CHUNK - 1) // CHUNK)
        for i in range(n):
            piece = bytes(view[i * CHUNK : (i + 1) * CHUNK])
            self._queue.append(Data(self._send_seq, i == n - 1, piece))
            self._send_seq += 1

    def pending(self) -> bool:
        """True while anything is unsent or unacknowledged."""
        return bool(self._queue or self._inflight)

    def frames_to_send(self, now: float) -> list[Frame]:
        frames: list[Frame] = []
        if self._ack_due:
            frames.append(self._make_ack())
            self._ack_due = False
        for seq in self._resend:
            entry = self._inflight.get(seq)
            if entry is None:
                continue
            entry.tries += 1
            entry.sent_at = now
            entry.deadline = now + min(MAX_RTO, self.rto * (2 ** (entry.tries - 1)))
            self.retransmissions += 1
            frames.append(entry.frame)
        self._resend.clear()
        while self._queue and len(self._inflight) < WINDOW:
            frame = self._queue.popleft()
            self._inflight[frame.seq] = _Inflight(frame, now, now + self.rto)
            frames.append(frame)
        return frames

    def get_timer(self) -> float | None:
        if not self._inflight:
            return None
        return min(entry.deadline for entry in self._inflight.values())

    def handle_timer(self, now: float) -> None:
        for seq, entry in self._inflight.items():
            if entry.deadline <= now and seq not in self._resend:
                self._resend.append(seq)

    def kick(self) -> None:
        """The path works again after a silence (a NAT lost its mapping): everything in flight goes
        out at the next ``frames_to_send``, not when its backed-off deadline (up to MAX_RTO) says."""
        for seq in self._inflight:
            if seq not in self._resend:
                self._resend.append(seq)

    def backed_off(self) -> bool:
        """Something in flight was sent three times or more (its timer has doubled at least twice)."""
        return any(entry.tries >= 3 for entry in self._inflight.values())

    def on_ack(self, ack: Ack, now: float) -> None:
        acked: list[_Inflight] = []
        while self._inflight:
            seq, entry = next(iter(self._inflight.items()))
            if seq >= ack.next_seq:
                break
            acked.append(self._inflight.pop(seq))
        highest = ack.next_seq - 1
        for start, end in ack.ranges:
            if self._inflight:  # clamp: a forged range must not cost a walk over every seq ever sent
                lo, hi = next(iter(self._inflight)), next(reversed(self._inflight)) + 1
                for seq in range(max(start, lo), min(end, hi)):
                    entry = self._inflight.pop(seq, None)
                    if entry is not None:
                        acked.append(entry)
            highest = max(highest, end - 1)
        for entry in acked:
            if entry.tries == 1:  # Karn: only unambiguous samples
                self._rtt_sample(now - entry.sent_at)
                break
        if ack.ranges and self.srtt is not None:
            threshold = self.srtt * 1.25 + 0.001
            for seq, entry in self._inflight.items():
                if seq >= highest:
                    break
                if seq in self._resend:
                    continue
                if now - entry.sent_at > threshold:
                    self._resend.append(seq)
                else:  # RACK reorder timer: lost once out `threshold`, even if no later ack comes
                    entry.deadline = min(entry.deadline, entry.sent_at + threshold)

    def _rtt_sample(self, rtt: float) -> None:
        if self.srtt is None:
            self.srtt = rtt
            self._rttvar = rtt / 2
        else:
            self._rttvar = 0.75 * self._rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt
        self.rto = max(MIN_RTO, min(MAX_RTO, self.srtt + 4 * self._rttvar))

    # ---- receiving -------------------------------------------------------

    def on_data(self, frame: Data) -> None:
        self._ack_due = True
        seq = frame.seq
        if seq < self._recv_next or seq in self._recv_ahead:
            self.duplicates += 1
            return
        if seq >= self._recv_next + RECV_AHEAD:
            return  # beyond our buffer: the sender will retransmit
        self._recv_ahead[seq] = frame
        while self._recv_next in self._recv_ahead:
            chunk = self._recv_ahead.pop(self._recv_next)
            self._recv_next += 1
            self._partial.append(chunk.payload)
            self._partial_size += len(chunk.payload)
            if self._partial_size > MAX_MESSAGE:
                raise ChannelError(f"peer sent a message larger than {MAX_MESSAGE} bytes")
            if chunk.fin:
                self._delivered.append(b"".join(self._partial))
                self._partial.clear()
                self._partial_size = 0

    def next_message(self) -> bytes | None:
        return self._delivered.popleft() if self._delivered else None

    def _make_ack(self) -> Ack:
        ranges: list[tuple[int, int]] = []
        for seq in sorted(self._recv_ahead):
            if ranges and ranges[-1][1] == seq:
                ranges[-1] = (ranges[-1][0], seq + 1)
            else:
                if len(ranges) == MAX_ACK_RANGES:
                    break
                ranges.append((seq, seq + 1))
        return Ack(self._recv_next, tuple(ranges))


__all__ = ["ReliableChannel", "ChannelError", "DecodeError", "CHUNK"]
