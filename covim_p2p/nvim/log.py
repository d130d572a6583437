"""stdpath('log')/covim.log from the Python side: joins, leaves, links, paths, drops.

Same file and line format as lua/covim/log.lua (which logs every message the
user sees); bounded the same way: past 1 MB the file becomes covim.log.1.
"""

from __future__ import annotations

import logging
import logging.handlers
import os

MAX_BYTES = 1024 * 1024
log = logging.getLogger("covim")
log.propagate = False  # never to the python host's own log or stderr


def open_log(directory: str) -> str:
    """Send the ``covim`` logger to ``directory``/covim.log (once); returns the path."""
    path = os.path.join(directory, "covim.log")
    if not any(getattr(h, "baseFilename", None) == os.path.abspath(path) for h in log.handlers):
        os.makedirs(directory, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=1, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s.%(msecs)03d %(levelname)-5s %(message)s",
                                               "%Y-%m-%d %H:%M:%S"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    return path
