"""The shared buffer's life: closing, unloading, wiping, renaming and filtering it never damages the document."""

from __future__ import annotations

import time

import pytest

from covim_peers import connect, host, messages, shared_lines, status, type_keys, wait_converged, wait_mesh
from nvim_harness import wait_for

TEXT = ["line one", "line two", "line three"]


def _pair(nvim_factory, lines=TEXT):
    a, b = nvim_factory(), nvim_factory()
    token = host(a, "alice", list(lines))
    connect(b, token, "bob")
    wait_mesh([a, b])
    wait_converged([a, b])
    return a, b, token


@pytest.mark.parametrize("how", ["bdelete", "bwipeout", "bdelete!", "lua"])
def test_closing_the_hosts_buffer_ends_its_session_and_damages_nothing(nvim_factory, how):
    """It used to stay 'joined', and bob's next keystroke left every copy holding only that keystroke."""
    a, b, _ = _pair(nvim_factory)
    shared = status(a)["bufnr"]
    a.api.set_option_value("modified", False, {"buf": shared})  # as if just written
    if how == "lua":  # what buffer-removing plugins do: show another buffer, then delete
        a.exec_lua("local b = ...; vim.cmd('enew'); vim.api.nvim_buf_delete(b, {})", shared)
    else:
        a.command("enew")
        a.command(f"{how} {shared}")
    time.sleep(0.3)
    type_keys(b, "ggIX<Esc>")
    time.sleep(0.5)
    assert shared_lines(b) == ["Xline one", "line two", "line three"]
    wait_for(lambda: status(a)["state"] == "idle", 5, what="alice's session to end with her buffer")
    assert "closed" in messages(a)
    wait_for(lambda: status(b)["peers"] == [], 5, what="bob sees alice leave")
    assert "Traceback" not in messages(a)


def test_closing_a_guests_buffer_leaves_the_others_intact(nvim_factory):
    a, b, _ = _pair(nvim_factory)
    shared = status(b)["bufnr"]
    b.command("enew")
    b.command(f"bwipeout! {shared}")
    wait_for(lambda: status(b)["state"] == "idle", 5, what="bob's session to end with his buffer")
    type_keys(a, "ggIY<Esc>")
    time.sleep(0.3)
    assert a.current.buffer[:] == ["Yline one", "line two", "line three"]


def _host_file(nvim_factory, tmp_path, lines=TEXT):
    path = tmp_path / "shared.txt"
    path.write_text("\n".join(lines) + "\n")
    a, b = nvim_factory(), nvim_factory()
    a.command(f"edit {path}")
    token = host(a, "alice")
    connect(b, token, "bob")
    wait_mesh([a, b])
    wait_converged([a, b])
    return a, b, path


def test_editing_another_file_in_that_window_keeps_the_session(nvim_factory, tmp_path):
    """'hidden' (Neovim's default) keeps the shared buffer loaded: it goes on syncing out of sight."""
    a, b, _ = _host_file(nvim_factory, tmp_path)
    other = tmp_path / "other.txt"
    other.write_text("something else\n")
    a.command(f"edit {other}")
    type_keys(b, "GAend<Esc>")
    wait_for(lambda: shared_lines(a)[-1] == "line threeend", 5, what="bob's edit in alice's hidden buffer")
    assert a.current.buffer[:] == ["something else"]
    assert status(a)["state"] == "joined"
    a.command("buffer #")
    type_keys(a, "ggIA<Esc>")
    assert wait_converged([a, b]) == ["Aline one", "line two", "line threeend"]


def test_editing_another_file_with_nohidden_leaves_with_one_line(nvim_factory, tmp_path):
    a, b, _ = _host_file(nvim_factory, tmp_path)
    a.command("set nohidden")
    other = tmp_path / "other.txt"
    other.write_text("something else\n")
    a.command("write")
    a.command(f"edit {other}")
    wait_for(lambda: status(a)["state"] == "idle", 5, what="alice leaves with her unloaded buffer")
    type_keys(b, "ggIX<Esc>")
    time.sleep(0.3)
    assert shared_lines(b) == ["Xline one", "line two", "line three"]


def test_saveas_filter_and_fileformat_keep_syncing(nvim_factory, tmp_path):
    a, b, path = _host_file(nvim_factory, tmp_path, ["c", "a", "b"])
    a.command(f"saveas {tmp_path / 'renamed.txt'}")
    assert (tmp_path / "renamed.txt").read_text() == "c\na\nb\n"
    type_keys(b, "GAz<Esc>")
    wait_for(lambda: shared_lines(a) == ["c", "a", "bz"], 5, what="bob's edit after :saveas")
    a.command("%!sort")
    assert wait_converged([a, b]) == ["a", "bz", "c"]
    a.command("set ff=dos")
    type_keys(b, "ggAy<Esc>")
    type_keys(a, "GAx<Esc>")
    assert wait_converged([a, b]) == ["ay", "bz", "cx"]
    a.command("write")
    assert (tmp_path / "renamed.txt").read_bytes() == b"ay\r\nbz\r\ncx\r\n"
    assert status(a)["resyncs"] == 0 and status(b)["resyncs"] == 0
    assert "Traceback" not in messages(a) + messages(b)


def test_checktime_after_an_external_change_shares_the_new_text(nvim_factory, tmp_path):
    a, b, path = _host_file(nvim_factory, tmp_path)
    time.sleep(1.1)  # a new mtime second, so Neovim sees the change
    path.write_text("line one\nline 2 changed outside\nline three\n")
    a.command("checktime")
    assert wait_converged([a, b]) == ["line one", "line 2 changed outside", "line three"]
    type_keys(b, "ggIX<Esc>")
    assert wait_converged([a, b]) == ["Xline one", "line 2 changed outside", "line three"]
    assert status(a)["state"] == "joined"
