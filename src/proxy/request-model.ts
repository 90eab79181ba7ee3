// Every model a JSON request body names: its own (`model`, Bedrock's `modelId`), and each field
// through which it has the upstream run another (proxy/model-fields.ts). Anything the gateway
// cannot read with certainty is refused with a 400: the gateway never guesses, and never
// forwards what it did not check. Two readings that servers are known to differ on are refused
// wherever they could change a model: a key repeated in one object (JavaScript keeps the last,
// others the first), and a key that folds to a field's name (Go's encoding/json reads `MODEL`
// as `model`; proxy/key-fold.ts).
import { isUtf8 } from 'node:buffer'
import { GatewayError } from '../errors.js'
import { modelIdProblem } from '../policy/model-id.js'
import { firstDuplicateKey, keyCount, topLevelMembers, type Member } from './json-members.js'
import { foldsTo } from './key-fold.js'
import type { ModelField } from './model-fields.js'

/**
 * A body is checked as UTF-8 natively (buffer.isUtf8: overlong forms and surrogates refused, as
 * a fatal TextDecoder refuses them) and then parsed from its bytes read as Latin-1, one
 * character per byte: for valid UTF-8 the JSON grammar is the same either way (every
 * structural character, quote, backslash and control character is ASCII, and no byte of a
 * multi-byte character is one), so JSON.parse accepts and refuses exactly the same bodies,
 * and a prompt in any script is parsed without being decoded (decoding a 1 MiB body costs more
 * than parsing it). The few strings the gateway reads (keys on the way to a model field, and
 * the models) are decoded from Latin-1 back to UTF-8 where they hold a byte above 0x7f
 * (`utf8Of`). A byte order mark (EF BB BF) stays three characters that JSON.parse refuses.
 */
const NON_ASCII = /[\u0080-\u00ff]/

/** A string of a body parsed as Latin-1, as the UTF-8 it was. */
function utf8Of (latin1: string): string {
  return NON_ASCII.test(latin1) ? Buffer.from(latin1, 'latin1').toString('utf8') : latin1
}

type JsonObject = Record<string, unknown>

export interface BodyModel {
  model: string
  /** Where the model's value is in the body, to rewrite it for a route. */
  member: Member
}

/** A model named by another field than the request's own. */
export interface FieldModel {
  /** The model id; for a server's own choice, the word that asks for it ("default"). */
  model: string
  /** Where in the body: `tools[1].model`. */
  at: string
  /** It names the request's own model again, and must agree with it. */
  agrees: boolean
  /** The server chooses the model: why the gateway cannot see it (policy.unknown_model). */
  unseen?: string
  /** The model is the default of a tool of this type that names none (`image_generation`). */
  defaultOf?: string
}

/** The body as a JSON object; a key repeated in any of its objects is refused. */
function parseObject (body: Buffer | undefined): JsonObject {
  if (body === undefined || body.length === 0) {
    throw new GatewayError('invalid_request', 'the request has no body; a JSON body with a "model" is required')
  }
  let parsed: unknown
  try {
    if (!isUtf8(body)) throw new Error('not UTF-8')
    parsed = JSON.parse(body.toString('latin1'))
  } catch {
    throw new GatewayError('invalid_request', 'the request body is not valid JSON in UTF-8')
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new GatewayError('invalid_request', 'the request body must be a JSON object')
  }
  // JSON.parse keeps one value per key: fewer keys kept than written means a repeated key.
  if (keyCount(body) !== parsedKeyCount(parsed)) {
    let dup: { at: string, key: string } | null = null
    try {
      dup = firstDuplicateKey(body)
    } catch { /* nested past the stack: the message names no key */ }
    const where = dup === null || dup.at === '' ? '' : `${dup.at}: `
    const what = dup === null ? 'a key more than once' : `more than one "${dup.key}" key`
    throw new GatewayError('invalid_request', `${where}the request body has ${what} in one object; parsers disagree on which one counts`)
  }
  return parsed as JsonObject
}

/** Every key of every object in a parsed JSON value (iteratively: nesting depth is the client's). */
function parsedKeyCount (root: unknown): number {
  let n = 0
  const stack: unknown[] = [root]
  while (stack.length > 0) {
    const v = stack.pop()
    if (v === null || typeof v !== 'object') continue
    if (Array.isArray(v)) {
      for (const e of v) if (e !== null && typeof e === 'object') stack.push(e)
      continue
    }
    for (const key in v) {
      n++
      const e = (v as JsonObject)[key]
      if (e !== null && typeof e === 'object') stack.push(e)
    }
  }
  return n
}

function isObject (v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

/**
 * `obj[name]` (a string as UTF-8: see utf8Of), refused when another key of `obj` folds to `name`
 * (a server could read that one). `name` is ASCII, so it is the same key in Latin-1.
 */
function lookup (obj: JsonObject, name: string, where: Where): unknown {
  for (const raw in obj) {
    const key = utf8Of(raw)
    if (key.length === name.length && key !== name && foldsTo(key, name)) {
      throw new GatewayError('invalid_request', `${prefix(where)}the request body has a key "${key}", which servers that match keys ignoring case (Go's encoding/json) read as "${name}"`)
    }
  }
  const value = Object.hasOwn(obj, name) ? obj[name] : undefined
  return typeof value === 'string' ? utf8Of(value) : value
}

/** Where in the body, built into text only for a message: `requests[0].params`. */
type Where = { up: Where, part: string | number } | null

function text (where: Where): string {
  if (where === null) return ''
  const up = text(where.up)
  return typeof where.part === 'number' ? `${up}[${where.part}]` : up === '' ? where.part : `${up}.${where.part}`
}

const prefix = (where: Where): string => (where === null ? '' : `${text(where)}: `)

/** The request's own model: the member `field` of `obj`, required. */
function ownModel (obj: JsonObject, where: Where, field = 'model'): string {
  const model = lookup(obj, field, where)
  if (typeof model !== 'string' || model === '') {
    throw new GatewayError('invalid_request', model === undefined
      ? `${prefix(where)}the request body has no "${field}"`
      : `${prefix(where)}"${field}" must be a non-empty string`)
  }
  return checkModelId(model, prefix(where), field)
}

/**
 * The fields of a list as one tree, so that a way several fields share (`messages[].content[]`)
 * is walked once: at each node, the keys to look up, the elements to walk if it is a list, and
 * the field whose model it holds (or whose list of models it is).
 */
interface Node {
  keys: Map<string, Node>
  each?: Node
  /** The value here names a model. */
  model?: ModelField
  /** The value here is a list of models. */
  list?: ModelField
}

const TREES = new WeakMap<readonly ModelField[], Node>()

function treeOf (fields: readonly ModelField[]): Node {
  let root = TREES.get(fields)
  if (root !== undefined) return root
  root = { keys: new Map() }
  for (const field of fields) {
    let node = root
    const parts = field.path.split('.')
    parts.forEach((part, i) => {
      const list = part.endsWith('[]')
      const key = list ? part.slice(0, -2) : part
      let next = node.keys.get(key)
      if (next === undefined) node.keys.set(key, next = { keys: new Map() })
      const last = i === parts.length - 1
      if (last && list) next.list = field
      else if (last) next.model = field
      else if (list) next = next.each ??= { keys: new Map() }
      node = next
    })
  }
  TREES.set(fields, root)
  return root
}

/**
 * Every model `fields` name below `obj`, in order of the body. The way to a model is followed
 * through objects and lists only (a message's `content` may be a string); the value that names
 * a model must be a model id, or is refused.
 */
export function fieldModels (obj: JsonObject, fields: readonly ModelField[], where: Where = null): FieldModel[] {
  const out: FieldModel[] = []
  walk(obj, treeOf(fields), where, out)
  return out
}

function walk (value: unknown, node: Node, where: Where, out: FieldModel[]): void {
  if (node.each !== undefined && Array.isArray(value)) {
    const each = node.each
    value.forEach((e: unknown, n) => { walk(e, each, { up: where, part: n }, out) })
  }
  if (node.keys.size === 0 || !isObject(value)) return
  for (const [key, child] of node.keys) {
    const at = { up: where, part: key }
    const v = lookup(value, key, where)
    if (child.model !== undefined) modelAt(value, v, child.model, at, out)
    if (child.list !== undefined) listAt(v, child.list, at, out)
    if (v !== undefined && v !== null && (child.keys.size > 0 || child.each !== undefined)) walk(v, child, at, out)
  }
}

function found (model: string, field: ModelField, where: Where, out: FieldModel[]): void {
  const at = text(where)
  out.push({ model: checkModelId(model, '', at), at, agrees: field.agrees === true })
}

/** The value `v` of `obj`'s member at `where`, which names a model. */
function modelAt (obj: JsonObject, v: unknown, field: ModelField, where: Where, out: FieldModel[]): void {
  if (v === undefined || v === null) {
    // A tool of a kind that runs a model by default runs that one.
    const dflt = field.defaultFor
    if (dflt !== undefined && lookup(obj, 'type', where?.up ?? null) === dflt.type) out.push({ model: dflt.model, at: text(where), agrees: false, defaultOf: dflt.type })
    return
  }
  if (typeof v !== 'string') throw new GatewayError('invalid_request', `"${text(where)}" must be a model id`)
  found(v, field, where, out)
}

/** A list of models (`fallbacks`): each a model id, or an object naming one; or a word that has the server choose. */
function listAt (v: unknown, field: ModelField, where: Where, out: FieldModel[]): void {
  if (v === undefined || v === null) return
  const chooses = typeof v === 'string' ? field.serverChooses?.[v] : undefined
  if (chooses !== undefined) {
    out.push({ model: v as string, at: text(where), agrees: false, unseen: chooses })
    return
  }
  if (!Array.isArray(v)) throw new GatewayError('invalid_request', `"${text(where)}" must be a list of models`)
  v.forEach((e: unknown, n) => {
    const at = { up: where, part: n }
    if (typeof e === 'string') found(utf8Of(e), field, at, out)
    else if (isObject(e) && field.orObject === true) {
      const model = lookup(e, 'model', at)
      if (typeof model !== 'string') throw new GatewayError('invalid_request', `"${text(at)}.model" must be a model id`)
      found(model, field, { up: at, part: 'model' }, out)
    } else throw new GatewayError('invalid_request', `"${text(at)}" must be a model id`)
  })
}

export interface JsonModels {
  /** The request's own model, and where a route rewrites it. */
  own: BodyModel
  /** Every model other fields name. */
  others: FieldModel[]
}

/** The models of a JSON body whose own model is its top-level `field` (`model`; Bedrock's StartAsyncInvoke: `modelId`). */
export function modelsFromJsonBody (body: Buffer | undefined, field: string, fields: readonly ModelField[]): JsonModels {
  const parsed = parseObject(body)
  const model = ownModel(parsed, null, field)
  // Its bytes, for a route to rewrite: the key is in the body once (parseObject checked).
  const member = topLevelMembers(body ?? Buffer.alloc(0)).find((m) => m.key === field)
  if (member === undefined) throw new GatewayError('internal', `the body's "${field}" was parsed but not found`)
  return { own: { model, member }, others: fieldModels(parsed, fields) }
}

/**
 * The model of a Live API session's first frame, `{"setup":{"model":"models/..."}}`, and where
 * its value is in the frame's bytes (a route rewrites it there). The frame is read as a body is:
 * a JSON object in UTF-8, no key twice, no key that folds to `setup` or `model`.
 */
export function setupModel (frame: Buffer): BodyModel {
  try {
    return readSetup(frame)
  } catch (err) {
    // Said of the first message, not of a body.
    if (err instanceof GatewayError && err.kind === 'invalid_request') throw new GatewayError(err.kind, err.message.replace('the request body', 'the session\'s first message'))
    throw err
  }
}

function readSetup (frame: Buffer): BodyModel {
  const parsed = parseObject(frame)
  const setup = lookup(parsed, 'setup', null)
  if (!isObject(setup)) {
    throw new GatewayError('invalid_request', setup === undefined
      ? 'the session\'s first message has no "setup"; a Live session begins with {"setup":{"model":...}}'
      : '"setup" must be an object')
  }
  const model = ownModel(setup, { up: null, part: 'setup' })
  // Its bytes: each key is in its object once (parseObject checked).
  const outer = topLevelMembers(frame).find((m) => m.key === 'setup')
  const inner = outer === undefined ? undefined : topLevelMembers(frame.subarray(outer.start, outer.end)).find((m) => m.key === 'model')
  if (outer === undefined || inner === undefined) throw new GatewayError('internal', 'the frame\'s "setup.model" was parsed but not found')
  return { model, member: { key: 'model', start: outer.start + inner.start, end: outer.start + inner.end } }
}

/**
 * For an endpoint whose path names the model: every model its JSON body names as well (the
 * top-level `model`, which must agree with the path, and `fields`). With `items`, the body must
 * hold a non-empty `requests` list (Gemini's batchEmbedContents). An empty body names none; a
 * body that is not a JSON object is refused.
 */
export function bodyModels (body: Buffer | undefined, items: boolean, fields: readonly ModelField[], maxItems = Infinity): FieldModel[] {
  if (body === undefined || body.length === 0) return []
  const parsed = parseObject(body)
  const out: FieldModel[] = []
  const model = lookup(parsed, 'model', null)
  if (model !== undefined) {
    if (typeof model !== 'string' || model === '') throw new GatewayError('invalid_request', '"model" must be a non-empty string')
    out.push({ model: checkModelId(model, ''), at: 'model', agrees: true })
  }
  if (items) {
    const requests = lookup(parsed, 'requests', null)
    if (!Array.isArray(requests) || requests.length === 0) throw new GatewayError('invalid_request', 'a batch needs exactly one non-empty "requests" list')
    checkItemCount(requests.length, maxItems)
  }
  return [...out, ...fieldModels(parsed, fields)]
}

/**
 * Every model of an Anthropic message batch: each `requests[].params.model`, and the models
 * each item's `fields` name, in order, each read with the same care as a single request's.
 * A batch passes only if every model passes.
 */
export function batchModels (body: Buffer | undefined, fields: readonly ModelField[], maxItems = Infinity): FieldModel[] {
  const parsed = parseObject(body)
  const requests = lookup(parsed, 'requests', null)
  if (!Array.isArray(requests) || requests.length === 0) {
    throw new GatewayError('invalid_request', 'a batch needs exactly one non-empty "requests" list')
  }
  checkItemCount(requests.length, maxItems)
  const out: FieldModel[] = []
  requests.forEach((item: unknown, i) => {
    const where: Where = { up: { up: null, part: 'requests' }, part: i }
    const params = isObject(item) ? lookup(item, 'params', where) : undefined
    if (!isObject(params)) throw new GatewayError('invalid_request', `${text(where)} has no "params" object`)
    const at: Where = { up: where, part: 'params' }
    out.push({ model: ownModel(params, at), at: `${text(at)}.model`, agrees: false })
    out.push(...fieldModels(params, fields, at))
  })
  return out
}

/** A batch of more requests than server.batch_max_items is refused before any item is read. */
function checkItemCount (count: number, maxItems: number): void {
  if (count > maxItems) throw new GatewayError('too_large', `the batch has ${count} requests, more than server.batch_max_items (${maxItems})`)
}

/** Whether a JSON object body has no top-level `field` (and has `with`, if given). */
export function lacksMember (body: Buffer | undefined, field: string, with_: string | undefined): boolean {
  if (body === undefined || !isUtf8(body)) return false
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'))
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return false
    return !(field in parsed) && (with_ === undefined || with_ in parsed)
  } catch {
    return false
  }
}

/** The model id as it is, or a 400 saying why it is not one (policy/model-id.ts). */
export function checkModelId (model: string, where: string, field = 'model'): string {
  const problem = modelIdProblem(model)
  if (problem === null) return model
  throw new GatewayError('invalid_request', model === '' ? `${where}"${field}" must be a non-empty string` : `${where}"${field}" is not a model id (${problem})`)
}
