// Stage models: every model the request names, where its endpoint names it (a path segment,
// the query, a JSON body, a multipart field, a batch's items) and in every body field through
// which the upstream would run another (proxy/model-fields.ts), each with its canonical id
// (model_aliases and the dialect's opaque ids first); and the body exactly as it was read, which
// is what the plan sends. Anything that cannot be read with certainty is a GatewayError (400,
// 413, 415): never a pass. No policy is applied here.
import type { IncomingHttpHeaders } from 'node:http'
import type { UpstreamConfig } from '../config/validate.js'
import type { Dialect } from '../dialects/registry.js'
import type { ModelHeader } from '../dialects/types.js'
import { GatewayError } from '../errors.js'
import { canonicalModelId, readModelId } from '../policy/model-id.js'
import { DEFAULT_BATCH_MAX_ITEMS, DEFAULT_MAX_EXPANSION_RATIO } from '../config/validate.js'
import { LARGE_BODY_BYTES } from '../proxy/body-buffer.js'
import { runBodyTask, type BodyTask, type BodyTaskResult } from '../proxy/body-task.js'
import { DECODABLE, codings, decodeBody } from '../proxy/content-encoding.js'
import type { Member } from '../proxy/json-members.js'
import { checkModelId, setupModel, type FieldModel } from '../proxy/request-model.js'
import type { RequestEndpoint } from './endpoint.js'
import type { LargeBodyLease } from './large-bodies.js'

/** A model as the request names it, and what the policy matches it as. */
export interface NamedModel {
  /** As the request wrote it (decoded). */
  written: string
  /** The canonical id (policy/model-id.ts); null when the id names no model by itself. */
  canonical: string | null
  /** The id a glob may match as written (lower case; a model_aliases target replaces it). */
  raw?: string
  /** Why the model cannot be seen (an opaque id not in model_aliases): policy.unknown_model. */
  unseen?: string
}

/** Where a route writes its model: the path segment, the query parameter, or the JSON member. */
export type RewriteAt =
  | { kind: 'path', segment: number, prefix: string, suffix: string }
  | { kind: 'query', param: string }
  /** With `prefix`, the value is `prefix + model` (a Live setup's `models/`). */
  | { kind: 'member', member: Member, prefix?: string }

export interface ModelsRead {
  /** The distinct models the request names, in order; empty when it names none. */
  models: readonly NamedModel[]
  /** Only when `models` is empty: the endpoint carries a model the gateway cannot see, and why. */
  unseen?: string
  /** Only when `models` is empty: the `endpoints` entry that lists this model-less endpoint. */
  listedEndpoint?: string
  /** Only when `models` is empty: an endpoint the dialect does not list ("METHOD /path"): policy.unknown_endpoint. */
  unlistedEndpoint?: string
  /** The models are logged as batch_models: a batch, or any request naming more than one model. */
  batch: boolean
  /** Where a route rewrites the model, or why a route cannot be carried out on this request. */
  rewrite: RewriteAt | { kind: 'refused', why: string }
  /**
   * The body as the gateway read it, which is what is sent: decoded from its Content-Encoding,
   * a form re-encoded; as it came where the endpoint's body is not read.
   */
  body: Buffer | undefined
  /** The Content-Type `body` is sent with, where the gateway read it (JSON, a re-encoded form). */
  contentType?: string
  /** A Content-Encoding was undone: `body` is sent without one. */
  decoded: boolean
  /** Model headers the decision did not read (the endpoint's models were not read): not forwarded. */
  dropHeaders?: readonly string[]
}

export interface ModelsInput {
  endpoint: RequestEndpoint
  method: string
  headers: IncomingHttpHeaders
  body: Buffer | undefined
  /** How the body is read (the server's settings); without it, the defaults, all on this thread. */
  reading?: BodyReading
}

/** The bounds a body is read under, and the request's claim on a large-body slot. */
export interface BodyReading {
  /** server.max_expansion_ratio */
  maxExpansionRatio: number
  /** server.batch_max_items */
  batchMaxItems: number
  /** A body past LARGE_BODY_BYTES takes a slot and is read off the event loop; null: read here. */
  lease: LargeBodyLease | null
}

const DEFAULT_READING: BodyReading = { maxExpansionRatio: DEFAULT_MAX_EXPANSION_RATIO, batchMaxItems: DEFAULT_BATCH_MAX_ITEMS, lease: null }

const JSON_TYPE = 'application/json'
/** A Live setup's model a route can rewrite: `models/{id}`, `{id}`, or a Vertex publisher model; the prefix is kept. */
const SETUP_MODEL = /^((?:projects\/[^/]+\/locations\/[^/]+\/)?(?:publishers\/[^/]+\/)?models\/)?[^/]+$/
const MORE_THAN_ONE = 'a request that names a model in more than one place'

/** A model a request header names (dialect.modelHeaders). */
interface HeaderModel { name: string, model: string, runs: ModelHeader['runs'] }

export async function readModels (input: ModelsInput): Promise<ModelsRead> {
  const { dialect, upstream } = input.endpoint
  const headers = headerModels(dialect, input.headers)
  const read = await readEndpointModels(input, headers)
  if (headers.length === 0) return read
  // Where the request's models were not read, a header's model is not decided: it does not go on.
  if (read.models.length === 0) return { ...read, dropHeaders: headers.map((h) => h.name) }
  const models = distinct([...read.models, ...headers.map((h) => nameModel(dialect, upstream, h.model))])
  return { ...read, models, batch: models.length > 1, rewrite: { kind: 'refused', why: 'a request that names a model in a header' } }
}

function headerModels (dialect: Dialect, headers: IncomingHttpHeaders): HeaderModel[] {
  const out: HeaderModel[] = []
  for (const { name, runs } of dialect.modelHeaders ?? []) {
    const value = headers[name]
    if (value === undefined) continue
    // Node joins a repeated header with ", ": servers disagree on which one counts.
    if (typeof value !== 'string' || value.includes(',')) throw new GatewayError('invalid_request', `the ${name} header names more than one model; a header names one`)
    out.push({ name, model: checkModelId(value, `the ${name} header: `), runs })
  }
  return out
}

async function readEndpointModels (input: ModelsInput, headers: readonly HeaderModel[]): Promise<ModelsRead> {
  const { endpoint, body } = input
  const { modelSource: source, dialect, upstream, path } = endpoint
  // A Live session's first frame is a WebSocket message: no Content-Encoding of the upgrade applies to it.
  const applied = source.kind === 'setup' ? null : codings(input.headers['content-encoding'])
  const unknown = applied?.find((c) => !DECODABLE.has(c))
  if (unknown !== undefined) {
    throw new GatewayError('unsupported_media', `the request body is in Content-Encoding "${unknown}", which the gateway does not decode (gzip, deflate and br are decoded)`)
  }
  const readsBody = source.kind !== 'none' && source.kind !== 'unknown' && source.kind !== 'unlisted' && source.kind !== 'query' && !(source.kind === 'path' && source.bodyIgnored === true)
  const decodes = readsBody && applied !== null && body !== undefined && body.length > 0
  const reading = input.reading ?? DEFAULT_READING
  const { lease } = reading
  const decoded = decodes
    ? await decodeBody(body, applied, { limit: endpoint.bodyLimit, limitSetting: endpoint.limitSetting, ratio: reading.maxExpansionRatio, onLarge: () => { lease?.take() } })
    : body
  // A small body is read here, as it always was; a large one in a worker thread, under its slot.
  const run = async <R extends BodyTaskResult>(task: BodyTask): Promise<R> => {
    if (lease === null || decoded === undefined || decoded.length <= LARGE_BODY_BYTES) return runBodyTask(task, decoded) as R
    lease.take()
    return await lease.read(task, decoded) as R
  }
  const { family } = dialect
  const named = (model: string): NamedModel => nameModel(dialect, upstream, model)
  // A header that names the deployment the request runs stands in for an own model left out.
  const standIn = headers.find((h) => h.runs === 'request')?.model
  // A header that names what a tool runs replaces that tool's default.
  const toolDefaults = (found: FieldModel[]): FieldModel[] => found.map((o) => {
    const header = o.defaultOf === undefined ? undefined : headers.find((h) => typeof h.runs === 'object' && h.runs.toolType === o.defaultOf)
    return header === undefined ? o : { ...o, model: header.model, at: `${o.at} (${header.name})` }
  })
  const read = (models: NamedModel[], rewrite: ModelsRead['rewrite'], more: Partial<ModelsRead> = {}): ModelsRead => {
    const each = distinct(models)
    return { models: each, batch: each.length > 1, rewrite, body: decoded, decoded: decodes, ...more }
  }
  const NOT_ROUTABLE = { kind: 'refused', why: 'a request that names no model' } as const
  // A JSON body read is sent as JSON, whatever the client declared (a server could read the
  // same bytes as a form): the type that was parsed is the type that is forwarded.
  const asJson = { contentType: JSON_TYPE }

  switch (source.kind) {
    case 'none': {
      // An id segment that holds an encoded slash is matched as sent, one segment (`GET /async-invoke/*`).
      const key = source.idSegment === undefined ? `${input.method} ${path.key}` : `${input.method} /${path.segments.map((s, i) => (i === source.idSegment ? path.raw[i] : s)).join('/').toLowerCase()}`
      return read([], NOT_ROUTABLE, upstream.endpoints?.test(key) === true ? { listedEndpoint: key } : {})
    }
    case 'unknown':
      return read([], NOT_ROUTABLE, { unseen: source.why })
    case 'unlisted': {
      // The upstream's `endpoints` list declares such an endpoint model-less.
      const key = `${input.method} ${path.key}`
      if (upstream.endpoints?.test(key) === true) return read([], NOT_ROUTABLE, { listedEndpoint: key })
      return read([], NOT_ROUTABLE, { unlistedEndpoint: `${input.method} ${path.path.length > 200 ? `${path.path.slice(0, 200)}...` : path.path}` })
    }
    case 'query': {
      const values = path.params.filter((p) => p.name === source.param).map((p) => p.value)
      if (values.length > 1) throw new GatewayError('invalid_request', `the query names "${source.param}" more than once; servers disagree on which one counts`)
      const model = values[0]
      if (model === undefined) return read([], NOT_ROUTABLE, { unseen: source.missing })
      return read([named(checkModelId(model, 'the query: '))], { kind: 'query', param: source.param })
    }
    case 'json': {
      const found = await run<Extract<BodyTaskResult, { op: 'json' }>>({ op: 'json', field: source.field, family, optional: source.optional === undefined ? null : { with: source.optional.with } })
      if ('lacks' in found) {
        // A body the endpoint lets do without the model (a stored prompt names it) carries one
        // the gateway cannot see, unless a header names the deployment that runs it.
        if (standIn !== undefined) return read([named(standIn)], NOT_ROUTABLE, asJson)
        return read([], NOT_ROUTABLE, { unseen: source.optional?.why ?? '', ...asJson })
      }
      const own = found.found.own
      const others = toolDefaults(found.found.others)
      const model = nameModel(dialect, upstream, own.model, source.modelItself !== true)
      agree(model, others, 'body')
      return read([model, ...others.filter((o) => !o.agrees).map((o) => fieldModel(o, named))],
        others.length === 0 ? { kind: 'member', member: own.member } : { kind: 'refused', why: MORE_THAN_ONE }, asJson)
    }
    case 'multipart': {
      const { form } = await run<Extract<BodyTaskResult, { op: 'multipart' }>>({ op: 'multipart', contentType: input.headers['content-type'], requireModel: source.optional === undefined })
      const sent = { body: form.body, contentType: form.contentType }
      // A multipart body is not rewritten: where it would be routed, it is blocked.
      const notRouted = { kind: 'refused', why: 'a multipart request' } as const
      if (form.model !== undefined) return read([named(form.model)], notRouted, sent)
      if (standIn !== undefined) return read([named(standIn)], notRouted, sent)
      // Without the field: the provider's documented default runs, or one the gateway cannot see.
      const dflt = source.optional?.default
      if (dflt !== undefined) return read([named(dflt)], notRouted, sent)
      return read([], NOT_ROUTABLE, { unseen: source.optional?.why ?? 'a form without "model"', ...sent })
    }
    case 'batch': {
      // Its items would all need rewriting: a batch is never routed.
      const { models } = await run<Extract<BodyTaskResult, { op: 'models' }>>({ op: 'batch', family, maxItems: reading.batchMaxItems })
      return read(toolDefaults(models).map((o) => fieldModel(o, named)), { kind: 'refused', why: 'a batch' }, { batch: true, ...asJson })
    }
    case 'setup': {
      if (body === undefined) throw new GatewayError('invalid_request', 'the Live API is a WebSocket: this endpoint takes only an upgrade')
      const own = setupModel(body)
      if (source.unseen !== undefined) return read([], NOT_ROUTABLE, { unseen: source.unseen })
      const prefix = SETUP_MODEL.exec(own.model)
      return read([named(own.model)], prefix === null
        ? { kind: 'refused', why: 'a setup model that is not models/{id} or a publisher model' }
        : { kind: 'member', member: own.member, prefix: prefix[1] ?? '' })
    }
    case 'path': {
      const model = named(checkModelId(source.model, 'the path: '))
      // The body may name the model again only to agree with the path; parsers and servers
      // would otherwise disagree on which one counts.
      const again = source.bodyIgnored === true ? [] : toolDefaults((await run<Extract<BodyTaskResult, { op: 'models' }>>({ op: 'path', items: source.items === true, family, maxItems: reading.batchMaxItems })).models)
      agree(model, again, 'path')
      const others = again.filter((o) => !o.agrees).map((o) => fieldModel(o, named))
      const rewrite: ModelsRead['rewrite'] = again.length > 0
        ? { kind: 'refused', why: others.length === 0 ? 'a request naming its model in both path and body' : MORE_THAN_ONE }
        : source.notRouted !== undefined
          ? { kind: 'refused', why: source.notRouted }
          : { kind: 'path', segment: source.segment, prefix: source.prefix, suffix: source.suffix }
      const sent = source.bodyIgnored === true || decoded === undefined || decoded.length === 0 ? {} : asJson
      return read([model, ...others], rewrite, sent)
    }
  }
}

/** Each field that names the request's model again (`by`: the path or the body's own) must name the same one. */
function agree (model: NamedModel, found: readonly FieldModel[], by: 'path' | 'body'): void {
  for (const other of found) {
    if (!other.agrees) continue
    const same = other.model.toLowerCase() === model.written.toLowerCase() || canonicalModelId(other.model) === model.canonical
    if (same) continue
    const first = by === 'path' ? 'the path names' : 'the body\'s "model" names'
    const second = other.at === 'model' ? 'the body names' : `the body's "${other.at}" names`
    throw new GatewayError('invalid_request', `${first} model "${model.written}" and ${second} "${other.model}"; a request names one model`)
  }
}

/** A model another field names; one the server chooses cannot be seen (policy.unknown_model). */
function fieldModel (found: FieldModel, named: (model: string) => NamedModel): NamedModel {
  return found.unseen === undefined ? named(found.model) : { written: found.model, canonical: null, unseen: `"${found.at}": ${found.unseen}` }
}

/** Each model once (as written), in order. */
function distinct (models: readonly NamedModel[]): NamedModel[] {
  const seen = new Set<string>()
  return models.filter((m) => !seen.has(m.written) && seen.add(m.written) !== undefined)
}

/**
 * A model as a request names it, and its canonical id: model_aliases first, then the dialect's
 * opaque ids (unless the field names a model itself), then the id as the dialect spells it (a
 * wrapper it cannot strip is not understood).
 */
export function nameModel (dialect: Dialect, upstream: UpstreamConfig, model: string, opaqueNames = true): NamedModel {
  const alias = upstream.modelAliases.size === 0 ? undefined : upstream.modelAliases.get(model.toLowerCase())
  if (alias !== undefined) return { written: model, canonical: canonicalModelId(alias), raw: alias.toLowerCase() }
  const id = readModelId(model, dialect.ids)
  const opaque = (opaqueNames ? dialect.opaque?.(model) : undefined) ?? ('notUnderstood' in id ? id.notUnderstood : null)
  if (opaque !== null) return { written: model, canonical: null, unseen: `${opaque}; map it in upstreams.${upstream.name}.model_aliases` }
  return { written: model, canonical: 'canonical' in id ? id.canonical : null, raw: model.toLowerCase() }
}
