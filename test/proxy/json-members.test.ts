// The byte-offset scanner behind duplicate-key refusal and route rewriting agrees with
// JSON.parse on every member, whatever the strings hold.
import t from 'tap'
import { replaceValue, topLevelMembers } from '../../src/proxy/json-members.js'

t.test('escapes, nesting and whitespace', async (t) => {
  const cases: Array<[string, string[]]> = [
    ['{"a":"x\\\\","model":"m"}', ['a', 'model']],
    ['{"a":"x\\"y","model":"m"}', ['a', 'model']],
    ['{"a":"\\\\\\"","model":"m", "b": {"model":"n"}}', ['a', 'model', 'b']],
    ['{ "model" : "a" , "model":"b"}', ['model', 'model']],
    ['{"mod\\u0065l":"x"}', ['model']],
    [' \n{}\n', []],
    ['{"n":-1.5e3,"t":true,"z":null,"arr":[1,[2,{"model":3}]],"model":"m"}', ['n', 't', 'z', 'arr', 'model']],
  ]
  for (const [json, keys] of cases) {
    const members = topLevelMembers(Buffer.from(json))
    t.same(members.map((m) => m.key), keys, json)
  }
})

t.test('every member slice parses to the value JSON.parse gives (random documents)', async (t) => {
  let seed = 42
  const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n }
  const pieces = ['"', '\\', 'é', '😀', '\u2028', 'a', '{', '}', '[', ']', ',', ':', ' ', '\n', '\\"']
  const str = (): string => Array.from({ length: rand(12) }, () => pieces[rand(pieces.length)]).join('')
  const value = (depth: number): unknown => {
    switch (rand(depth > 2 ? 4 : 6)) {
      case 0: return str()
      case 1: return rand(1000) - 500
      case 2: return rand(2) === 0
      case 3: return null
      case 4: return Array.from({ length: rand(4) }, () => value(depth + 1))
      default: return Object.fromEntries(Array.from({ length: rand(4) }, () => [str(), value(depth + 1)]))
    }
  }
  let checked = 0
  for (let i = 0; i < 300; i++) {
    const doc: Record<string, unknown> = Object.fromEntries(Array.from({ length: 1 + rand(5) }, () => [str(), value(0)]))
    doc['model'] = str()
    const text = JSON.stringify(doc, null, rand(2) === 0 ? undefined : 2)
    const buf = Buffer.from(text)
    const members = topLevelMembers(buf)
    const parsed = JSON.parse(text) as Record<string, unknown>
    const ok = members.length === Object.keys(parsed).length &&
      members.every((m) => JSON.stringify(JSON.parse(buf.subarray(m.start, m.end).toString())) === JSON.stringify(parsed[m.key]))
    if (!ok) t.fail(`disagreement on ${text}`)
    const model = members.find((m) => m.key === 'model')
    if (model !== undefined) {
      const rewritten = JSON.parse(replaceValue(buf, model, 'local-70b').toString()) as Record<string, unknown>
      if (rewritten['model'] !== 'local-70b' || JSON.stringify({ ...rewritten, model: parsed['model'] }) !== JSON.stringify(parsed)) t.fail(`rewrite changed more than the model: ${text}`)
    }
    checked++
  }
  t.equal(checked, 300)
})
