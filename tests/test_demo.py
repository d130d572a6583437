"""The README's first command, the live demo, in its self-checking mode: three Neovims in tmux,
alice hosts, bob and carol connect, a line typed in bob's pane and one in carol's reach every pane."""

from __future__ import annotations

import os
import subprocess

from nvim_harness import REPO


def test_the_demo_runs_and_checks_itself():
    done = subprocess.run(["bash", str(REPO / "scripts/demo.sh")], env={**os.environ, "DEMO_NO_ATTACH": "1"},
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "demo: ok" in out
    assert "a line typed in bob's pane reached alice's and carol's panes" in out
