"""The seed's manual flow between two port-restricted NATs, with no server but STUN (issue 8, item 2).

Both peers learn their public address by a STUN Binding request on their
session socket (coturn in the lab), so the tokens they exchange carry it.
Neither NAT lets in a packet its client has not sent towards, so each side
must send first:

* the original order: bob runs ``:CoVim start``, alice ``:CoVim add <bob's
  token>`` (her INVITEs open her NAT towards bob), then bob ``:CoVim connect
  <alice's token>`` from the same socket (his JOIN gets in);
* the reply-token order: bob ``:CoVim connect`` first (his JOINs open his
  NAT towards alice, unanswered), after ~2 s he is given a reply token
  (``g:covim_reply_token``), and alice's ``:CoVim add <it>`` completes it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "nvim"))
from covim_peers import status, type_keys, wait_converged  # noqa: E402
from lab import NatLab, missing  # noqa: E402
from nvim_harness import wait_for  # noqa: E402

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")


@pytest.fixture
def world(nvim_factory):
    with NatLab() as lab:
        server = lab.stun_server(40)
        alice_at = lab.behind_nat("alice", "port-restricted", 21, 1)
        bob_at = lab.behind_nat("bob", "port-restricted", 22, 2)
        nvims = []
        for at in (alice_at, bob_at):
            nvim = nvim_factory(netns=at.netns)
            nvim.vars["covim_stun"] = f"{server.ip}:3478"
            nvims.append(nvim)
        nvims[0].current.buffer[:] = ["punched by hand"]
        yield nvims[0], nvims[1], alice_at, bob_at


def token_of(nvim, var: str = "covim_token") -> str:
    wait_for(lambda: nvim.vars.get(var, ""), 5, what=f"g:{var}")
    return nvim.vars[var]


def check_direct_and_editing(a, b, alice_at, bob_at, first: str = "punched by hand") -> None:
    wait_for(lambda: status(a)["peers"] and status(b)["peers"] and status(b)["synced"], 20,
             what="alice and bob linked")
    (to_bob,), (to_alice,) = status(a)["peers"], status(b)["peers"]
    assert to_bob["path"] == "direct" and to_bob["addr"].startswith(bob_at.public_ip + ":")
    assert to_alice["path"] == "direct" and to_alice["addr"].startswith(alice_at.public_ip + ":")
    assert {c["type"] for c in status(a)["candidates"]} == {"host", "srflx"}
    type_keys(b, "Goby hand too<Esc>")
    assert wait_converged([a, b], timeout=10) == [first, "by hand too"]


def test_the_original_order_start_add_connect(world):
    a, b, alice_at, bob_at = world
    b.command("CoVim start 0 bob")
    peer_token = token_of(b)
    assert peer_token.startswith("covim1p-")
    a.command("CoVim host 0 alice")
    host_token = token_of(a)
    a.command(f"CoVim add {peer_token}")
    b.command(f"CoVim connect {host_token} bob")
    check_direct_and_editing(a, b, alice_at, bob_at)


def test_the_reply_token_order_connect_then_add(world):
    a, b, alice_at, bob_at = world
    a.command("CoVim host 0 alice")
    host_token = token_of(a)
    b.command(f"CoVim connect {host_token} bob")
    reply = token_of(b, "covim_reply_token")
    assert reply.startswith("covim1p-")
    assert "send the host this reply token: covim1p-" in b.command_output("messages")
    a.command(f"CoVim add {reply}")
    check_direct_and_editing(a, b, alice_at, bob_at)


def test_a_host_behind_a_nat_is_joined_through_a_public_rendezvous(nvim_factory):
    """g:covim_rendezvous: alice (port-restricted NAT) registers at a public covim-rendezvous,
    which is also everyone's STUN server; bob (another port-restricted NAT) connects with her
    token and they punch a direct link. The rendezvous logs the joins."""
    import subprocess
    with NatLab() as lab:
        rv_at = lab.public("rv", 50)
        alice_at = lab.behind_nat("alice", "port-restricted", 21, 1)
        bob_at = lab.behind_nat("bob", "port-restricted", 22, 2)
        rv = subprocess.Popen(rv_at.argv(sys.executable, "-m", "covim_p2p.rendezvous_server", "--port", "8555"),
                              stdout=subprocess.PIPE, text=True)
        try:
            assert "listening" in rv.stdout.readline()
            a, b = nvim_factory(netns=alice_at.netns), nvim_factory(netns=bob_at.netns)
            for nvim in (a, b):
                nvim.vars["covim_stun"] = f"{rv_at.ip}:8555"
            a.vars["covim_rendezvous"] = f"{rv_at.ip}:8555"
            a.current.buffer[:] = ["introduced in public"]
            a.command("CoVim host 0 alice")
            b.command(f"CoVim connect {token_of(a)} bob")
            check_direct_and_editing(a, b, alice_at, bob_at, first="introduced in public")
        finally:
            rv.kill()
            log = rv.communicate()[0]
        assert "'alice' at " + alice_at.public_ip in log and "'bob' at " + bob_at.public_ip in log
