"""The shared buffer a guest gets: a fresh buffer, then the host's file name and filetype.

The host puts its file's base name and filetype in the document (a Y.Map
``meta`` beside the text, proto/document.py) before anyone joins; a guest's
buffer takes them (lua/covim/guest.lua) once the document arrived, so syntax,
ftplugins and LSP work and ``:w`` saves a local copy under that name.
"""

from __future__ import annotations

import os

from ..proto.token import SessionToken


def new_shared_buffer(nvim, token: SessionToken, name: str):
    """A fresh buffer for the session: whatever the user had stays untouched."""
    buf = nvim.api.create_buf(True, False)
    base = f"covim://{token.session:016x}/{name}"
    taken = {b.name for b in nvim.buffers}
    bufname = next(n for n in (base if i == 0 else f"{base}~{i}" for i in range(1000)) if n not in taken)
    nvim.api.buf_set_name(buf, bufname)
    nvim.api.set_option_value("buftype", "nofile", {"buf": buf})
    nvim.api.set_option_value("swapfile", False, {"buf": buf})
    nvim.api.win_set_buf(0, buf)
    return buf


def share_meta(nvim, session, buf: int) -> None:
    """The host's file name (base name) and filetype go in the document for the guests."""
    path = nvim.api.buf_get_name(buf)
    filetype = nvim.api.get_option_value("filetype", {"buf": buf})
    meta = {k: v for k, v in (("name", os.path.basename(path)), ("filetype", filetype)) if v}
    if meta:
        session.node.set_meta(**meta)  # signed like an edit (ledger.py): every sync carries it


def adopt_meta(nvim, session) -> None:
    """A guest's buffer takes the host's file name and filetype (values untrusted: guest.lua checks)."""
    meta = session.node.document.meta_untrusted()
    nvim.exec_lua("require('covim.guest').adopt(...)", session.bridge.buf, meta.get("name", ""),
                  meta.get("filetype", ""))
