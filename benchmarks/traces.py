"""Real editing traces (josephg/editing-traces) replayed through the whole path.

Full path: every patch becomes one ``nvim_buf_set_text`` in Neovim A (sent in
chunks through one ``exec_lua`` call each, applied one by one with the cursor
put where the patch happens, so each fires ``on_lines`` on its own, like
typing); the clock runs from the first patch
(hrtime in A) to the last change in Neovim B's buffer (hrtime in B) once B
holds exactly the trace's final text. The same patches, as UTF-8 byte offsets,
are also applied as local edits to a bare pycrdt Doc in this process (one
transaction per patch), through the plugin's own document code alone (what
its CRDT work costs, batched as the host batches), and replayed into a Neovim
with no session (what Neovim alone costs).

friendsforever is concurrent (two authors; ``parents`` give each
transaction's causal past). Its positions are relative to that causal past,
but the peers' buffers may already hold the other author's concurrent
transactions, and loopback gives no way to hold a message back without
changing the plugin. So the replay is serialised at each change of author: a
pycrdt simulation (one Doc per author that sees exactly each transaction's
parents, plus a merged Doc) turns every transaction into edits on the merged
text; an author's run of transactions is typed into its own peer once that
peer holds the merged text so far. Both peers must end at ``endContent``.
"""

from __future__ import annotations

import gzip
import json
import random
import time
from dataclasses import dataclass

from pycrdt import Doc, Text

from . import latency
from .common import (TRACES, BenchError, Config, converged_or_raise, diagnose, fmt_ms, fmt_s, peers, session,
                     shared_buf, summary_ms, wait_text)

CHUNK = 2000  # patches per exec_lua call


@dataclass
class Trace:
    name: str
    start: str
    end: str
    edits: list[tuple[int, int, str]]  # (UTF-8 byte offset, bytes deleted, inserted text), one per patch
    txns: int


def load(name: str) -> dict:
    with gzip.open(TRACES / f"{name}.json.gz") as f:
        return json.load(f)


class CodePoints:
    """Code-point offsets -> UTF-8 byte offsets in a text being edited, in blocks
    of at most 1024 characters (so a patch costs one block, not the whole text)."""

    B = 1024

    def __init__(self, text: str):
        self.blocks = [text[i:i + self.B] for i in range(0, len(text), self.B)] or [""]
        self.chars = [len(b) for b in self.blocks]
        self.bytes = [len(b.encode()) for b in self.blocks]

    def text(self) -> str:
        return "".join(self.blocks)

    def replace(self, pos: int, ndel: int, ins: str) -> tuple[int, int]:
        """Apply one patch; return (byte offset, bytes deleted)."""
        i, before_c, before_b = 0, 0, 0
        while i < len(self.blocks) - 1 and before_c + self.chars[i] < pos:
            before_c += self.chars[i]
            before_b += self.bytes[i]
            i += 1
        j, span = i, self.chars[i]
        while j < len(self.blocks) - 1 and before_c + span < pos + ndel:
            j += 1
            span += self.chars[j]
        s = "".join(self.blocks[i:j + 1])
        off = pos - before_c
        if off + ndel > len(s):
            raise BenchError(f"patch {pos}+{ndel} beyond the end of the text")
        byte_off = before_b + len(s[:off].encode())
        byte_del = len(s[off:off + ndel].encode())
        s = s[:off] + ins + s[off + ndel:]
        if len(s) > 2 * self.B:
            new = [s[k:k + self.B] for k in range(0, len(s), self.B)]
        elif s or j - i + 1 == len(self.blocks):
            new = [s]
        else:
            new = []  # an emptied block goes (one block always stays)
        self.blocks[i:j + 1] = new
        self.chars[i:j + 1] = [len(b) for b in new]
        self.bytes[i:j + 1] = [len(b.encode()) for b in new]
        return byte_off, byte_del


def sequential(name: str, limit: int | None = None) -> Trace:
    data = load(name)
    txns = data["txns"][:limit] if limit else data["txns"]
    patches = [p for txn in txns for p in txn["patches"]]
    if limit is None and data["startContent"].isascii() and all(p[2].isascii() for p in patches):
        edits = [(pos, ndel, ins) for pos, ndel, ins in patches]  # ASCII: code points are bytes
        end = data["endContent"]  # checked against every replay below
    else:
        cp = CodePoints(data["startContent"])
        edits = []
        for pos, ndel, ins in patches:
            off, nbytes = cp.replace(pos, ndel, ins)
            edits.append((off, nbytes, ins))
        end = cp.text()
    if limit is None and end != data["endContent"]:
        raise BenchError(f"{name}: replaying the patches does not give endContent")
    return Trace(name, data["startContent"], end, edits, len(txns))


def raw_pycrdt(trace: Trace) -> float:
    doc = Doc()
    text = doc.get("content", type=Text)
    if trace.start:
        text += trace.start
    t = time.perf_counter()
    for off, ndel, ins in trace.edits:
        with doc.transaction():
            if ndel:
                del text[off:off + ndel]
            if ins:
                text.insert(off, ins)
    elapsed = time.perf_counter() - t
    if str(text) != trace.end:
        raise BenchError(f"{trace.name}: raw pycrdt replay differs from the final text")
    return elapsed


def plugin_document(trace: Trace, batch: int = 64) -> float:
    """The plugin's CRDT work alone: SharedDocument.local_edits on bursts of
    ``batch`` patches (covim_p2p/nvim/bridge.py MAX_BATCH), which merges runs
    of typing into single CRDT operations."""
    from covim_p2p.editor.edits import TextEdit
    from covim_p2p.proto.document import SharedDocument
    doc = SharedDocument(1, trace.start)
    edits = [TextEdit(off, ndel, ins) for off, ndel, ins in trace.edits]
    t = time.perf_counter()
    for i in range(0, len(edits), batch):
        doc.local_edits(edits[i:i + batch])
    elapsed = time.perf_counter() - t
    if str(doc) != trace.end:
        raise BenchError(f"{trace.name}: the plugin's document replay differs from the final text")
    return elapsed


def lua_edits(edits) -> list:
    return [[off, ndel, ins.split("\n")] for off, ndel, ins in edits]


def replay_into(nvim, buf: int, edits: list) -> tuple[int, int]:
    """Apply edits (lua_edits form) to nvim's current buffer in chunks; (t_first, t_last) hrtimes."""
    first = last = 0
    for i in range(0, len(edits), CHUNK):
        t0, t1 = nvim.exec_lua("return covim_bench.apply_bytes(...)", buf, edits[i:i + CHUNK])
        first = first or t0
        last = t1
    return first, last


def neovim_only(cfg: Config, trace: Trace, edits: list) -> float:
    with peers(cfg) as p:
        (nvim,) = p.spawn(1)
        nvim.current.buffer[:] = trace.start.split("\n")
        first, last = replay_into(nvim, nvim.current.buffer.number, edits)
        if "\n".join(nvim.current.buffer[:]) != trace.end:
            raise BenchError(f"{trace.name}: the Neovim-only replay differs from the final text")
        return (last - first) / 1e9


def full_path(cfg: Config, trace: Trace, edits: list, timeout: float, keystrokes: int = 0) -> dict:
    with peers(cfg) as p:
        a, b = session(p, 2, trace.start.split("\n"))
        abuf, bbuf = shared_buf(a), shared_buf(b)
        if a.current.buffer.number != abuf:
            raise BenchError("the host's shared buffer is not its current buffer")
        b.exec_lua("covim_bench.track(...)", bbuf)
        first, a_done = replay_into(a, abuf, edits)
        try:
            size = wait_text(b, bbuf, trace.end, timeout, f"{trace.name}: B to hold the final text", interval=0.02)
        except BenchError as exc:
            raise BenchError(f"{exc} (want {len(trace.end.encode())} bytes; {diagnose([a, b])})") from None
        converged_or_raise([a, b], trace.end, f"{trace.name} replay")
        out = {"total": (size[2] - first) / 1e9, "a_typing": (a_done - first) / 1e9}
        if keystrokes:  # the same session, now holding the trace's whole editing history
            lat, model = latency.measure(a, [b], trace.end.split("\n"), keystrokes, random.Random(9))
            converged_or_raise([a, b], "\n".join(model), f"keystrokes after {trace.name}")
            out["latency"] = summary_ms(lat)
        return out


# ---- friendsforever ------------------------------------------------------------------

@dataclass
class ConcurrentPlan:
    runs: list[tuple[int, list]]  # (author, lua edits on the merged text)
    checkpoints: list[str]  # merged text before each run
    end: str
    txns: int
    raw_seconds: float


def causal_counts(txns: list[dict]) -> tuple[list[int], list[tuple[int, int]]]:
    """Per transaction: its index within its author's sequence, and how many of each
    author's transactions its causal past holds (each author's own are a chain)."""
    index, seen = [], [0, 0]
    for t in txns:
        index.append(seen[t["agent"]])
        seen[t["agent"]] += 1
    past = []
    for i, t in enumerate(txns):
        c = [0, 0]
        for p in t["parents"]:
            c[txns[p]["agent"]] = max(c[txns[p]["agent"]], index[p] + 1)
            c[0], c[1] = max(c[0], past[p][0]), max(c[1], past[p][1])
        if c[t["agent"]] != index[i]:
            raise BenchError(f"transaction {i} does not follow its author's previous one")
        past.append((c[0], c[1]))
    return index, past


def concurrent_plan(limit: int | None = None) -> ConcurrentPlan:
    data = load("friendsforever")
    txns = data["txns"][:limit] if limit else data["txns"]
    if data["numAgents"] != 2 or not all(p[2].isascii() for t in txns for p in t["patches"]):
        raise BenchError("friendsforever: expected two authors and ASCII text")
    _, past = causal_counts(txns)
    # Author 0 gets the lower client id: that is the tie-break endContent was made with.
    docs = [Doc(client_id=1), Doc(client_id=2)]
    texts = [d.get("t", type=Text) for d in docs]
    merged = Doc(client_id=3)
    mtext = merged.get("t", type=Text)
    deltas: list = []
    sub = mtext.observe(lambda event: deltas.append(event.delta))
    updates: list[list[bytes]] = [[], []]
    held = [[0, 0], [0, 0]]  # held[k][a]: how many of author a's transactions author k's Doc holds
    runs: list[tuple[int, list]] = []
    checkpoints: list[str] = []
    raw = 0.0
    for i, t in enumerate(txns):
        k, o = t["agent"], 1 - t["agent"]
        r0 = time.perf_counter()
        for j in range(held[k][o], past[i][o]):
            docs[k].apply_update(updates[o][j])
        held[k][o] = past[i][o]
        before = docs[k].get_state()
        with docs[k].transaction():
            for pos, ndel, ins in t["patches"]:  # ASCII: code points are bytes
                if ndel:
                    del texts[k][pos:pos + ndel]
                if ins:
                    texts[k].insert(pos, ins)
        updates[k].append(docs[k].get_update(before))
        held[k][k] += 1
        raw += time.perf_counter() - r0
        if not runs or runs[-1][0] != k:
            checkpoints.append(str(mtext))
            runs.append((k, []))
        deltas.clear()
        merged.apply_update(updates[k][-1])
        pos = 0
        for delta in deltas:
            for op in delta:
                if "retain" in op:
                    pos += op["retain"]
                elif "delete" in op:
                    runs[-1][1].append([pos, op["delete"], [""]])
                elif "insert" in op:
                    runs[-1][1].append([pos, 0, op["insert"].split("\n")])
                    pos += len(op["insert"].encode())
    del sub
    end = str(mtext)
    if limit is None and end != data["endContent"]:
        raise BenchError("friendsforever: the causal simulation does not give endContent")
    return ConcurrentPlan(runs, checkpoints, end, len(txns), raw)


def concurrent_full_path(cfg: Config, plan: ConcurrentPlan, timeout: float) -> dict:
    with peers(cfg) as p:
        nvims = session(p, 2, [""])
        bufs = [shared_buf(v) for v in nvims]
        for v, buf in zip(nvims, bufs):
            if v.current.buffer.number != buf:
                raise BenchError("a shared buffer is not its Neovim's current buffer")
            v.exec_lua("covim_bench.track(...)", buf)
        t = time.monotonic()
        catch_up = []
        for (author, edits), before in zip(plan.runs, plan.checkpoints):
            c = time.monotonic()
            wait_text(nvims[author], bufs[author], before, 20, "the next author to hold the merged text",
                      interval=0.0005)
            catch_up.append(time.monotonic() - c)
            for i in range(0, len(edits), CHUNK):
                nvims[author].exec_lua("covim_bench.apply_bytes(...)", bufs[author], edits[i:i + CHUNK])
        for v, buf in zip(nvims, bufs):
            wait_text(v, buf, plan.end, timeout, "both peers to hold endContent", interval=0.005)
        total = time.monotonic() - t
        converged_or_raise(nvims, plan.end, "friendsforever replay")
        catch_up.sort()
        return {"total": total, "catch_up_p50": catch_up[len(catch_up) // 2], "catch_up_max": catch_up[-1]}


def run(cfg: Config) -> None:
    group = "2. editing traces"
    if not TRACES.is_dir():
        raise BenchError(f"no editing traces at {TRACES}: set COVIM_TRACES to the editing-traces folder")
    timeout = 300
    limit = None if not cfg.quick else 20_000
    for name in ["automerge-paper", "seph-blog1"]:
        trace = sequential(name, limit)
        edits = lua_edits(trace.edits)
        label = f"{name} ({trace.txns:,} txns, {len(trace.edits):,} patches{', prefix' if limit else ''}, " \
                f"{len(trace.end.encode()) / 1000:.0f} kB)"
        raw = raw_pycrdt(trace)
        plugin_doc = plugin_document(trace)
        alone = neovim_only(cfg, trace, edits)
        history = name == "automerge-paper"
        full = full_path(cfg, trace, edits, timeout, keystrokes=cfg.n(300, 50) if history else 0)
        ratio = full["total"] / raw
        cfg.add(group, f"{label}: raw pycrdt, local edits, 1 process", fmt_s(raw))
        cfg.add(group, f"{label}: the plugin's document code alone (bursts of 64 patches, runs merged), 1 process",
                f"{fmt_s(plugin_doc)} = {plugin_doc / raw:.2f}x raw pycrdt")
        cfg.add(group, f"{label}: Neovim alone (set_text per patch, no session)", fmt_s(alone))
        cfg.add(group, f"{label}: full path A→B until B == endContent",
                f"{fmt_s(full['total'])} = {ratio:.1f}x raw pycrdt (A finished typing after "
                f"{fmt_s(full['a_typing'])})",
                "≤ 2x raw pycrdt" if history else "", ratio <= 2 if history else None)
        if history:
            lat = full["latency"]
            cfg.add(group, f"keystroke A→B, 2 peers, on the document holding the {name} history "
                           f"(same session, after the replay)",
                    f"p50 {fmt_ms(lat['p50'])} · p99 {fmt_ms(lat['p99'])} · max {fmt_ms(lat['max'])} (n={lat['n']})",
                    "p50 ≤ 1.5 ms, p99 ≤ 5 ms", lat["p50"] <= 1.5 and lat["p99"] <= 5)
    plan = concurrent_plan(None if not cfg.quick else 5_000)
    full = concurrent_full_path(cfg, plan, timeout)
    cfg.add(group, f"friendsforever (2 authors, {plan.txns:,} txns, {len(plan.runs):,} author runs): "
                   f"raw pycrdt, 2 causal Docs", fmt_s(plan.raw_seconds))
    cfg.add(group, "friendsforever: full path, serialised at author changes, both peers == endContent",
            f"{fmt_s(full['total'])} (next author caught up: p50 {full['catch_up_p50'] * 1000:.1f} ms, "
            f"max {full['catch_up_max'] * 1000:.0f} ms)")
    cfg.notes.append("The full path can beat raw pycrdt (one transaction per patch): Neovim's Lua sends each loop "
                     "turn's changes together, the host takes up to 64 per transaction, and runs of edits that touch "
                     "the previous one (typing, backspace) become one CRDT operation, so pycrdt looks up far fewer "
                     "positions. The 'document code alone' row is that CRDT floor; the rest is Neovim, the shadow "
                     "buffer, RPC and UDP.")
    cfg.notes.append("friendsforever positions are relative to each transaction's causal past; loopback gives no way "
                     "to hold one peer's messages back without changing the plugin, so the replay waits for the "
                     "next author's peer to catch up at every change of author, and types edits computed on the "
                     "merged text by a pycrdt simulation (author 0 gets the lower client id, the tie-break "
                     "endContent was made with). Both peers are checked against endContent.")
