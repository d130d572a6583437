"""Read-only guests with real Neovims: :CoVim token readonly, a nomodifiable buffer, writers unaffected."""

from __future__ import annotations

from covim_peers import connect, host, messages, shared_lines, status, type_keys, wait_converged, wait_mesh
from nvim_harness import wait_for


def test_a_read_only_guest_follows_along_in_a_nomodifiable_buffer(nvim_factory):
    a, b, c = nvim_factory(), nvim_factory(), nvim_factory()
    token = host(a, "alice", ["shared text"])
    a.command("CoVim token readonly")
    read_only = a.vars["covim_token"]
    assert read_only.startswith("covim1r-") and read_only != token
    connect(b, read_only, "guest")
    connect(c, token, "carol")
    wait_mesh([a, b, c], timeout=15)
    buf = status(b)["bufnr"]
    assert b.api.get_option_value("modifiable", {"buf": buf}) is False
    wait_for(lambda: "read-only session" in messages(b), 5, what="the one-line explanation")
    type_keys(b, "Aguest was here<Esc>")
    type_keys(c, "A, and carol's<Esc>")
    assert wait_converged([a, b, c]) == ["shared text, and carol's"]
    assert shared_lines(b) == ["shared text, and carol's"]
