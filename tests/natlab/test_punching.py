"""Real Neovims behind real NATs: the full mesh punches through cone NATs.

alice hosts from a public address; bob and carol each sit behind their own NAT.
The introducer tells each the address it saw the other come from (the NAT's
mapping), both send HELLO there, and each NAT lets the other's packets in once
its own client has sent to that address: the classic simultaneous open.
A symmetric NAT maps a new port for every destination, so the address the
introducer saw is not the one the other peer must use: no direct link forms;
without ``g:covim_turn`` the host forwards between the two.  With a TURN
server, the symmetric peer's relayed address becomes a candidate and the link
forms through it.  Two peers behind one NAT (no hairpinning) link over their
LAN addresses.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "nvim"))
from covim_peers import shared_lines, status, type_keys, wait_converged  # noqa: E402
from lab import Host, NatLab, missing  # noqa: E402
from nvim_harness import wait_for  # noqa: E402

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")


def start(nvim_factory, host: Host):
    nvim = nvim_factory(netns=host.netns)
    nvim.vars["covim_bind"] = host.ip
    return nvim


def peers_of(nvim) -> dict[str, str]:
    return {p["name"]: p["addr"] for p in status(nvim)["peers"]}


@pytest.fixture
def lab():
    with NatLab() as lab:
        yield lab


def session(nvim_factory, lab: NatLab, bob_nat: str = "", carol_nat: str = "", *, hosts: dict | None = None,
            lines: tuple[str, ...] = ("shared through two NATs",), settings: dict | None = None):
    """alice hosts from the lab's public side, everyone else in ``hosts`` connects;
    ``settings``: {name: {g:var: value}} set before the commands."""
    hosts = hosts or {"alice": lab.public("alice", 10), "bob": lab.behind_nat("bob", bob_nat, 21, 1),
                      "carol": lab.behind_nat("carol", carol_nat, 22, 2)}
    nvims = {name: start(nvim_factory, h) for name, h in hosts.items()}
    for name, values in (settings or {}).items():
        for var, value in values.items():
            nvims[name].vars[var] = value
    a = nvims["alice"]
    a.vars["covim_host_addr"] = hosts["alice"].ip
    a.current.buffer[:] = list(lines)
    a.command("CoVim host 0 alice")
    token = a.vars["covim_token"]
    for name in hosts:
        if name != "alice":
            nvims[name].command(f"CoVim connect {token} {name}")
    return hosts, nvims


def wait_full_mesh(nvims, what: str) -> None:
    wait_for(lambda: all(len(status(v)["peers"]) == len(nvims) - 1 and status(v)["synced"] for v in nvims), 15,
             what=what)


def test_two_peers_behind_port_restricted_nats_link_directly(nvim_factory, lab):
    hosts, nvims = session(nvim_factory, lab, "port-restricted", "port-restricted")
    a, b, c = nvims["alice"], nvims["bob"], nvims["carol"]
    wait_full_mesh([a, b, c], "a full mesh across two NATs")
    # bob reaches carol at her NAT's public address, not at her LAN address or via alice
    assert peers_of(b)["carol"].startswith(hosts["carol"].public_ip + ":")
    assert peers_of(c)["bob"].startswith(hosts["bob"].public_ip + ":")
    assert peers_of(a)["bob"].startswith(hosts["bob"].public_ip + ":")
    type_keys(b, "Gobob behind a NAT<Esc>")
    type_keys(c, "ggOcarol behind another<Esc>")
    final = wait_converged([a, b, c], timeout=10)
    assert final == ["carol behind another", "shared through two NATs", "bob behind a NAT"]


def test_a_symmetric_nat_gets_no_direct_link_and_the_host_forwards(nvim_factory, lab):
    """No hole joins a symmetric NAT to a port-restricted one and there is no TURN: alice, linked
    directly to both, forwards their (end-to-end sealed) datagrams after 3 s of failed probing
    (proto/forwarding.py). Before forwarding, edits crossed only in alice's 5 s resync."""
    hosts, nvims = session(nvim_factory, lab, "port-restricted", "symmetric")
    a, b, c = nvims["alice"], nvims["bob"], nvims["carol"]
    wait_for(lambda: all(status(v)["synced"] for v in (b, c)) and len(status(a)["peers"]) == 2, 15,
             what="both joiners synced with alice")
    wait_for(lambda: peers_of(b).get("carol") == "via alice" and peers_of(c).get("bob") == "via alice", 10,
             what="bob and carol linked through alice")
    assert {p["path"] for p in status(b)["peers"] if p["name"] == "carol"} == {"forwarded"}
    assert {p["path"] for p in status(b)["peers"] if p["name"] == "alice"} == {"direct"}
    type_keys(b, "Gobob<Esc>")
    wait_for(lambda: shared_lines(c) == ["shared through two NATs", "bob"], 2,
             what="bob's line at carol, well before a 5 s resync")
    type_keys(c, "Gocarol<Esc>")
    assert wait_converged([a, b, c], timeout=5) == ["shared through two NATs", "bob", "carol"]


def test_two_peers_behind_one_nat_link_over_their_lan(nvim_factory, lab):
    """The NAT does not hairpin: the public address the introducer saw for dave leads
    nowhere from bob's side of the NAT. The LAN addresses they announced in JOIN do."""
    alice_at, bob_at = lab.public("alice", 10), lab.behind_nat("bob", "port-restricted", 21, 1)
    dave_at = lab.neighbour(bob_at, "dave")
    _, nvims = session(nvim_factory, lab, hosts={"alice": alice_at, "bob": bob_at, "dave": dave_at},
                       lines=("one office",))
    a, b, d = nvims["alice"], nvims["bob"], nvims["dave"]
    wait_full_mesh([a, b, d], "a full mesh with two peers behind one NAT")
    assert peers_of(b)["dave"].startswith(dave_at.ip + ":")  # the LAN address
    assert peers_of(d)["bob"].startswith(bob_at.ip + ":")
    assert peers_of(a)["dave"].startswith(bob_at.public_ip + ":")  # alice sees them both at the NAT
    type_keys(d, "Godave<Esc>")
    assert wait_converged([a, b, d], timeout=10) == ["one office", "dave"]


def test_a_symmetric_nat_links_through_the_turn_relay(nvim_factory, lab):
    """carol (symmetric NAT) allocates a relay on coturn; after RELAY_DELAY its address
    joins her candidates, bob's probes reach her through it, and edits flow at once."""
    from lab import TURN_PASSWORD, TURN_USER
    server = lab.stun_server(40)
    hosts, nvims = session(nvim_factory, lab, "port-restricted", "symmetric", lines=("relayed",),
                           settings={"carol": {"covim_turn": f"{TURN_USER}:{TURN_PASSWORD}@{server.ip}:3478"}})
    a, b, c = nvims["alice"], nvims["bob"], nvims["carol"]
    wait_full_mesh([a, b, c], "a full mesh, bob and carol through the relay")
    (to_bob,) = [p for p in status(c)["peers"] if p["name"] == "bob"]
    assert to_bob["path"] == "relay" and to_bob["addr"].startswith(hosts["bob"].public_ip + ":")
    assert peers_of(b)["carol"].startswith(server.ip + ":")  # bob talks to carol's relayed address
    for p in status(c)["peers"]:
        if p["name"] == "alice":
            assert p["path"] == "direct"  # alice is public: no relay needed
    type_keys(b, "Gobob<Esc>")
    wait_for(lambda: shared_lines(c) == ["relayed", "bob"], 2, what="bob's line at carol, well before a resync")
    type_keys(c, "Gocarol<Esc>")
    assert wait_converged([a, b, c], timeout=5) == ["relayed", "bob", "carol"]


def test_a_relayed_link_moves_to_a_direct_path_that_opens_later(nvim_factory, lab, capsys):
    """bob (port-restricted) and carol (symmetric, with TURN) link through the relay; then carol's
    router turns port-restricted (its NAT rules swapped, its mappings flushed), so a hole can be
    punched: the link's gentle direct probes find it and it leaves the relay."""
    import subprocess
    import time

    from lab import NAT_RULES, TURN_PASSWORD, TURN_USER
    server = lab.stun_server(40)
    hosts, nvims = session(nvim_factory, lab, "port-restricted", "symmetric", lines=("upgrade",),
                           settings={"carol": {"covim_turn": f"{TURN_USER}:{TURN_PASSWORD}@{server.ip}:3478"}})
    a, b, c = nvims["alice"], nvims["bob"], nvims["carol"]
    wait_full_mesh([a, b, c], "a full mesh, bob and carol through the relay")

    def path(of, to: str) -> str:
        return next((p["path"] for p in status(of)["peers"] if p["name"] == to), "")

    assert path(c, "bob") == "relay"
    router = lab.router(hosts["carol"])
    subprocess.run(["ip", "netns", "exec", router, "nft", "delete", "table", "ip", "covim_nat"], check=True,
                   timeout=30)
    subprocess.run(["ip", "netns", "exec", router, "nft", "-f", "-"], input=NAT_RULES.format(random=""),
                   text=True, check=True, timeout=30)
    lab.flush_conntrack(hosts["carol"])
    t0 = time.monotonic()
    wait_for(lambda: path(c, "bob") == "direct" and path(b, "carol") == "direct", 30,
             what="the bob-carol link to leave the relay for a direct path")
    with capsys.disabled():
        print(f"\nrelay -> direct after the NAT turned port-restricted: {time.monotonic() - t0:.2f} s")
    assert peers_of(b)["carol"].startswith(hosts["carol"].public_ip + ":")  # no longer the relay's address
    type_keys(b, "Gobob<Esc>")
    type_keys(c, "Gocarol<Esc>")
    final = wait_converged([a, b, c], timeout=10)
    assert final[0] == "upgrade" and sorted(final[1:]) == ["bob", "carol"]
