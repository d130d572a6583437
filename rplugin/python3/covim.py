"""Neovim remote-plugin entry point: every command and notification goes to covim_p2p.nvim."""

import pynvim

from covim_p2p.nvim.plugin import CoVimPlugin


@pynvim.plugin
class CoVim:
    def __init__(self, nvim):
        self.impl = CoVimPlugin(nvim)

    @pynvim.command("CoVim", nargs="*", complete="customlist,CoVimComplete", sync=True)
    def covim(self, args):
        self.impl.command(args)

    @pynvim.function("CoVimStatus", sync=True)
    def status(self, args):
        return self.impl.status()

    @pynvim.function("CoVimComplete", sync=True)
    def complete(self, args):
        return self.impl.complete(*args)

    # msgpack already gives str; pynvim's default walk over every line of a
    # burst only re-checks that (10% of the host's time replaying a trace).
    @pynvim.decode(False)
    @pynvim.rpc_export("covim_lines", sync=False)
    def lines(self, buf, events):
        self.impl.on_lines(buf, events)

    @pynvim.rpc_export("covim_cursor", sync=False)
    def cursor(self, buf, row, col):
        self.impl.on_cursor(buf, row, col)

    @pynvim.rpc_export("covim_undo", sync=False)
    def undo(self, buf, redo, count=1):
        self.impl.on_undo(buf, redo, count)

    @pynvim.decode(False)
    @pynvim.rpc_export("covim_reload", sync=False)
    def reload(self, buf, tick, lines, resync=False):
        self.impl.on_reload(buf, tick, lines, resync)

    @pynvim.rpc_export("covim_applied", sync=False)
    def applied(self, buf, seq, tick):
        self.impl.on_applied(buf, seq, tick)

    @pynvim.rpc_export("covim_refused", sync=False)
    def refused(self, buf, seq, last_tick):
        self.impl.on_refused(buf, seq, last_tick)

    @pynvim.rpc_export("covim_unload", sync=False)
    def unload(self, buf):
        self.impl.on_unload(buf)

    @pynvim.rpc_export("covim_shutdown", sync=False)
    def shutdown(self):
        self.impl.shutdown()
