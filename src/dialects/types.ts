// What the gateway must know of a provider API: where a request names its model, and how the
// provider shapes an error so that its official SDK raises its usual typed error.
import type { ErrorKind } from '../errors.js'
import type { IdSyntax } from '../policy/model-id.js'

/** The provider APIs the gateway speaks: `dialect:` of an upstream. */
export const DIALECT_NAMES = ['anthropic', 'anthropic-compatible', 'openai', 'openai-compatible', 'azure-openai', 'gemini', 'vertex', 'bedrock'] as const
export type DialectName = typeof DIALECT_NAMES[number]

/** One query parameter: its name and value decoded, and the `name=value` text as it was sent. */
export interface QueryParam {
  name: string
  value: string
  raw: string
}

/** The path below an upstream's mount as a dialect reads it: decoded once (proxy/upstream-path.ts). */
export interface UpstreamPath {
  /** Starts with "/"; exactly as the client sent it. */
  path: string
  /** "" or "?..." exactly as the client sent it. */
  query: string
  /** The query's parameters, in order, each name and value decoded once (proxy/upstream-path.ts). */
  params: readonly QueryParam[]
  /** The raw segments after the leading "/" (a trailing slash dropped). */
  raw: readonly string[]
  /** The same segments, each percent-decoded once. */
  segments: readonly string[]
  /** The decoded path as endpoints are matched: "/" + segments, lower case. */
  key: string
  /** Indexes of segments that held an encoded slash. */
  encodedSlashes: readonly number[]
}

/** Where an endpoint names its model. */
export type ModelSource =
  /**
   * A listed endpoint that names no model (listings, files): policy.default, or the upstream's
   * `endpoints` list. With `idSegment`, that segment is one opaque id that may hold an encoded
   * slash (Bedrock's GetAsyncInvoke takes an invocation ARN, which the SDK sends with `%2F`).
   */
  | { kind: 'none', idSegment?: number }
  /**
   * A top-level member of the JSON body (`model`, or Bedrock's `modelId`). With `optional`, a
   * body without it (and, with `optional.with`, with that member) carries a model the gateway
   * cannot see, `optional.why` (a Responses call on a stored prompt): policy.unknown_model.
   * With `modelItself`, the member names a model, never one of the dialect's opaque names (an
   * Azure fine-tuning job's base model is a model, not a deployment).
   */
  | { kind: 'json', field: string, optional?: { with?: string, why: string }, modelItself?: true }
  /**
   * The one `model` field of a multipart/form-data body (OpenAI audio, image edits). With
   * `optional`, a form without one runs `optional.default` (the provider's documented default,
   * decided as the model), or, without a default, a model the gateway cannot see, `optional.why`
   * (policy.unknown_model).
   */
  | { kind: 'multipart', optional?: { default?: string, why: string } }
  /** Every `requests[].params.model` of a batch (Anthropic message batches). */
  | { kind: 'batch' }
  /**
   * A path segment: `segments[segment]` is `prefix + model + suffix` (Gemini's
   * `gemini-2.5-pro:generateContent`). A JSON body may name a model too only if it agrees;
   * with `items`, so must each `requests[].model` (Gemini batchEmbedContents). With
   * `bodyIgnored`, the server reads the path alone (Azure deployments) and the body is not read.
   * With `notRouted`, the model is not the segment alone (Gemini's `tunedModels/x`): a route,
   * which rewrites the segment, is refused for that reason.
   */
  | { kind: 'path', model: string, segment: number, prefix: string, suffix: string, items?: true, bodyIgnored?: true, notRouted?: string }
  /** A query parameter (OpenAI Realtime's `?model=`); without it, `missing` says why the model cannot be seen. */
  | { kind: 'query', param: string, missing: string }
  /**
   * `setup.model` of the first client frame of a WebSocket session (Gemini Live:
   * `{"setup":{"model":"models/..."}}`): the upgrade is taken, and the session decided once that
   * frame is in (transport/live.ts). With `unseen`, the model that runs may not be the one the
   * frame names (an ephemeral token locks its own): policy.unknown_model, and why.
   */
  | { kind: 'setup', unseen?: string }
  /** The request carries a model the gateway cannot see (OpenAI batches): policy.unknown_model. */
  | { kind: 'unknown', why: string }
  /**
   * An endpoint the dialect's table does not list: the gateway does not know whether or where it
   * names a model. policy.unknown_endpoint, unless the upstream's `endpoints` lists it.
   */
  | { kind: 'unlisted' }

/** Dialects whose requests can be routed to each other's upstreams (same wire format). */
export type RouteFamily = 'anthropic' | 'openai' | 'azure-openai' | 'gemini' | 'vertex' | 'bedrock'

/**
 * A request header through which the upstream runs a model (Azure OpenAI names deployments in
 * headers as well as in the path and body).
 */
export interface ModelHeader {
  /** Lower case. */
  name: string
  /** `request`: the deployment the request runs, standing in for an own model the body leaves out; or the tool type whose default it replaces. */
  runs: 'request' | { toolType: string }
}

export interface Dialect {
  name: DialectName
  family: RouteFamily
  /** Where a request (method, decoded path below the mount) names its model. */
  endpoint: (method: string, path: UpstreamPath) => ModelSource
  /**
   * A model id that names no model by itself (an Azure deployment, a Bedrock application
   * inference profile ARN): it must be mapped in the upstream's `model_aliases`, or it is
   * decided by policy.unknown_model. Returns why, or null when the id says which model it is.
   */
  opaque?: (model: string) => string | null
  /** Some endpoint of the dialect is a WebSocket session (the WebSocket adapter is loaded for it). */
  webSockets?: true
  /**
   * The models a client's WebSocket event names in-band (OpenAI Realtime's session.update can
   * change the transcription model). Returns them, or throws a 400 for a field that is there but
   * not a string. Without it, the dialect's WebSocket frames name no model.
   */
  frameModels?: (event: Record<string, unknown>) => string[]
  /**
   * Headers that name a model. Where the request's models are read, each one present is decided
   * with them; where they are not (an endpoint naming none, or one the gateway cannot see), it is
   * not forwarded.
   */
  modelHeaders?: readonly ModelHeader[]
  /** How this API spells a model id: which wrappers around a name are wrappers here (policy/model-id.ts). */
  ids: IdSyntax
  /** Requests are signed over path and body (SigV4): a route, which rewrites them, is refused. */
  signed?: true
  /** The response body for an error of this kind, in the provider's own shape. */
  renderError: (kind: ErrorKind, message: string, decisionId: string) => unknown
  /** Headers that go with an error (Bedrock names the exception in x-amzn-ErrorType). */
  errorHeaders?: (kind: ErrorKind) => Readonly<Record<string, string>>
}

/** An endpoint that names no model. */
const MODEL_LESS: ModelSource = { kind: 'none' }
const JSON_MODEL: ModelSource = { kind: 'json', field: 'model' }
const UNLISTED: ModelSource = { kind: 'unlisted' }

/** A row's value: where the model is, or a function of the path (a model in a segment). */
export type EndpointRow = ModelSource | ((path: UpstreamPath) => ModelSource)

/**
 * A dialect's endpoints as an allow-list, one row per endpoint: `"METHOD /path"` -> where its
 * model is. Methods may be joined (`"GET|DELETE /v1/files/*"`) or `*` (any); in the path, `*`
 * is one segment and `*:action` one segment ending in `:action` (Google's custom methods).
 * Matched against the decoded lower-case key; the table is compiled once, at start.
 * Returns undefined for an endpoint the table does not list.
 */
export function endpointTable (rows: Readonly<Record<string, EndpointRow>>): (method: string, key: string, path: UpstreamPath) => ModelSource | undefined {
  const exact = new Map<string, EndpointRow>()
  const patterns: Array<{ methods: ReadonlySet<string> | null, segments: readonly string[], row: EndpointRow }> = []
  for (const [spec, row] of Object.entries(rows)) {
    const m = /^([A-Z|*]+) (\/\S*)$/.exec(spec)
    if (m === null) throw new Error(`endpoint table: "${spec}" is not "METHOD /path"`)
    const methods = m[1] === '*' ? null : new Set((m[1] ?? '').split('|'))
    const key = (m[2] ?? '').toLowerCase()
    if (methods !== null && !key.includes('*')) {
      for (const method of methods) exact.set(`${method} ${key}`, row)
    } else {
      patterns.push({ methods, segments: key.slice(1).split('/'), row })
    }
  }
  return (method, key, path) => {
    const row = exact.get(`${method} ${key}`) ?? matching(method, key)
    return typeof row === 'function' ? row(path) : row
  }
  function matching (method: string, key: string): EndpointRow | undefined {
    const segments = key.slice(1).split('/')
    return patterns.find((p) => (p.methods === null || p.methods.has(method)) && p.segments.length === segments.length &&
      p.segments.every((want, i) => segmentMatches(want, segments[i] ?? '')))?.row
  }
}

function segmentMatches (want: string, segment: string): boolean {
  if (want === '*') return segment !== ''
  if (want.startsWith('*:')) return segment.endsWith(want.slice(1)) && segment.length > want.length - 1
  return want === segment
}

export { MODEL_LESS, JSON_MODEL, UNLISTED }
