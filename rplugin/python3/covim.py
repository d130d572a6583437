"""Neovim remote-plugin entry point: every call and notification goes to covim_p2p.nvim.

Before importing covim_p2p this puts covim's private venv (made by
:CoVimInstall, lua/covim/install.lua) and the plugin's own directory first on
sys.path, then checks the exact pins of pyproject.toml.  Whatever is wrong
becomes one line that CoVimRun() returns to the Lua :CoVim, never a
traceback: this module must import whatever is installed.
"""

import os
import re
import sys
from pathlib import Path

import pynvim

ROOT = Path(__file__).resolve().parents[2]  # the plugin's directory: lua/, rplugin/, covim_p2p/
FIX = "run :CoVimInstall, then restart Neovim"


def _venv() -> Path:
    """stdpath('data')/covim/venv, worked out as Neovim does (the host inherits its environment)."""
    if os.environ.get("COVIM_VENV"):
        return Path(os.environ["COVIM_VENV"])
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data) / os.environ.get("NVIM_APPNAME", "nvim") / "covim" / "venv"


def _pins() -> list:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    deps = re.search(r"\ndependencies\s*=\s*\[(.*?)\]", text, re.S)
    return re.findall(r'"([A-Za-z0-9_.-]+)==([^"]+)"', deps.group(1) if deps else "")


def _prepare():
    """None when covim_p2p can be imported, else one line saying what to do."""
    venv = _venv()
    libs = sorted(venv.glob("lib/python3.*/site-packages"))
    if libs:
        want = "python%d.%d" % sys.version_info[:2]
        if libs[0].parent.name != want:
            return (f"covim's venv ({venv}) is for {libs[0].parent.name} but the python3 host runs "
                    f"{want.replace('python', 'Python ')}: {FIX}")
        sys.path.insert(0, str(libs[0]))
    sys.path.insert(0, str(ROOT))
    from importlib import metadata
    missing = []
    for name, version in _pins():
        if name == "pynvim":
            continue  # the host's own pynvim is the one running; :checkhealth covim reports it
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
            continue
        if have != version:
            return f"covim needs {name} {version} but {have} is installed: {FIX}"
    if missing:
        return f"covim's Python packages are not installed ({', '.join(missing)} missing): {FIX}"
    return None


try:
    SETUP_ERROR = _prepare()
    if SETUP_ERROR is None:
        from covim_p2p.nvim.plugin import CoVimPlugin
except BaseException as exc:  # noqa: BLE001 - pycrdt's PanicException is a BaseException
    SETUP_ERROR = f"covim's Python half does not import ({type(exc).__name__}: {exc}): {FIX}"


@pynvim.plugin
class CoVim:
    def __init__(self, nvim):
        self.impl = None if SETUP_ERROR else CoVimPlugin(nvim)

    @pynvim.function("CoVimRun", sync=True)
    def run(self, args):
        """:CoVim's words; returns '' or the one line of a broken setup."""
        if self.impl is None:
            return SETUP_ERROR
        self.impl.command(list(args[0]) if args and isinstance(args[0], list) else list(args))
        return ""

    @pynvim.function("CoVimStatus", sync=True)
    def status(self, args):
        if self.impl is None:
            return {"state": "unavailable", "role": "", "name": "", "token": "", "session": "", "bufnr": -1,
                    "peers": [], "error": SETUP_ERROR}
        return self.impl.status()

    # msgpack already gives str; pynvim's default walk over every line of a
    # burst only re-checks that (10% of the host's time replaying a trace).
    @pynvim.decode(False)
    @pynvim.rpc_export("covim_lines", sync=False)
    def lines(self, buf, events):
        if self.impl is not None:
            self.impl.on_lines(buf, events)

    @pynvim.rpc_export("covim_cursor", sync=False)
    def cursor(self, buf, row, col):
        if self.impl is not None:
            self.impl.on_cursor(buf, row, col)

    @pynvim.rpc_export("covim_undo", sync=False)
    def undo(self, buf, redo, count=1):
        if self.impl is not None:
            self.impl.on_undo(buf, redo, count)

    @pynvim.decode(False)
    @pynvim.rpc_export("covim_reload", sync=False)
    def reload(self, buf, tick, lines, resync=False):
        if self.impl is not None:
            self.impl.on_reload(buf, tick, lines, resync)

    @pynvim.rpc_export("covim_applied", sync=False)
    def applied(self, buf, seq, tick):
        if self.impl is not None:
            self.impl.on_applied(buf, seq, tick)

    @pynvim.rpc_export("covim_refused", sync=False)
    def refused(self, buf, seq, last_tick):
        if self.impl is not None:
            self.impl.on_refused(buf, seq, last_tick)

    @pynvim.rpc_export("covim_unload", sync=False)
    def unload(self, buf):
        if self.impl is not None:
            self.impl.on_unload(buf)

    @pynvim.rpc_export("covim_shutdown", sync=False)
    def shutdown(self):
        if self.impl is not None:
            self.impl.shutdown()
