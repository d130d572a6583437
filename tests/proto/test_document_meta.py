"""The session's file name and filetype travel in a Y.Map "meta" beside the text:
pycrdt peers and real Yjs (node, tests/yjs/) read and write it alike."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from covim_p2p.proto.document import META_MAX, SharedDocument

YJS_DIR = Path(__file__).resolve().parents[1] / "yjs"

SCRIPT = """
import * as Y from 'yjs'
const input = JSON.parse(require_input())
function require_input() { return process.argv[1] }
const doc = new Y.Doc()
Y.applyUpdate(doc, Buffer.from(input.update, 'base64'))
const out = { meta: doc.getMap('meta').toJSON(), text: doc.getText('content').toString() }
const js = new Y.Doc()
js.getText('content').insert(0, 'from js')
js.getMap('meta').set('name', 'web.ts')
js.getMap('meta').set('filetype', 'typescript')
out.js = Buffer.from(Y.encodeStateAsUpdate(js)).toString('base64')
console.log(JSON.stringify(out))
"""


def node_yjs(update: bytes) -> dict:
    node = shutil.which("node")
    if node is None or not (YJS_DIR / "node_modules" / "yjs").is_dir():
        pytest.fail("needs node and tests/yjs/node_modules: run scripts/setup.sh --test", pytrace=False)
    done = subprocess.run([node, "--input-type=module", "-e", SCRIPT,
                           json.dumps({"update": base64.b64encode(update).decode()})],
                          cwd=YJS_DIR, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def test_meta_reaches_a_peer_with_the_text():
    host = SharedDocument(1, "print('hi')")
    host.set_meta(name="main.py", filetype="python")
    guest = SharedDocument(2)
    guest.doc.apply_update(host.doc.get_update())
    assert guest.meta_untrusted() == {"name": "main.py", "filetype": "python"} and str(guest) == "print('hi')"


def test_meta_is_yjs_compatible_both_ways():
    host = SharedDocument(1, "x = 1")
    host.set_meta(name="main.py", filetype="python")
    answer = node_yjs(host.doc.get_update())
    assert answer["meta"] == {"name": "main.py", "filetype": "python"} and answer["text"] == "x = 1"
    guest = SharedDocument(2)
    guest.doc.apply_update(base64.b64decode(answer["js"]))
    assert guest.meta_untrusted() == {"name": "web.ts", "filetype": "typescript"} and str(guest) == "from js"


def test_meta_from_a_peer_is_untrusted():
    other = SharedDocument(1)
    other.set_meta(name="n" * (META_MAX + 1), filetype="python")
    from pycrdt import Map
    with other.doc.transaction():
        other.doc.get("meta", type=Map)["weird"] = 3
    guest = SharedDocument(2)
    guest.doc.apply_update(other.doc.get_update())
    assert guest.meta_untrusted() == {"filetype": "python"}
