"""The helpers beside these tests (covim_peers) import by name, whatever pytest's import mode."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
