"""Shared fixtures. Test Neovims: see tests/nvim_harness.py."""

import sys
from pathlib import Path

import pytest

# Tests in subfolders import the helpers as `from nvim_harness import ...`,
# whatever pytest's import mode or __init__.py files.
sys.path.insert(0, str(Path(__file__).parent))

from nvim_harness import NvimEnv, NvimFactory  # noqa: E402


@pytest.fixture(scope="session")
def nvim_env(tmp_path_factory) -> NvimEnv:
    """init.lua, XDG dirs, log and rplugin manifest, built once per session."""
    return NvimEnv.create(tmp_path_factory.mktemp("nvim"))


@pytest.fixture
def nvim_factory(nvim_env):
    """`nvim_factory(*extra_nvim_args)` starts an isolated headless Neovim with our
    plugin. On teardown every Neovim still running gets :qa!, and the test fails
    if it or any of its descendants (the python host) is still alive 5 s later."""
    factory = NvimFactory(nvim_env)
    yield factory
    factory.stop_all()
