"""The test-Neovim harness itself: isolation, python host, clean exit."""

import os

from nvim_harness import REPO, descendant_pids, is_alive, wait_for


def test_two_isolated_nvims(nvim_factory, nvim_env):
    a, b = nvim_factory(), nvim_factory()
    assert nvim_factory.pid(a) != nvim_factory.pid(b)

    a.current.buffer[:] = ["hello from a", "ünïcödé 👍"]
    assert a.current.buffer[:] == ["hello from a", "ünïcödé 👍"]
    assert b.current.buffer[:] == [""]

    for nvim in (a, b):
        assert nvim.eval("&runtimepath").split(",")[0] == str(REPO)
        assert nvim.eval("$NVIM_RPLUGIN_MANIFEST") == nvim_env.env["NVIM_RPLUGIN_MANIFEST"]
        assert nvim.eval("stdpath('config')") == nvim_env.env["XDG_CONFIG_HOME"] + "/nvim"
        assert nvim.eval("&swapfile") == 0 and nvim.eval("&shadafile") == "NONE"
    assert os.path.exists(nvim_env.env["NVIM_RPLUGIN_MANIFEST"])


def test_python_host_starts_and_exits_with_nvim(nvim_factory):
    nvim = nvim_factory()
    pid = nvim_factory.pid(nvim)
    assert nvim.eval("has('python3')") == 1
    assert nvim.command_output("python3 print(1 + 1)").strip() == "2"
    host = wait_for(lambda: descendant_pids(pid), what="the python3 host process")

    assert nvim_factory.stop(nvim) == []
    assert not is_alive(pid)
    assert not any(is_alive(p) for p in host)


def test_wait_for_reports_what_timed_out():
    try:
        wait_for(lambda: 0, timeout=0.05, what="convergence")
    except AssertionError as exc:
        assert "convergence" in str(exc) and "returned 0" in str(exc)
    else:
        raise AssertionError("wait_for did not time out")


def test_stop_catches_and_kills_leftover_processes(nvim_factory):
    nvim = nvim_factory()
    nvim.eval("jobstart(['sleep', '60'], {'detach': v:true})")  # outlives :qa!
    sleeper = wait_for(lambda: descendant_pids(nvim_factory.pid(nvim)), what="the sleep job")

    assert nvim_factory.stop(nvim, timeout=0.3) == sleeper
    wait_for(lambda: not is_alive(sleeper[0]), timeout=2, what="SIGKILL of the sleep job")
