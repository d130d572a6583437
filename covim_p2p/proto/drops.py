"""Counting what a machine refuses, by reason, for ``:CoVim status``.

Why: "dropped 22,000" says something is wrong; "rate 21,950, forged 50"
says what.  Reasons are short stable keys (the seal's ``SealError.reason``,
or the machine's own); anything else counts as "malformed".
"""

from __future__ import annotations

from collections import Counter

from .codec import DecodeError


class Drops:
    def __init__(self) -> None:
        self.by_reason: Counter[str] = Counter()

    def add(self, reason: str, n: int = 1) -> None:
        self.by_reason[reason] += n

    def add_error(self, exc: DecodeError) -> None:
        self.add(getattr(exc, "reason", "malformed"))

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())

    def __int__(self) -> int:
        return self.total


def merged(*drops: Drops | None) -> dict[str, int]:
    """Counts by reason over several machines (node, introducer, invite waiter)."""
    out: Counter[str] = Counter()
    for d in drops:
        if d is not None:
            out.update(d.by_reason)
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))
