// Google Gemini API (ai.google.dev/api). The model is in the path:
//   /v1beta/models/{model}:{action} (generateContent, streamGenerateContent?alt=sse, countTokens,
//   embedContent, batchEmbedContents, batchGenerateContent, ...), also /v1/ and /v1alpha/;
//   /v1beta/tunedModels/{name}:{action} for a tuned model (`tunedModels/{name}`, which must be
//   mapped in model_aliases);
// and in the body of cachedContents ("model": "models/gemini-2.5-pro"), of interactions, and of
// the OpenAI-compatible endpoints below /v1beta/openai/ ("model": "gemini-2.5-flash").
// The Live API is a WebSocket, GET /ws/google.ai.generativelanguage.{version}.GenerativeService.
//   BidiGenerateContent?key=...: the model is `setup.model` of the client's first frame; with an
//   ephemeral token, ...BidiGenerateContentConstrained?access_token=auth_tokens/...
// Errors: {"error":{"code":400,"message":"...","status":"FAILED_PRECONDITION"}}; Google's own
// region block is FAILED_PRECONDITION "User location is not supported for the API use."
import { STATUS, type ErrorKind } from '../errors.js'
import { endpointTable, MODEL_LESS, JSON_MODEL, UNLISTED, type Dialect, type ModelSource, type UpstreamPath } from './types.js'

const STATUS_NAME: Readonly<Record<ErrorKind, string>> = {
  blocked: 'FAILED_PRECONDITION',
  invalid_request: 'INVALID_ARGUMENT',
  unauthorized: 'UNAUTHENTICATED',
  not_found: 'NOT_FOUND',
  too_large: 'INVALID_ARGUMENT',
  headers_too_large: 'INVALID_ARGUMENT',
  request_timeout: 'DEADLINE_EXCEEDED',
  unsupported_media: 'INVALID_ARGUMENT',
  bad_gateway: 'UNAVAILABLE',
  gateway_timeout: 'DEADLINE_EXCEEDED',
  overloaded: 'UNAVAILABLE',
  identity_unavailable: 'UNAVAILABLE',
  internal: 'INTERNAL',
}

/** Google's error shape, shared by Gemini and Vertex AI. */
export const renderGoogleError = (kind: ErrorKind, message: string): unknown => ({
  error: { code: STATUS[kind], message, status: STATUS_NAME[kind] },
})

const VERSIONS = new Set(['v1', 'v1beta', 'v1alpha'])

/**
 * The model of a `{model}[:action]` segment at `index`, where the segment before it is
 * "models". Batch embeddings name the model again in each item.
 */
export function modelSegment (path: UpstreamPath, index: number): ModelSource {
  const segment = path.segments[index] ?? ''
  const colon = segment.lastIndexOf(':')
  const model = colon === -1 ? segment : segment.slice(0, colon)
  const suffix = colon === -1 ? '' : segment.slice(colon)
  const endpoint: ModelSource = { kind: 'path', model, segment: index, prefix: '', suffix }
  return /^:batchembedcontents$/i.test(suffix) ? { ...endpoint, items: true } : endpoint
}

/** A tuned model, `/{version}/tunedModels/{name}[:action]`: named `tunedModels/{name}`, which says nothing of its base model. */
function tunedModel (path: UpstreamPath): ModelSource {
  const found = modelSegment(path, 2)
  return found.kind === 'path' ? { ...found, model: `tunedModels/${found.model}`, notRouted: 'a tuned model\'s path' } : found
}

const NONE = MODEL_LESS
const unseen = (why: string): ModelSource => ({ kind: 'unknown', why })

/**
 * The Gemini API below `/{version}`: an allow-list from the paths the official @google/genai
 * SDK calls, and the OpenAI-compatible endpoints below `/{version}/openai`. Any other
 * endpoint is policy.unknown_endpoint.
 */
const endpoints = endpointTable({
  // /{version}/models/{model}[:action]: every method, since the path names the model.
  '* /models/*': (path) => modelSegment(path, 2),
  '* /tunedmodels/*': tunedModel,
  'POST /cachedcontents': JSON_MODEL,
  'POST /interactions': { kind: 'json', field: 'model', optional: { with: 'agent', why: 'an interaction with an agent and no "model" runs the agent\'s model, which the gateway does not see' } },
  'POST /tunedmodels': unseen('the gateway does not read the base model of a tuning job'),
  'POST /auth_tokens': unseen('the gateway does not read the Live API model an ephemeral token is constrained to'),
  // The OpenAI-compatible API (`baseURL: .../v1beta/openai/`).
  'POST /openai/chat/completions': JSON_MODEL,
  'POST /openai/embeddings': JSON_MODEL,
  'POST /openai/images/generations': JSON_MODEL,
  'POST /openai/batches': unseen('the models of an OpenAI batch are in its uploaded input file, which the gateway does not see'),
  'GET /openai/models': NONE,
  'GET /openai/models/*': NONE,
  'POST /openai/files': NONE,
  'GET /openai/files/*': NONE,
  'GET /openai/files/*/content': NONE,
  'GET /openai/batches/*': NONE,
  'POST /openai/batches/*/cancel': NONE,
  // Names no model: policy.default, or the upstream's `endpoints` list.
  'GET /models': NONE,
  'GET /models/*/operations': NONE,
  'GET /models/*/operations/*': NONE,
  'GET /tunedmodels': NONE,
  'GET /tunedmodels/*/operations': NONE,
  'GET /tunedmodels/*/operations/*': NONE,
  'GET /operations/*': NONE,
  'GET /cachedcontents': NONE,
  'GET|PATCH|DELETE /cachedcontents/*': NONE,
  'GET /files': NONE,
  'GET|DELETE /files/*': NONE,
  'POST /files:register': NONE,
  'GET /batches': NONE,
  'GET|DELETE /batches/*': NONE,
  'POST /batches/*:cancel': NONE,
  'GET|POST /filesearchstores': NONE,
  'GET|DELETE /filesearchstores/*': NONE,
  'POST /filesearchstores/*:importfile': NONE,
  'GET /filesearchstores/*/documents': NONE,
  'GET|DELETE /filesearchstores/*/documents/*': NONE,
  'GET /filesearchstores/*/operations/*': NONE,
  'GET /filesearchstores/*/upload/operations/*': NONE,
  'GET|DELETE /interactions/*': NONE,
  'POST /interactions/*/cancel': NONE,
})

/** Uploads, below `/upload/{version}`: files and file search store documents. */
const uploads = endpointTable({
  'POST /files': NONE,
  'POST /filesearchstores/*:uploadtofilesearchstore': NONE,
})

/**
 * The Live API's WebSocket (`/ws/google.ai.generativelanguage.{version}.GenerativeService.{method}`):
 * the session names its model in its first frame. A session on an ephemeral token
 * (`...Constrained`) runs the model the token was created for when the token locks one, whatever
 * the frame says; the gateway does not see the token.
 */
const LIVE = /^google\.ai\.generativelanguage\.(v1|v1beta|v1alpha)\.generativeservice\.(bidigeneratecontent|bidigeneratecontentconstrained)$/
const LIVE_SETUP: ModelSource = { kind: 'setup' }
const LIVE_CONSTRAINED: ModelSource = { kind: 'setup', unseen: 'a Live session on an ephemeral token runs the model the token may lock (set when it was created at auth_tokens), which the gateway does not see' }

function live (method: string, key: readonly string[]): ModelSource {
  const m = method === 'GET' && key.length === 2 ? LIVE.exec(key[1] ?? '') : null
  if (m === null) return UNLISTED
  return m[2] === 'bidigeneratecontent' ? LIVE_SETUP : LIVE_CONSTRAINED
}

export const gemini: Dialect = {
  name: 'gemini',
  family: 'gemini',
  webSockets: true,
  endpoint: (method, path) => {
    const key = path.key.slice(1).split('/')
    if (key[0] === 'ws') return live(method, key)
    const upload = key[0] === 'upload'
    const version = key[upload ? 1 : 0] ?? ''
    if (!VERSIONS.has(version)) return UNLISTED
    const below = `/${key.slice(upload ? 2 : 1).join('/')}`
    return (upload ? uploads : endpoints)(method, below, path) ?? UNLISTED
  },
  ids: { api: 'Gemini' },
  renderError: renderGoogleError,
}
