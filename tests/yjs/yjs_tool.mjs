// Real Yjs behind a tiny JSON-lines CLI, for tests/test_yjs_compat.py.
// Each stdin line is one request; each answer is one stdout line (one request
// piped in gives one answer, so `echo '{...}' | node yjs_tool.mjs` works too).
//
//   {"op":"decode","update":B64,"name":"content"}  -> {"text": doc.getText(name)}
//   {"op":"encode","text":S,"name":"content"}      -> {"update": B64 of encodeStateAsUpdate}
//   {"op":"sync","update":B64?,"name":"content","edits":[["insert",i,S] | ["delete",i,n]],
//    "state_vector":B64?}
//       applies `update`, makes `edits` (Yjs indexes: UTF-16 code units) in one
//       transaction, and answers {"text", "update": the state missing from
//       `state_vector` (all of it if absent), "state_vector"}.
// Errors answer {"error": message} and the tool keeps reading.
import * as Y from 'yjs'
import { createInterface } from 'node:readline'

const b64 = (bytes) => Buffer.from(bytes).toString('base64')
const unb64 = (s) => new Uint8Array(Buffer.from(s, 'base64'))

function docFrom (update) {
  const doc = new Y.Doc()
  if (update) Y.applyUpdate(doc, unb64(update))
  return doc
}

const ops = {
  decode ({ update, name = 'content' }) {
    return { text: docFrom(update).getText(name).toString() }
  },
  encode ({ text, name = 'content' }) {
    const doc = new Y.Doc()
    doc.getText(name).insert(0, text)
    return { update: b64(Y.encodeStateAsUpdate(doc)) }
  },
  sync ({ update, name = 'content', edits = [], state_vector: sv }) {
    const doc = docFrom(update)
    const ytext = doc.getText(name)
    doc.transact(() => {
      for (const [kind, index, arg] of edits) {
        if (kind === 'insert') ytext.insert(index, arg)
        else if (kind === 'delete') ytext.delete(index, arg)
        else throw new Error(`unknown edit ${kind}`)
      }
    })
    return {
      text: ytext.toString(),
      update: b64(Y.encodeStateAsUpdate(doc, sv ? unb64(sv) : undefined)),
      state_vector: b64(Y.encodeStateVector(doc))
    }
  }
}

for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (!line.trim()) continue
  let answer
  try {
    const request = JSON.parse(line)
    const op = ops[request.op]
    if (!op) throw new Error(`unknown op ${JSON.stringify(request.op)}`)
    answer = op(request)
  } catch (err) {
    answer = { error: String(err && err.stack ? err.stack : err) }
  }
  process.stdout.write(JSON.stringify(answer) + '\n')
}
