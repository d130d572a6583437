"""The lab's NATs behave as their names say, before anything is tested through them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from lab import NatLab, missing  # noqa: E402

PROBE = str(Path(__file__).parent / "udp_probe.py")
pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")


def probe_through(kind: str) -> dict:
    with NatLab() as lab:
        s1, s2 = lab.public("s1", 10), lab.public("s2", 11)
        client = lab.behind_nat("c", kind, 21, 1)
        servers = [subprocess.Popen(s.argv(sys.executable, PROBE, "server", "3478"), stdout=subprocess.PIPE,
                                    text=True) for s in (s1, s2)]
        try:
            for s in servers:
                assert json.loads(s.stdout.readline()) == {"listening": 3478}
            out = subprocess.run(client.argv(sys.executable, PROBE, "client", f"{s1.ip}:3478", f"{s2.ip}:3478"),
                                 capture_output=True, text=True, timeout=20)
            assert out.returncode == 0, out.stderr
            return json.loads(out.stdout)
        finally:
            for s in servers:
                s.kill()
                s.wait()


def test_port_restricted_cone_maps_one_port_for_everyone_and_drops_strangers():
    result = probe_through("port-restricted")
    (m1, m2) = result["mapped"]
    assert m1 == m2 and m1.startswith("203.0.113.21:")  # endpoint-independent mapping
    assert result["unsolicited_arrived"] is False  # another port of a known host: filtered


def test_symmetric_maps_a_new_port_per_destination():
    result = probe_through("symmetric")
    (m1, m2) = result["mapped"]
    assert m1.split(":")[0] == m2.split(":")[0] == "203.0.113.21"
    assert m1 != m2
    assert result["unsolicited_arrived"] is False


def test_the_lab_leaves_no_namespace_behind():
    with NatLab() as lab:
        lab.behind_nat("c", "symmetric", 21, 1)
        names = list(lab.namespaces)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert names and not any(name in listed for name in names)
