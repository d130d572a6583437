"""What a peer node tells its user (the editor adapter) through ``next_event()``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Joined:
    pass


@dataclass(frozen=True)
class Synced:
    """The first full state arrived from a peer: the joiner now holds the document."""


@dataclass(frozen=True)
class JoinFailed:
    reason: str


@dataclass(frozen=True)
class PeerUp:
    peer_id: int
    name: str


@dataclass(frozen=True)
class PeerDown:
    peer_id: int
    name: str
    reason: str


@dataclass(frozen=True)
class Problem:
    """Something the user should hear about once; the session goes on."""
    text: str


Event = Joined | Synced | JoinFailed | PeerUp | PeerDown | Problem
