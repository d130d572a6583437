"""What a NAT type means for the mesh, in words for the user.

The type names are pystun3's (RFC 3489 classification, DESIGN.md section 3).
Which pairs can punch a direct hole follows from RFC 4787's terms: a NAT with
endpoint-independent mapping (every cone) keeps one public port for all
destinations, so the address the introducer saw is the one a peer must use;
a symmetric NAT maps a new port per destination, so only a peer whose NAT
filters by address alone or not at all (open, full cone, restricted cone)
accepts what it sends; a peer that filters by port (port-restricted cone, a
stateful firewall, another symmetric NAT) needs a TURN relay
(``g:covim_turn``).  The NAT lab's pair matrix (tests/natlab/test_matrix.py)
checks every one of these sentences.
"""

from __future__ import annotations

from dataclasses import dataclass

OPEN, FULL_CONE, RESTRICTED, PORT_RESTRICTED = "Open Internet", "Full Cone", "Restric NAT", "Restric Port NAT"
SYMMETRIC, FIREWALL, BLOCKED = "Symmetric NAT", "Symmetric UDP Firewall", "Blocked"

ADVICE = {
    OPEN: "no NAT: peers can reach you directly",
    FULL_CONE: "a full-cone NAT: direct links work with everyone",
    RESTRICTED: "a restricted-cone NAT: direct links work with everyone, by hole punching",
    PORT_RESTRICTED: "a port-restricted cone NAT: direct links work, except with peers behind a symmetric NAT",
    SYMMETRIC: "a symmetric NAT: direct links work with open, full-cone and restricted-cone peers, not with "
               "port-restricted, firewalled or symmetric ones; set g:covim_turn to relay to those (without it "
               "their edits reach you only through the host's periodic sync)",
    FIREWALL: "a firewall that only lets answers in: direct links work by hole punching, except with peers "
              "behind a symmetric NAT",
    BLOCKED: "no answer from the STUN server: UDP may be blocked, or the server is down",
}


@dataclass(frozen=True)
class NatReport:
    kind: str  # a pystun3 type name, or "" when classification failed
    external: str  # "ip:port" as the STUN server saw us, or "" (pystun3 gives none for some types)
    text: str  # one sentence for :messages


def report(kind: str, external_ip: str | None, external_port: int | None) -> NatReport:
    external = f"{external_ip}:{external_port}" if external_ip and external_port else ""
    advice = ADVICE.get(kind, f"an unusual answer from the STUN server ({kind})")
    where = f" (public address {external})" if external else ""
    return NatReport(kind, external, f"NAT check: {advice}{where}")


def failed(reason: str) -> NatReport:
    return NatReport("", "", f"NAT check failed: {reason}")
