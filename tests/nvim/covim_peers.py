"""Helpers for tests with several real Neovims sharing a session over loopback UDP."""

from __future__ import annotations

from nvim_harness import wait_for


def prepare(nvim) -> None:
    # Tokens name loopback only: tests never send to any other address.
    nvim.vars["covim_host_addr"] = "127.0.0.1"
    nvim.vars["covim_bind"] = "127.0.0.1"


def host(nvim, name: str = "alice", lines: list[str] | None = None) -> str:
    prepare(nvim)
    if lines is not None:
        nvim.current.buffer[:] = lines
    nvim.command(f"CoVim host 0 {name}")
    # with g:covim_stun set, the token waits (at most ~1 s) for the server-reflexive candidates
    wait_for(lambda: nvim.vars.get("covim_token", "").startswith("covim1-"), 3, what="the host's token")
    token = nvim.vars["covim_token"]
    assert token.startswith("covim1-")
    return token


def connect(nvim, token: str, name: str) -> None:
    prepare(nvim)
    nvim.command(f"CoVim connect {token} {name}")


def status(nvim) -> dict:
    return nvim.call("CoVimStatus")


def shared_lines(nvim) -> list[str]:
    bufnr = status(nvim)["bufnr"]
    return nvim.api.buf_get_lines(bufnr, 0, -1, True)


def wait_mesh(nvims, timeout: float = 10) -> None:
    n = len(nvims)
    wait_for(lambda: all(len(status(v)["peers"]) == n - 1 and status(v)["synced"] for v in nvims), timeout,
             what=f"a full mesh of {n} synced peers")


def wait_converged(nvims, timeout: float = 10) -> list[str]:
    def same():
        texts = [shared_lines(v) for v in nvims]
        return all(t == texts[0] for t in texts)
    wait_for(same, timeout, what="identical shared buffers")
    return shared_lines(nvims[0])


def type_keys(nvim, keys: str) -> None:
    nvim.input(keys)
    nvim.command("echo ''")  # nvim_input is asynchronous: a sync request is the barrier


def messages(nvim) -> str:
    return nvim.command_output("messages")
