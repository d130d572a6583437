"""The editor seam against a model: random interleavings of local typing, remote edits from 1-3
peers, Lua's batching, refusals, retries, reloads and bare tick bumps must neither lose, duplicate
nor move a character (seam_model.World.check says exactly what must be there)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from covim_p2p.editor.seam import Seam, _hunks
from covim_p2p.editor.edits import apply_edit_to_str

sys.path.insert(0, str(Path(__file__).parent))  # the model world, whatever the import mode
from seam_model import World  # noqa: E402

pos = st.integers(0, 40)


class SeamMachine(RuleBasedStateMachine):
    world: World

    @initialize(rows=st.lists(st.integers(0, 6), min_size=1, max_size=4), peers=st.integers(1, 3))
    def start(self, rows, peers):
        self.world = World(rows, peers)

    def _insert(self, size: int, newline: int) -> str:
        text = self.world.fresh(size)
        if newline and text:
            k = newline % (len(text) + 1)
            text = text[:k] + "\n" + text[k:]
        elif newline:
            text = "\n"
        return text

    @rule(a=pos, b=pos, size=st.integers(0, 3), newline=st.integers(0, 4), widen=st.booleans(),
          bump=st.integers(1, 2))
    def user_types(self, a, b, size, newline, widen, bump):
        self.world.user_edit(a, b if size == 0 else a + (b % 3 == 0) * (b % 4), self._insert(size, newline % 3 == 2),
                             widen, bump)

    @rule()
    def lua_turn_ends(self):
        self.world.nvim.end_turn()

    @rule()
    def tick_bumps_silently(self):
        self.world.nvim.silent_bump()

    @rule(a=pos, b=pos, size=st.integers(0, 4))
    def buffer_reloads(self, a, b, size):
        self.world.user_reload(a, b, self._insert(size, a % 2))

    @rule(peer=st.integers(1, 3), a=pos, b=pos, size=st.integers(0, 3), newline=st.integers(0, 4))
    def peer_edits(self, peer, a, b, size, newline):
        peer = 1 + (peer - 1) % (len(self.world.docs) - 1)
        self.world.peer_edit(peer, a, b if size == 0 else a + (b % 3 == 0) * (b % 4),
                             self._insert(size, newline % 3 == 2))

    @rule(src=st.integers(0, 3), dst=st.integers(0, 3))
    def network_delivers(self, src, dst):
        n = len(self.world.docs)
        src, dst = src % n, dst % n
        if src != dst:
            self.world.deliver(src, dst)

    @rule(n=st.integers(1, 5))
    def python_receives(self, n):
        self.world.python_receive(n)

    @rule()
    def python_flushes(self):
        self.world.python_flush()

    @rule()
    def neovim_answers(self):
        self.world.nvim_process()

    def teardown(self):
        if hasattr(self, "world"):
            self.world.settle()
            self.world.check()


TestSeamModel = SeamMachine.TestCase
TestSeamModel.settings = settings(max_examples=400, stateful_step_count=60, deadline=None,
                                  suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("seed", range(40))
def test_long_random_races(seed):
    """Long runs (1,500 steps) in which everyone types at once and Lua refuses often."""
    rng = random.Random(seed)
    world = World([rng.randint(0, 30) for _ in range(rng.randint(1, 8))], rng.randint(1, 3))
    for _ in range(1500):
        r = rng.random()
        text_len = len(world.nvim.text())
        if r < 0.30:
            a = rng.randint(0, text_len)
            if rng.random() < 0.7:
                world.user_edit(a, a, world.fresh(1) if rng.random() < 0.9 else "\n")
            else:
                world.user_edit(a, a + rng.randint(1, 4), world.fresh(rng.randint(0, 2)))
        elif r < 0.50:
            peer = rng.randint(1, len(world.docs) - 1)
            n = len(str(world.docs[peer]))
            a = rng.randint(0, n)
            if rng.random() < 0.7:
                world.peer_edit(peer, a, a, world.fresh(1))
            else:
                world.peer_edit(peer, a, a + rng.randint(1, 4), world.fresh(rng.randint(0, 2)))
        elif r < 0.65:
            src, dst = rng.sample(range(len(world.docs)), 2)
            world.deliver(src, dst)
        elif r < 0.75:
            world.nvim.end_turn()
        elif r < 0.85:
            world.python_receive(rng.randint(1, 3))
        elif r < 0.92:
            world.python_flush()
        elif r < 0.995:
            world.nvim_process()
        else:
            world.nvim.silent_bump()
    world.settle()
    world.check()
    assert world.seam.resyncs == 0


def test_a_refused_apply_is_retried_after_the_users_change_and_lands_once():
    world = World([3], peers=1)
    world.peer_edit(1, 1, 1, "R")
    world.deliver(1, 0)
    assert world.python_flush()
    world.user_edit(1, 1, "L")  # the user types before Neovim takes the apply
    world.nvim_process()  # refused: Lua has a change Python has not seen
    assert world.nvim.out[-1][0] == "refused"
    assert not world.python_flush()
    world.python_receive(10)
    world.settle()
    world.check()
    assert world.seam.refusals == 1
    assert "LR" in world.nvim.text()  # the user's own keystroke goes first, before the remote one


def test_a_bare_tick_bump_is_not_a_refusal():
    world = World([3], peers=1)
    world.peer_edit(1, 0, 0, "R")
    world.deliver(1, 0)
    world.python_flush()
    world.nvim.silent_bump()
    world.nvim_process()
    assert world.nvim.out[-1][0] == "applied"


@pytest.mark.parametrize("old, new", [
    (["a", "b", "c"], ["a"]), (["a"], ["a", "b"]), (["x", "b"], ["b"]), ([""], ["q", "r"]),
    (["a", "b", "c", "d"], ["a", "B", "c", "D"]), (["one two", "three"], ["one 2", "three", "four"])])
def test_reload_hunks_rebuild_the_new_text(old, new):
    text = "\n".join(old)
    for edit, _ in _hunks(old, new):
        text = apply_edit_to_str(text, edit)
    assert text == "\n".join(new)


def test_reload_touches_only_what_changed():
    old = ["keep " + str(i) for i in range(100)]
    new = list(old)
    new[10], new[90] = "changed", "also changed"
    edits = [edit for edit, _ in _hunks(old, new)]
    assert len(edits) == 2
    assert all(edit.delete <= 8 for edit in edits)


def test_a_seam_commits_nothing_for_an_event_that_changes_nothing():
    class Doc:
        committed: list = []

        def take_remote_edits(self):
            return []

        def has_remote_edits(self):
            return False

        def commit(self, edits):
            self.committed.append(edits)

        def undo(self, redo):
            return False

    doc = Doc()
    seam = Seam(doc, ["abc"], 5)
    seam.buffer_events([[6, 0, 1, ["abc"], -1, -1]])
    assert doc.committed == [] and seam.tick == 6
    seam.buffer_events([[7, 0, 1, ["abXc"], 0, 2]])
    assert doc.committed[-1][0].insert == "X"


def test_a_reload_that_empties_the_buffer_puts_the_shared_text_back():
    """:e! in a guest's buffer reads a file that is not there: that must not wipe everyone's text."""
    world = World([4, 3], peers=1)
    before = world.nvim.text()
    world.peer_edit(1, 0, 0, "P")
    world.deliver(1, 0)
    world.nvim.reload([""])
    world.settle()
    assert world.nvim.text() == "P" + before == str(world.docs[1])
    assert world.seam.committed == 0
