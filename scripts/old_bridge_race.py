"""The seam's model race (tests/editor/seam_model.py) run against the bridge of ea211a7, the last
commit before the seam: shows that the model catches the concurrent-typing loss of issue 7.
Run from the repository root: .venv/bin/python scripts/old_bridge_race.py  (40 seeds; ~30 s)."""
import random, subprocess, sys, tempfile
from pathlib import Path
_old = subprocess.run(["git", "show", "ea211a7:covim_p2p/nvim/bridge.py"], capture_output=True, text=True,
                      check=True).stdout
_old = _old.replace("from ..editor", "from covim_p2p.editor").replace("from ..proto", "from covim_p2p.proto")
_dir = tempfile.mkdtemp()
Path(_dir, "old_bridge.py").write_text(_old)
sys.path.insert(0, _dir); sys.path.insert(0, "tests/editor")
from collections import deque
from seam_model import World
import old_bridge
from covim_p2p.editor.edits import apply_edit_to_str

class FakeNode:
    def __init__(self, world): self.world, self.document, self.synced = world, world.docs[0], True
    def local_edits(self, edits, now): self.world.broadcast(0, self.document.local_edits(edits))
    def set_cursor(self, *a): pass

class Api:
    def create_namespace(self, n): return 1
    def set_option_value(self, *a): pass
class Loop:
    def __init__(self, q): self.q = q
    def call_soon(self, f, *a): self.q.append((f, a))
    def call_later(self, t, f, *a): self.q.append((f, a))
class FakeNvim:
    def __init__(self, world):
        self.world, self.q = world, deque()
        self.loop, self.api = Loop(self.q), Api()
    def async_call(self, f, *a): self.q.append((f, a))
    def exec_lua(self, code, *args):
        nv = self.world.nvim
        if "snapshot" in code:
            nv.end_turn(); return [nv.tick, list(nv.lines)]
        buf, tick, calls, ns, marks, stale = args
        if not calls: return tick
        if nv.tick != tick: return None
        for srow, scol, erow, ecol, ins in calls:
            head = nv.lines[srow].encode()[:scol].decode(); tail = nv.lines[erow].encode()[ecol:].decode()
            rows = list(ins); rows[0] = head + rows[0]; rows[-1] = rows[-1] + tail
            nv.lines[srow:erow + 1] = rows; nv.tick += 1
        nv.last_tick = nv.tick
        return nv.tick

bad = 0
for seed in range(40):
    rng = random.Random(seed)
    w = World([rng.randint(0, 30) for _ in range(rng.randint(1, 8))], rng.randint(1, 3))
    fn = FakeNvim(w)
    b = old_bridge.BufferBridge(fn, 1, FakeNode(w), lambda: None, lambda *a: None, w.nvim.tick, list(w.nvim.lines))
    def pump(n):
        for _ in range(n):
            if not fn.q: return
            f, a = fn.q.popleft(); f(*a)
    def receive(n):
        for _ in range(min(n, len(w.nvim.out))):
            m = w.nvim.out.popleft(); b.on_lines(m[1])
    try:
        for _ in range(1500):
            r = rng.random(); tl = len(w.nvim.text())
            if r < 0.30:
                a = rng.randint(0, tl)
                if rng.random() < 0.7: w.user_edit(a, a, w.fresh(1) if rng.random() < 0.9 else "\n")
                else: w.user_edit(a, a + rng.randint(1, 4), w.fresh(rng.randint(0, 2)))
            elif r < 0.50:
                p = rng.randint(1, len(w.docs) - 1); n = len(str(w.docs[p])); a = rng.randint(0, n)
                if rng.random() < 0.7: w.peer_edit(p, a, a, w.fresh(1))
                else: w.peer_edit(p, a, a + rng.randint(1, 4), w.fresh(rng.randint(0, 2)))
            elif r < 0.65:
                s, d = rng.sample(range(len(w.docs)), 2); w.deliver(s, d)
                if d == 0: b.schedule_flush()
            elif r < 0.75: w.nvim.end_turn()
            elif r < 0.85: receive(rng.randint(1, 3))
            else: pump(rng.randint(1, 3))
        for _ in range(3000):
            w.nvim.end_turn()
            for (s, d) in w.links:
                while w.deliver(s, d): pass
            receive(1000); b.schedule_flush(); pump(1000)
        w.check(); print(seed, "ok, resyncs", b.resyncs)
    except Exception as e:
        bad += 1; print(seed, "FAILED:", str(e)[:150], "resyncs", b.resyncs)
print(f"old bridge: {bad} of 40 seeds lost, duplicated or moved text")
