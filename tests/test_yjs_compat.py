"""pycrdt and real Yjs (node, tests/yjs/) read each other's v1 updates.

covim-p2p peers talk Yjs on the wire, so a JS peer (or a future web client)
must see exactly the text we see, for any Unicode a buffer can hold. pycrdt
indexes Text by UTF-8 bytes, Yjs by UTF-16 units; the documents must still be
identical. Node is not optional here: if it is missing, these tests fail and say
how to install it (CI must run everything).
"""

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Text

YJS_DIR = Path(__file__).parent / "yjs"
NAME = "content"
SAMPLE = (
    "plain ASCII line\n"
    "\tindented\twith tabs\n"
    "中文 日本語テキスト 한국어\n"
    "emoji 👍🏽 👩\u200d👩\u200d👧\u200d👦 🏳\ufe0f\u200d🌈 🇫🇷\n"
    "combining e\u0301 n\u0303 a\u0308\u0304 Z\u0335\u0327\n"
    "\n"
    "\t\tlast line, no newline"
)


class YjsTool:
    """One long-lived `node yjs_tool.mjs`, one JSON line per request."""

    def __init__(self):
        node = shutil.which("node")
        if node is None or not (YJS_DIR / "node_modules" / "yjs").is_dir():
            pytest.fail(
                "Yjs compatibility tests need node and tests/yjs/node_modules: "
                "run scripts/setup.sh --test",
                pytrace=False,
            )
        self.proc = subprocess.Popen(
            [node, str(YJS_DIR / "yjs_tool.mjs")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8",
        )

    def __call__(self, **request):
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"yjs_tool.mjs exited (code {self.proc.poll()})"
        answer = json.loads(line)
        assert "error" not in answer, answer["error"]
        return answer

    def decode(self, update: bytes) -> str:
        return self(op="decode", update=base64.b64encode(update).decode(), name=NAME)["text"]

    def encode(self, text: str) -> bytes:
        return base64.b64decode(self(op="encode", text=text, name=NAME)["update"])

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=5)


@pytest.fixture(scope="module")
def yjs():
    tool = YjsTool()
    yield tool
    tool.close()


def new_text(update: bytes = b"") -> tuple[Doc, Text]:
    doc = Doc()
    text = doc.get(NAME, type=Text)
    if update:
        doc.apply_update(update)
    return doc, text


def byte_offset(text: Text, char_index: int) -> int:
    """pycrdt wants UTF-8 byte offsets; tests think in code points."""
    return len(str(text)[:char_index].encode())


def insert(text: Text, char_index: int, value: str) -> None:
    text.insert(byte_offset(text, char_index), value)


def delete(text: Text, char_index: int, n_chars: int) -> None:
    del text[byte_offset(text, char_index):byte_offset(text, char_index + n_chars)]


def at(text: Text, s: str) -> int:
    return str(text).index(s)


def utf16(s: str) -> int:
    """Yjs indexes by UTF-16 code units."""
    return len(s.encode("utf-16-le")) // 2


def exchange(a: Doc, b: Doc) -> None:
    """Bring two docs to the same state by state-vector diffs, both ways."""
    a_missing = b.get_update(a.get_state())
    b_missing = a.get_update(b.get_state())
    a.apply_update(a_missing)
    b.apply_update(b_missing)


def test_concurrent_pycrdt_edits_decode_identically_in_yjs(yjs):
    doc_a, text_a = new_text()
    text_a.insert(0, SAMPLE)
    doc_b, text_b = new_text(doc_a.get_update())

    # Concurrent edits on both sides, none seen by the other yet.
    insert(text_a, 0, "Ä👩\u200d💻\t")
    delete(text_a, at(text_a, "中文"), 3)                      # "中文 "
    insert(text_a, at(text_a, "combining") + 2, "o\u0302\u0323")
    insert(text_b, len(SAMPLE), "\nB: 🧑🏿\u200d🚀 終わり")
    delete(text_b, at(text_b, "👍🏽"), 2)                      # thumbs up + skin tone
    insert(text_b, at(text_b, "\n\n") + 1, "ß\u200d\r\n")
    delete(text_b, 0, 6)                                       # "plain "

    exchange(doc_a, doc_b)
    merged = str(text_a)
    assert merged == str(text_b)
    for piece in ["Ä👩\u200d💻\t", "o\u0302\u0323", "🧑🏿\u200d🚀 終わり", "ß\u200d\r\n"]:
        assert piece in merged
    for gone in ["中文", "👍🏽", "plain "]:
        assert gone not in merged

    assert yjs.decode(doc_a.get_update()) == merged
    assert yjs.decode(doc_b.get_update()) == merged


def test_yjs_encoded_text_applies_in_pycrdt(yjs):
    _, text = new_text(yjs.encode(SAMPLE))
    assert str(text) == SAMPLE
    assert len(text) == len(SAMPLE.encode())  # pycrdt's index unit: UTF-8 bytes


def test_yjs_edits_merge_with_concurrent_pycrdt_edits(yjs):
    doc, text = new_text()
    text.insert(0, SAMPLE)
    base = doc.get_update()

    # Yjs edits at UTF-16 indices while pycrdt edits concurrently.
    emoji_at = SAMPLE.index("👩")
    answer = yjs(op="sync", update=base64.b64encode(base).decode(), name=NAME, edits=[
        ["insert", utf16(SAMPLE[:emoji_at]), "JS🐍"],
        ["delete", 0, utf16("plain ")],
    ])
    insert(text, len(SAMPLE), "\npy: 한글 🎉")

    doc.apply_update(base64.b64decode(answer["update"]))
    merged = str(text)
    assert merged.startswith("ASCII line\n")
    assert "JS🐍👩\u200d👩" in merged and merged.endswith("\npy: 한글 🎉")
    assert yjs.decode(doc.get_update()) == merged


# Code points a buffer may hold (no surrogates: those cannot be UTF-8), biased
# towards the hard cases.
chars = st.one_of(
    st.characters(codec="utf-8"),
    st.sampled_from(["\n", "\t", "\r", "\u200d", "\u0301", "\ufe0f", "🏽", "👩", "中", "é"]),
)
edits = st.lists(
    st.tuples(st.booleans(), st.floats(0, 1), st.text(chars, min_size=1, max_size=8)),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(initial=st.text(chars, max_size=30), edits_a=edits, edits_b=edits)
def test_random_concurrent_edits_round_trip(yjs, initial, edits_a, edits_b):
    doc_a, text_a = new_text()
    text_a.insert(0, initial)
    doc_b, text_b = new_text(doc_a.get_update())
    for text, ops in [(text_a, edits_a), (text_b, edits_b)]:
        for is_insert, where, value in ops:
            at = int(where * len(str(text)))
            if is_insert:
                insert(text, at, value)
            else:
                delete(text, at, min(len(value), len(str(text)) - at))
    exchange(doc_a, doc_b)
    assert str(text_a) == str(text_b)

    merged = str(text_a)
    assert yjs.decode(doc_a.get_update()) == merged
    _, from_js = new_text(yjs.encode(merged))
    assert str(from_js) == merged
