"""Reloading the shared buffer from disk (:e!, :checktime) is a minimal local edit: what the file
changed reaches everyone, text it did not change is never touched, and u takes it back."""

from __future__ import annotations

from covim_peers import connect, messages, prepare, shared_lines, status, type_keys, wait_converged, wait_mesh
from nvim_harness import wait_for


def host_file(nvim, path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n")
    prepare(nvim)
    nvim.command(f"edit {path}")
    nvim.command("CoVim host 0 alice")
    return nvim.vars["covim_token"]


def test_e_bang_replaces_only_what_differs_from_the_file_and_u_restores_it(nvim_factory, tmp_path):
    a, b = nvim_factory(), nvim_factory()
    lines = [f"line {i}" for i in range(20)]
    token = host_file(a, tmp_path / "shared.txt", lines)
    connect(b, token, "bob")
    wait_mesh([a, b])
    wait_converged([a, b])
    type_keys(b, "5GAbob was here<Esc>Go16 bob's new line<Esc>")
    wait_converged([a, b])
    a.command("edit!")  # back to the file: bob's two changes go, for everyone
    assert wait_converged([a, b]) == lines
    assert "the reload replaced 2 shared line(s) for everyone; u undoes it" in messages(a)
    type_keys(a, "u")
    restored = list(lines)
    restored[4] += "bob was here"
    restored.append("16 bob's new line")
    wait_for(lambda: all(shared_lines(v) == restored for v in (a, b)), 10, what="u to restore bob's lines")
    assert [status(v)["resyncs"] for v in (a, b)] == [0, 0]


def test_checktime_after_an_external_change_keeps_what_others_type_meanwhile(nvim_factory, tmp_path):
    a, b = nvim_factory(), nvim_factory()
    path = tmp_path / "shared.txt"
    lines = [f"line {i}" for i in range(20)]
    token = host_file(a, path, lines)
    a.command("set autoread")
    connect(b, token, "bob")
    wait_mesh([a, b])
    wait_converged([a, b])
    changed = list(lines)
    changed[15] = "line 15 changed on disk"
    path.write_text("\n".join(changed) + "\n")
    a.command("sleep 10m")  # a new mtime second is not needed: size differs
    b.input("1GIbob: <Esc>")  # bob types while alice's Neovim notices the file
    a.command("checktime")
    b.command("echo ''")
    final = wait_converged([a, b])
    assert final[15] == "line 15 changed on disk"
    assert final[0] == "bob: line 0"
    assert [line for i, line in enumerate(final) if i not in (0, 15)] == [
        line for i, line in enumerate(lines) if i not in (0, 15)]
    assert [status(v)["resyncs"] for v in (a, b)] == [0, 0]


def test_set_ff_and_sort_and_saveas_keep_the_session_exact(nvim_factory, tmp_path):
    a, b = nvim_factory(), nvim_factory()
    token = host_file(a, tmp_path / "shared.txt", ["c", "a", "b"])
    connect(b, token, "bob")
    wait_mesh([a, b])
    wait_converged([a, b])
    a.command("set ff=dos")  # bumps changedtick with no change: no refusal storm, no resync
    type_keys(b, "GAx<Esc>")
    assert wait_converged([a, b]) == ["c", "a", "bx"]
    a.command("%!sort")
    assert wait_converged([a, b]) == ["a", "bx", "c"]
    a.command(f"saveas {tmp_path / 'copy.txt'}")
    type_keys(b, "ggIy<Esc>")
    assert wait_converged([a, b]) == ["ya", "bx", "c"]
    assert status(a)["state"] == "joined"
    wait_for(lambda: (tmp_path / "copy.txt").exists(), 2, what="the saved copy")
    assert [status(v)["resyncs"] for v in (a, b)] == [0, 0]


def test_e_bang_in_a_guest_buffer_with_no_file_behind_it_wipes_nothing(nvim_factory, tmp_path):
    a, b = nvim_factory(), nvim_factory()
    lines = [f"line {i}" for i in range(5)]
    token = host_file(a, tmp_path / "shared.txt", lines)
    b.command(f"cd {tmp_path / '..'}")
    connect(b, token, "bob")
    wait_mesh([a, b])
    wait_converged([a, b])
    b.command("silent! edit!")  # the guest's buffer is named after a file that is not on its disk
    wait_for(lambda: "the shared text is back" in messages(b), 5, what="the restore line")
    assert wait_converged([a, b]) == lines
    type_keys(b, "GAx<Esc>")
    assert wait_converged([a, b])[-1] == "line 4x"
