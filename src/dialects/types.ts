// What the gateway must know of a provider API: where a request names its model, and how the
// provider shapes an error so that its official SDK raises its usual typed error.
import type { ErrorKind } from '../errors.js'
import type { IdSyntax } from '../policy/model-id.js'

/** The provider APIs the gateway speaks: `dialect:` of an upstream. */
export const DIALECT_NAMES = ['anthropic', 'openai', 'openai-compatible', 'azure-openai', 'gemini', 'vertex', 'bedrock'] as const
export type DialectName = typeof DIALECT_NAMES[number]

/** The path below an upstream's mount as a dialect reads it: decoded once (proxy/upstream-path.ts). */
export interface UpstreamPath {
  /** Starts with "/"; exactly as the client sent it. */
  path: string
  /** "" or "?..." exactly as the client sent it. */
  query: string
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
  /** The endpoint names no model (listings, files): policy.default, or the upstream's `endpoints` list. */
  | { kind: 'none' }
  /** A top-level member of the JSON body (`model`, or Bedrock's `modelId`). */
  | { kind: 'json', field: string }
  /** The one `model` field of a multipart/form-data body (OpenAI audio, image edits). */
  | { kind: 'multipart' }
  /** Every `requests[].params.model` of a batch (Anthropic message batches). */
  | { kind: 'batch' }
  /**
   * A path segment: `segments[segment]` is `prefix + model + suffix` (Gemini's
   * `gemini-2.5-pro:generateContent`). A JSON body may name a model too only if it agrees;
   * with `items`, so must each `requests[].model` (Gemini batchEmbedContents). With
   * `bodyIgnored`, the server reads the path alone (Azure deployments) and the body is not read.
   */
  | { kind: 'path', model: string, segment: number, prefix: string, suffix: string, items?: true, bodyIgnored?: true }
  /** A query parameter (OpenAI Realtime's `?model=`); without it, `missing` says why the model cannot be seen. */
  | { kind: 'query', param: string, missing: string }
  /** The request carries a model the gateway cannot see (OpenAI batches): policy.unknown_model. */
  | { kind: 'unknown', why: string }

/** Dialects whose requests can be routed to each other's upstreams (same wire format). */
export type RouteFamily = 'anthropic' | 'openai' | 'azure-openai' | 'gemini' | 'vertex' | 'bedrock'

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

/** An endpoint table: `POST path` -> where the model is; everything else names none. */
export function endpointTable (post: Readonly<Record<string, ModelSource | 'json'>>): (method: string, key: string) => ModelSource {
  const table = new Map(Object.entries(post).map(([k, v]) => [k, v === 'json' ? JSON_MODEL : v]))
  return (method, key) => (method === 'POST' ? table.get(key) ?? MODEL_LESS : MODEL_LESS)
}

export { MODEL_LESS, JSON_MODEL }
