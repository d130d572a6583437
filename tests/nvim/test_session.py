"""Real headless Neovims editing one buffer together over loopback UDP."""

from __future__ import annotations

import time

import pytest

from covim_peers import connect, host, messages, shared_lines, status, type_keys, wait_converged, wait_mesh
from nvim_harness import wait_for


def test_three_peers_connect_into_a_full_mesh(nvim_factory):
    a, b, c = nvim_factory(), nvim_factory(), nvim_factory()
    token = host(a, "alice", ["hello", "wörld 🌍"])
    connect(b, token, "bob")
    connect(c, token, "carol")
    wait_mesh([a, b, c])
    assert wait_converged([a, b, c]) == ["hello", "wörld 🌍"]
    st = status(b)
    assert st["state"] == "joined" and st["name"] == "bob" and st["token"] == token
    assert sorted(p["name"] for p in st["peers"]) == ["alice", "carol"]
    assert all(p["path"] == "direct" and p["addr"].startswith("127.0.0.1:") for p in st["peers"])
    assert st["bufnr"] == b.current.buffer.number and st["session"] == status(a)["session"]
    wait_for(lambda: all(p["rtt_ms"] is not None for p in status(a)["peers"]), 5, what="RTT samples")
    assert "CoVim: " + token in messages(a)  # the token line (lua/covim/token.lua)


def test_concurrent_typing_at_the_same_position_converges(nvim_factory):
    peers = [nvim_factory() for _ in range(3)]
    token = host(peers[0], "alice", ["start", "end"])
    connect(peers[1], token, "bob")
    connect(peers[2], token, "carol")
    wait_mesh(peers)
    wait_converged(peers)
    words = ["αβγ-alice", "日本語-bob", "👩‍👩‍👧e\u0301-carol"]
    # Everyone types at the start of line 2 at once, several bursts.
    for round_ in range(3):
        for nvim, word in zip(peers, words):
            nvim.input(f"2GI{word}{round_}<Esc>")
        for nvim in peers:
            nvim.command("echo ''")
    final = wait_converged(peers)
    text = "\n".join(final)
    for word in words:
        for round_ in range(3):
            assert f"{word}{round_}" in text
    assert final[0] == "start" and final[1].endswith("end")


@pytest.mark.parametrize("seed", [7, 11])
def test_random_concurrent_edits_converge_exactly(nvim_factory, seed):
    import random
    rng = random.Random(seed)
    peers = [nvim_factory() for _ in range(3)]
    token = host(peers[0], "alice", [f"line {i} ✓ ü" for i in range(20)])
    connect(peers[1], token, "bob")
    connect(peers[2], token, "carol")
    wait_mesh(peers)
    wait_converged(peers)
    ops = ["dd", "x", "J", "o新しい<Esc>", "A tail<Esc>", "I→<Esc>", "yyp", "u", "cwword<Esc>", "3x", "ix<BS>y<Esc>"]
    for _ in range(150):
        nvim = rng.choice(peers)
        nvim.input(f"{rng.randint(1, 15)}G{rng.randint(0, 5)}|{rng.choice(ops)}")
    for nvim in peers:
        nvim.command("echo ''")
    final = wait_converged(peers, timeout=15)
    assert len(final) >= 1
    for nvim in peers:
        text = messages(nvim)
        assert "could not" not in text and "Error" not in text, text


def test_late_joiner_gets_the_whole_document(nvim_factory):
    a, b = nvim_factory(), nvim_factory()
    token = host(a, "alice", ["one"])
    connect(b, token, "bob")
    wait_mesh([a, b])
    type_keys(b, "Go2 from bob<Esc>")
    wait_converged([a, b])
    type_keys(a, "Go3 from alice ✨<Esc>")
    wait_converged([a, b])
    c = nvim_factory()
    connect(c, token, "carol")
    wait_mesh([a, b, c])
    assert wait_converged([a, b, c]) == ["one", "2 from bob", "3 from alice ✨"]


def test_host_quits_and_the_others_keep_editing(nvim_factory):
    a, b, c = nvim_factory(), nvim_factory(), nvim_factory()
    token = host(a, "alice", ["shared"])
    connect(b, token, "bob")
    connect(c, token, "carol")
    wait_mesh([a, b, c])
    wait_converged([a, b, c])
    leftovers = nvim_factory.stop(a)
    assert leftovers == []
    wait_for(lambda: [p["name"] for p in status(b)["peers"]] == ["carol"], 10, what="bob sees only carol")
    type_keys(b, "Obob after host<Esc>")
    type_keys(c, "Gocarol after host<Esc>")
    assert wait_converged([b, c]) == ["bob after host", "shared", "carol after host"]
    assert "'alice' left the session" in messages(b)


def test_remote_cursors_show_names(nvim_factory):
    a, b = nvim_factory(), nvim_factory()
    token = host(a, "alice", ["first line", "second ünïcode line"])
    connect(b, token, "bob")
    wait_mesh([a, b])
    wait_converged([a, b])
    type_keys(b, "2G10|")  # bob's cursor: row 2, on the 10th column
    ns = a.api.create_namespace("covim_cursors")

    def bob_mark():
        for _id, row, col, details in a.api.buf_get_extmarks(0, ns, 0, -1, {"details": True}):
            if any("bob" in chunk[0] for chunk in details.get("virt_text", [])):
                return row, col, details
        return None

    expected_col = len("second ünïcode line"[:9].encode())
    row, col, details = wait_for(lambda: (m := bob_mark()) and m[:2] == (1, expected_col) and m, 5,
                                 what="bob's cursor at row 2, column 10 on alice's screen")
    assert details["hl_group"].startswith("CoVimCursor")
    assert details["virt_text"][-1][1].startswith("CoVimName")
    assert a.command_output("highlight CoVimCursor1").strip() != ""


def test_joiner_keeps_its_unsaved_work(nvim_factory):
    a, b = nvim_factory(), nvim_factory()
    token = host(a, "alice", ["the session text"])
    b.current.buffer[:] = ["my unsaved draft"]
    original = b.current.buffer.number
    connect(b, token, "bob")
    wait_mesh([a, b])
    wait_converged([a, b])
    assert status(b)["bufnr"] != original
    assert b.api.buf_get_lines(original, 0, -1, True) == ["my unsaved draft"]
    assert b.api.get_option_value("modified", {"buf": original}) is True


def test_disconnect_keeps_the_buffer_and_stops_syncing(nvim_factory):
    a, b = nvim_factory(), nvim_factory()
    token = host(a, "alice", ["x"])
    connect(b, token, "bob")
    wait_mesh([a, b])
    wait_converged([a, b])
    bufnr = status(b)["bufnr"]
    b.command("CoVim disconnect")
    assert status(b)["state"] == "idle"
    wait_for(lambda: status(a)["peers"] == [], 5, what="alice notices bob left")
    type_keys(a, "Alice<Esc>")
    time.sleep(0.3)
    assert b.api.buf_get_lines(bufnr, 0, -1, True) == ["x"]
    assert a.current.buffer[:] == ["xlice"]


def test_big_paste_reaches_the_other_peer(nvim_factory):
    a, b = nvim_factory(), nvim_factory()
    token = host(a, "alice", [""])
    connect(b, token, "bob")
    wait_mesh([a, b])
    lines = [f"{i:06d} Ünïcödé line with some text to make it longer ✓" for i in range(40_000)]
    a.current.buffer[:] = lines  # ~2.3 MB in one change
    wait_for(lambda: b.api.buf_line_count(status(b)["bufnr"]) == len(lines), 30, what="the paste arrives")
    assert wait_converged([a, b], timeout=30) == lines


def test_start_and_add_admit_a_waiting_peer(nvim_factory):
    """Enhanced CoVim's flow: the peer makes a token, the host adds it."""
    a, b = nvim_factory(), nvim_factory()
    host(a, "alice", ["shared by invitation"])
    from covim_peers import prepare
    prepare(b)
    b.command("CoVim start 0 bob")
    peer_token = b.vars["covim_token"]
    assert peer_token.startswith("covim1p-") and status(b)["state"] == "waiting"
    a.command(f"CoVim add {peer_token}")
    wait_mesh([a, b])
    assert wait_converged([a, b]) == ["shared by invitation"]
    wait_for(lambda: "accepted the invitation" in messages(a), 5, what="alice hears the peer accepted")
    type_keys(b, "A, edited by bob<Esc>")
    assert wait_converged([a, b]) == ["shared by invitation, edited by bob"]
    a.command("CoVim add covim1-notapeertoken")
    wait_for(lambda: "not a peer token" in messages(a), 3, what="a clear message for a wrong token")


def _both_show(nvims, lines) -> None:
    """Wait for every peer to show ``lines`` (identical is not enough: before an undo they were too)."""
    wait_for(lambda: all(shared_lines(v) == lines for v in nvims), 5, what=f"every peer showing {lines}")


def test_undo_reverts_only_my_own_changes(nvim_factory):
    a, b = nvim_factory(), nvim_factory()
    token = host(a, "alice", ["base"])
    connect(b, token, "bob")
    wait_mesh([a, b])
    wait_converged([a, b])
    type_keys(a, "A alice<Esc>")
    wait_converged([a, b])
    time.sleep(0.6)  # a new undo step (keystrokes within 0.5 s undo together)
    type_keys(b, "I bob <Esc>")
    _both_show([a, b], [" bob base alice"])
    type_keys(a, "u")  # alice's undo must not touch bob's text
    _both_show([a, b], [" bob base"])
    type_keys(a, "<C-r>")
    _both_show([a, b], [" bob base alice"])
    type_keys(b, "u")
    _both_show([a, b], ["base alice"])
    type_keys(b, "u")
    wait_for(lambda: "nothing of yours to undo" in messages(b), 3, what="the nothing-to-undo message")


def test_a_burst_of_hundreds_of_edits_in_one_tick_arrives_in_order(nvim_factory):
    """One Lua loop makes 600 changes before the plugin runs once: they are taken in bounded
    batches (several document transactions), in order, while bob types concurrently."""
    a, b = nvim_factory(), nvim_factory()
    token = host(a, "alice", ["top"])
    connect(b, token, "bob")
    wait_mesh([a, b])
    bufnr = status(a)["bufnr"]
    a.exec_lua("""
        local buf = ...
        for i = 1, 600 do
          vim.api.nvim_buf_set_lines(buf, i, i, true, {string.format("burst %03d", i)})
          if i % 3 == 0 then vim.api.nvim_buf_set_text(buf, i - 1, 0, i - 1, 1, {"B"}) end
        end
    """, bufnr)
    b.exec_lua("vim.api.nvim_buf_set_lines(..., 0, 0, true, {'bob was here'})", status(b)["bufnr"])
    final = wait_converged([a, b], timeout=30)
    assert final[0] == "bob was here" and final[1] == "top"
    expected = [f"burst {i:03d}" for i in range(1, 601)]
    for i in range(3, 601, 3):
        expected[i - 2] = "B" + expected[i - 2][1:]
    assert final[2:] == expected


def test_offline_edits_merge_when_reconnecting_with_the_same_token(nvim_factory):
    """:CoVim disconnect, edit, :CoVim connect <same token>: the same buffer and document, both sides merged.
    (It used to open a new '~1' buffer without the offline edits.)"""
    a, b = nvim_factory(), nvim_factory()
    token = host(a, "alice", ["one", "two", "three", "four"])
    connect(b, token, "bob")
    wait_mesh([a, b])
    wait_converged([a, b])
    bufnr = status(b)["bufnr"]
    b.command("CoVim disconnect")
    wait_for(lambda: status(a)["peers"] == [], 5, what="alice sees bob leave")
    type_keys(b, "ggAb<Esc>")
    type_keys(b, "GAB<Esc>")
    type_keys(a, "2GAa<Esc>")
    type_keys(a, "3Gdd")
    connect(b, token, "bob")
    wait_mesh([a, b])
    assert wait_converged([a, b]) == ["oneb", "twoa", "fourB"]
    assert status(b)["bufnr"] == bufnr
    assert not any(name.endswith("~1") for name in (buf.name for buf in b.buffers))
    type_keys(b, "ggIX<Esc>")
    assert wait_converged([a, b]) == ["Xoneb", "twoa", "fourB"]
    assert status(a)["resyncs"] == 0 and status(b)["resyncs"] == 0


def test_a_crashed_peer_rejoins_at_once_under_its_name(nvim_factory):
    """The stale 'dave' is replaced once the new one proves it holds the token (it used to be refused for 20 s)."""
    import os
    import signal
    from nvim_harness import descendant_pids
    a, b = nvim_factory(), nvim_factory()
    token = host(a, "alice", ["shared"])
    connect(b, token, "dave")
    wait_mesh([a, b])
    pid = nvim_factory.pid(b)
    for p in [*descendant_pids(pid), pid]:
        os.kill(p, signal.SIGKILL)
    nvim_factory.running.remove(b)
    c = nvim_factory()
    t0 = time.monotonic()
    connect(c, token, "dave")
    wait_mesh([a, c], timeout=5)
    took = time.monotonic() - t0
    assert "already taken" not in messages(c)
    assert took < 5, took
    type_keys(a, "AX<Esc>")
    assert wait_converged([a, c]) == ["sharedX"]
    assert [p["name"] for p in status(a)["peers"]] == ["dave"]


def test_reconnecting_at_once_does_not_double_the_edits(nvim_factory):
    """Nothing typed between :CoVim disconnect and :CoVim connect: the old buffer attachment is
    still there, and must not send every change a second time."""
    a, b = nvim_factory(), nvim_factory()
    token = host(a, "alice", ["one"])
    connect(b, token, "bob")
    wait_mesh([a, b])
    wait_converged([a, b])
    b.command("CoVim disconnect")
    wait_for(lambda: status(a)["peers"] == [], 5, what="alice sees bob leave")
    connect(b, token, "bob")
    wait_mesh([a, b])
    type_keys(b, "AX<Esc>")
    assert wait_converged([a, b]) == ["oneX"]
    time.sleep(0.3)
    assert shared_lines(a) == shared_lines(b) == ["oneX"]

