// JSON as three kinds of server read it, written here independently of the gateway: every
// object keeps all its members in order (duplicates too), and a reader picks a member for a
// field name by its own rule:
//   - last key wins (JavaScript's JSON.parse, Python's json);
//   - first key wins (some Java and Rust configurations, several streaming parsers);
//   - Go's encoding/json: a key fills the field when it equals its name or folds to it
//     (encoding/json/fold.go: ASCII letters to upper case, any other rune to the smallest of its
//     unicode.SimpleFold orbit; the Kelvin sign is K there, the long s is S, dotless i and dotted
//     I fold only to themselves), and the last such key wins; a decoder stops after the first
//     value, ignoring what follows.
// Then each reader follows the model fields (src/proxy/model-fields.ts) and reports the models.
import type { ModelField } from '../../src/proxy/model-fields.js'

export type Json =
  | { t: 'obj', members: Array<[string, Json]> }
  | { t: 'arr', items: Json[] }
  | { t: 'str', v: string }
  | { t: 'lit', v: unknown }

/** Parses one JSON value from `text`; `rest` tells what follows it. Throws on invalid JSON. */
export function parseTree (text: string): { value: Json, rest: string } {
  let i = 0
  const ws = (): void => { while (/[ \t\n\r]/.test(text[i] ?? '')) i++ }
  const str = (): string => {
    const m = /^"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/.exec(text.slice(i))
    if (m === null) throw new Error(`bad string at ${i}`)
    i += m[0].length
    return JSON.parse(m[0]) as string
  }
  const value = (): Json => {
    ws()
    const c = text[i]
    if (c === '{') {
      i++
      const members: Array<[string, Json]> = []
      ws()
      if (text[i] === '}') { i++; return { t: 'obj', members } }
      for (;;) {
        ws()
        const key = str()
        ws()
        if (text[i++] !== ':') throw new Error('colon expected')
        members.push([key, value()])
        ws()
        const d = text[i++]
        if (d === '}') return { t: 'obj', members }
        if (d !== ',') throw new Error('comma expected')
      }
    }
    if (c === '[') {
      i++
      const items: Json[] = []
      ws()
      if (text[i] === ']') { i++; return { t: 'arr', items } }
      for (;;) {
        items.push(value())
        ws()
        const d = text[i++]
        if (d === ']') return { t: 'arr', items }
        if (d !== ',') throw new Error('comma expected')
      }
    }
    if (c === '"') return { t: 'str', v: str() }
    const m = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(i))
    if (m === null) throw new Error(`bad value at ${i}`)
    i += m[0].length
    return { t: 'lit', v: JSON.parse(m[0]) }
  }
  const v = value()
  ws()
  return { value: v, rest: text.slice(i) }
}

const SELF_FOLDING = new Set([0x130, 0x131])

/** Go's foldRune for one code point, with ASCII upper-cased as appendFoldedName does. */
function goFoldRune (c: number): number {
  if (c < 0x80) return c >= 0x61 && c <= 0x7a ? c - 0x20 : c
  if (c === 0x212a) return 0x4b
  if (c === 0x17f) return 0x53
  if (SELF_FOLDING.has(c)) return c
  // Elsewhere the orbit is the rune and its single-rune lower and upper cases.
  const s = String.fromCodePoint(c)
  const orbit = [c, ...[s.toLowerCase(), s.toUpperCase()].filter((x) => [...x].length === 1).map((x) => x.codePointAt(0) ?? c)]
  return Math.min(...orbit)
}

export function goFold (s: string): string {
  return [...s].map((ch) => String.fromCodePoint(goFoldRune(ch.codePointAt(0) ?? 0))).join('')
}

export interface JsonReader {
  name: string
  /** Whether it reads a body with text after its first value (Go's json.Decoder does). */
  trailing: boolean
  member: (obj: Json & { t: 'obj' }, name: string) => Json | undefined
}

function last<T> (xs: readonly T[], test: (x: T) => boolean): T | undefined {
  for (let i = xs.length - 1; i >= 0; i--) if (test(xs[i] as T)) return xs[i]
  return undefined
}

export const JSON_READERS: readonly JsonReader[] = [
  { name: 'last key wins (JSON.parse)', trailing: false, member: (o, n) => last(o.members, ([k]) => k === n)?.[1] },
  { name: 'first key wins', trailing: false, member: (o, n) => o.members.find(([k]) => k === n)?.[1] },
  { name: "Go's encoding/json", trailing: true, member: (o, n) => last(o.members, ([k]) => k === n || goFold(k) === goFold(n))?.[1] },
]

export interface ReadModels {
  /** The models the reader would run (the request's own and every field's), in order. */
  models: string[]
  /** Values of fields that name the request's own model again (must agree with it). */
  agreeing: string[]
}

/**
 * The models a reader finds in `text`: the own model at `own` (null: the path names it), the
 * `fields` below the top level, or with `batch` in each `requests[].params`. Null when it
 * cannot read the body at all.
 */
export function readModels (reader: JsonReader, text: string, own: string | null, fields: readonly ModelField[], batch = false): ReadModels | null {
  let tree: Json
  try {
    const parsed = parseTree(text)
    if (parsed.rest !== '' && !reader.trailing) return null
    tree = parsed.value
  } catch {
    return null
  }
  if (tree.t !== 'obj') return null
  const out: ReadModels = { models: [], agreeing: [] }
  const readObject = (obj: Json & { t: 'obj' }, ownName: string | null): void => {
    if (ownName !== null) {
      const m = reader.member(obj, ownName)
      if (m?.t === 'str') out.models.push(m.v)
    } else {
      const m = reader.member(obj, 'model')
      if (m?.t === 'str') out.agreeing.push(m.v)
    }
    for (const field of fields) follow(reader, obj, field.path.split('.'), field, out)
  }
  if (batch) {
    const requests = reader.member(tree, 'requests')
    for (const item of requests?.t === 'arr' ? requests.items : []) {
      const params = item.t === 'obj' ? reader.member(item, 'params') : undefined
      if (params?.t === 'obj') readObject(params, 'model')
    }
  } else readObject(tree, own)
  return out
}

function follow (reader: JsonReader, node: Json | undefined, parts: string[], field: ModelField, out: ReadModels): void {
  const [part, ...rest] = parts
  if (part === undefined || node?.t !== 'obj') return
  const list = part.endsWith('[]')
  const child = reader.member(node, list ? part.slice(0, -2) : part)
  const push = (v: string): void => { (field.agrees === true ? out.agreeing : out.models).push(v) }
  if (!list) {
    if (rest.length > 0) { follow(reader, child, rest, field, out); return }
    if (child?.t === 'str') push(child.v)
    else if (child === undefined && field.defaultFor !== undefined) {
      const type = reader.member(node, 'type')
      if (type?.t === 'str' && type.v === field.defaultFor.type) push(field.defaultFor.model)
    }
    return
  }
  if (child?.t === 'str' && field.serverChooses?.[child.v] !== undefined) { push(child.v); return }
  if (child?.t !== 'arr') return
  for (const item of child.items) {
    if (rest.length > 0) follow(reader, item, rest, field, out)
    else if (item.t === 'str') push(item.v)
    else if (item.t === 'obj' && field.orObject === true) {
      const m = reader.member(item, 'model')
      if (m?.t === 'str') push(m.v)
    }
  }
}
