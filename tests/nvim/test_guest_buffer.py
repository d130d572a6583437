"""A guest gets a real buffer: the host's file name and filetype (carried in the
document's meta map), plain :w saves a local copy in the guest's directory and
never overwrites a different file there, :w {file} works."""

from __future__ import annotations

import time

import pynvim
import pytest

from covim_peers import connect, host, prepare, wait_converged, wait_mesh
from nvim_harness import wait_for


def test_guest_buffer_has_the_hosts_name_and_filetype_and_saves(nvim_factory, tmp_path):
    (tmp_path / "host").mkdir()
    (tmp_path / "bob").mkdir()
    (tmp_path / "carol").mkdir()
    (tmp_path / "carol" / "main.py").write_text("carol's own file\n")
    source = tmp_path / "host" / "main.py"
    source.write_text("def f():\n    return 1\n")
    a, b, c = nvim_factory(), nvim_factory(), nvim_factory()
    a.command(f"edit {source}")
    assert a.api.get_option_value("filetype", {"buf": 0}) == "python"
    token = host(a, "alice")
    for guest, name in ((b, "bob"), (c, "carol")):
        guest.command(f"cd {tmp_path / name}")
        connect(guest, token, name)
    wait_mesh([a, b, c])
    wait_converged([a, b, c])
    for guest, name in ((b, "bob"), (c, "carol")):
        path = str(tmp_path / name / "main.py")
        wait_for(lambda: guest.current.buffer.name == path, 5, what=f"{name}'s buffer named {path}")
        assert guest.api.get_option_value("filetype", {"buf": 0}) == "python"
        assert guest.api.get_option_value("buftype", {"buf": 0}) == ""
        assert guest.api.get_option_value("syntax", {"buf": 0}) == "python" or guest.eval("exists('b:current_syntax')")
        assert not [x for x in guest.api.list_bufs() if guest.api.buf_get_name(x).startswith("covim://")]

    b.command("write")  # plain :w: a local copy under the host's file name
    assert (tmp_path / "bob" / "main.py").read_text() == "def f():\n    return 1\n"
    b.command(f"write {tmp_path / 'bob' / 'copy.py'}")
    assert (tmp_path / "bob" / "copy.py").read_text() == "def f():\n    return 1\n"

    with pytest.raises(pynvim.NvimError, match="E13"):  # carol has a main.py of her own
        c.command("write")
    assert (tmp_path / "carol" / "main.py").read_text() == "carol's own file\n"

    # The session goes on in the renamed buffers.
    b.current.buffer.append("# from bob")
    assert wait_converged([a, b, c])[-1] == "# from bob"

    # A rejoin reuses its buffer and keeps its name (not main~1.py).
    b.command("CoVim disconnect")
    connect(b, token, "bob")
    wait_mesh([a, b, c])
    wait_converged([a, b, c])
    time.sleep(0.3)  # the rename, if any, follows the document
    assert b.current.buffer.name == str(tmp_path / "bob" / "main.py")
    assert not [x for x in b.api.list_bufs() if "main~" in b.api.buf_get_name(x)]


def test_safe_names(nvim_factory):
    nvim = nvim_factory()
    check = "return require('covim.guest').safe_name(...)"
    for bad in ["", ".", "..", "../x", "a/b", "a\\b", "x\ny", "-rf", "x" * 256]:
        assert nvim.exec_lua(check, bad) is None, bad
    assert nvim.exec_lua(check, "main.py") == "main.py"
    assert nvim.exec_lua(check, "Makefile") == "Makefile"


def test_an_unnamed_host_buffer_keeps_the_covim_buffer(nvim_factory):
    a, b = nvim_factory(), nvim_factory()
    token = host(a, "alice", ["text"])
    connect(b, token, "bob")
    wait_mesh([a, b])
    wait_converged([a, b])
    assert b.current.buffer.name.startswith("covim://")
    prepare(b)
