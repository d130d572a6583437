"""pystun3 against coturn through the lab's real NATs, as the plugin runs it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "nvim"))
from covim_peers import messages, status  # noqa: E402
from lab import NatLab, missing  # noqa: E402
from nvim_harness import wait_for  # noqa: E402

from covim_p2p.proto import natclass  # noqa: E402

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")

CLASSIFY = ("import sys, json; from covim_p2p.io.natclass import classify; "
            "r = classify(sys.argv[1], (sys.argv[2], 3478)); print(json.dumps([r.kind, r.external, r.text]))")


@pytest.fixture(scope="module")
def lab():
    with NatLab() as lab:
        lab.server = lab.stun_server(40)
        yield lab


@pytest.mark.parametrize("where, expected", [("open", natclass.OPEN), ("port-restricted", natclass.PORT_RESTRICTED),
                                             ("symmetric", natclass.SYMMETRIC)])
def test_each_nat_is_classified_as_what_it_is(lab, where, expected):
    import json
    import subprocess
    octet, index = {"open": (50, 0), "port-restricted": (51, 1), "symmetric": (52, 2)}[where]
    host = lab.public(f"pub{octet}", octet) if where == "open" else lab.behind_nat(f"n{octet}", where, octet, index)
    out = subprocess.run(host.argv(sys.executable, "-c", CLASSIFY, host.ip, lab.server.ip), capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    kind, external, text = json.loads(out.stdout)
    assert kind == expected
    assert text.startswith("NAT check: ")
    if where != "port-restricted":  # pystun3 gives no address for that type
        assert external.startswith(host.public_ip + ":")


def test_the_plugin_reports_its_nat_in_status_and_messages(lab, nvim_factory):
    alice_at = lab.public("alice", 10)
    carol_at = lab.behind_nat("carol", "symmetric", 22, 5)
    a, c = nvim_factory(netns=alice_at.netns), nvim_factory(netns=carol_at.netns)
    for nvim, at in ((a, alice_at), (c, carol_at)):
        nvim.vars["covim_bind"] = at.ip
        nvim.vars["covim_stun"] = f"{lab.server.ip}:3478"
    a.vars["covim_host_addr"] = alice_at.ip
    a.command("CoVim host 0 alice")
    wait_for(lambda: a.vars.get("covim_token", ""), 3, what="alice's token (STUN answers first, at most 1 s)")
    c.command(f"CoVim connect {a.vars['covim_token']} carol")
    wait_for(lambda: status(a)["nat"] and status(c)["nat"], 20, what="both NAT checks")
    assert status(a)["nat"] == natclass.OPEN
    assert status(c)["nat"] == natclass.SYMMETRIC
    assert status(c)["public_addr"].startswith(carol_at.public_ip + ":")
    assert "NAT check: a symmetric NAT" in messages(c)
    assert "Traceback" not in messages(c)
