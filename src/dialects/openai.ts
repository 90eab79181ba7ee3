// OpenAI API (platform.openai.com/docs/api-reference).
// Errors: {"error":{"message":...,"type":...,"param":null,"code":...}}. OpenAI's own region block
// uses code "unsupported_country_region_territory"; the gateway answers a block with the same code.
// The same wire format serves OpenAI-compatible servers (vLLM, Ollama, llama.cpp) and, below
// /openai, Azure OpenAI.
// The endpoint table is an allow-list, taken from the paths the official openai SDK (v6) calls:
// every endpoint is listed with where its model is, or as naming none; any other endpoint is
// policy.unknown_endpoint. The Admin API (/v1/organization/...) is left out.
import { GatewayError, type ErrorKind } from '../errors.js'
import { endpointTable, JSON_MODEL, MODEL_LESS, UNLISTED, type Dialect, type ModelSource, type UpstreamPath } from './types.js'

const ERROR: Readonly<Record<ErrorKind, { type: string, code: string | null }>> = {
  blocked: { type: 'permission_error', code: 'unsupported_country_region_territory' },
  invalid_request: { type: 'invalid_request_error', code: null },
  unauthorized: { type: 'invalid_request_error', code: 'invalid_api_key' },
  not_found: { type: 'invalid_request_error', code: 'unknown_url' },
  too_large: { type: 'invalid_request_error', code: 'request_too_large' },
  headers_too_large: { type: 'invalid_request_error', code: 'request_header_fields_too_large' },
  request_timeout: { type: 'invalid_request_error', code: 'request_timeout' },
  unsupported_media: { type: 'invalid_request_error', code: 'unsupported_content_encoding' },
  bad_gateway: { type: 'server_error', code: 'bad_gateway' },
  gateway_timeout: { type: 'server_error', code: 'gateway_timeout' },
  overloaded: { type: 'server_error', code: 'overloaded' },
  identity_unavailable: { type: 'server_error', code: 'identity_unavailable' },
  internal: { type: 'server_error', code: null },
}

const MULTIPART: ModelSource = { kind: 'multipart' }
/**
 * A form whose `model` OpenAI documents a default for (the openai SDK's parameter docs): without
 * the field, that model runs, and is decided. Another server speaking the API picks its own
 * (serverDefaults below).
 */
const multipartDefault = (model: string): ModelSource => ({ kind: 'multipart', optional: { default: model, why: 'a form without "model" runs the server\'s default model, which the gateway does not see' } })
const NONE = MODEL_LESS
/** A JSON `model` the server may do without: then it uses a model the request does not name. */
const optionalModel = (why: string, with_?: string): ModelSource => ({ kind: 'json', field: 'model', optional: with_ === undefined ? { why } : { with: with_, why } })
const unseen = (why: string): ModelSource => ({ kind: 'unknown', why })
const SESSION_CONFIG = unseen('the gateway does not read the model of a realtime session configuration')
const VIDEO_OF_VIDEO = unseen('a video made from another uses that video\'s model, which the gateway does not see')
const ASSISTANT_RUN = optionalModel('a run without "model" uses its assistant\'s model, which the gateway does not see', 'assistant_id')

/**
 * OpenAI Realtime over WebSocket: `GET /v1/realtime?model=...`; `?call_id=` joins a session set
 * up before, and `?intent=transcription` opens a transcription session whose model is set by a
 * message after the connection opens: neither names a model the gateway can see.
 */
function realtime (param: string, query: string): ModelSource {
  const transcription = new URLSearchParams(query).get('intent') === 'transcription'
  return {
    kind: 'query',
    param,
    missing: transcription
      ? 'a Realtime transcription session (?intent=transcription) names its model in a message after the connection opens, which the gateway does not read'
      : `a Realtime connection without ?${param}= joins a session whose model was set elsewhere`,
  }
}

/** OpenAI's endpoints by key below /v1 (`/v1/...`); undefined when the table does not list it. */
const table = endpointTable({
  // Named in the JSON body.
  'POST /v1/chat/completions': JSON_MODEL,
  'POST /v1/completions': JSON_MODEL,
  'POST /v1/embeddings': JSON_MODEL,
  'POST /v1/audio/speech': JSON_MODEL,
  'POST /v1/realtime/sessions': JSON_MODEL,
  'POST /v1/fine_tuning/jobs': JSON_MODEL,
  'POST /v1/assistants': JSON_MODEL,
  'POST /v1/responses': optionalModel('a Responses call without "model" uses its stored prompt\'s model, which the gateway does not see', 'prompt'),
  'POST /v1/responses/compact': JSON_MODEL,
  'POST /v1/responses/input_tokens': optionalModel('a token count without "model" is for a model the request does not name'),
  'POST /v1/moderations': optionalModel('a moderation without "model" uses the server\'s default model'),
  'POST /v1/images/generations': optionalModel('an image generation without "model" uses the server\'s default model'),
  'POST /v1/assistants/*': optionalModel('an assistant update without "model" keeps a model the gateway does not see'),
  'POST /v1/threads/runs': ASSISTANT_RUN,
  'POST /v1/threads/*/runs': ASSISTANT_RUN,
  // Named in a multipart/form-data field.
  'POST /v1/audio/transcriptions': MULTIPART,
  'POST /v1/audio/translations': MULTIPART,
  'POST /v1/images/edits': multipartDefault('gpt-image-1.5'),
  'POST /v1/images/variations': multipartDefault('dall-e-2'),
  'POST /v1/videos': multipartDefault('sora-2'),
  // Carried, but where the gateway cannot see it: policy.unknown_model.
  'POST /v1/batches': unseen('the models of an OpenAI batch are in its uploaded input file, which the gateway does not see'),
  'POST /v1/realtime/client_secrets': SESSION_CONFIG,
  'POST /v1/realtime/calls': SESSION_CONFIG,
  'POST /v1/realtime/calls/*/accept': SESSION_CONFIG,
  'POST /v1/realtime/transcription_sessions': SESSION_CONFIG,
  'GET /v1/responses': unseen('a Responses WebSocket names its model in each message, which the gateway does not read'),
  'POST /v1/evals': unseen('the gateway does not read the grader models of an eval'),
  'POST /v1/evals/*/runs': unseen('the gateway does not read the models of an eval run\'s data source'),
  'POST /v1/fine_tuning/alpha/graders/run': unseen('the gateway does not read the model of a grader'),
  'POST /v1/chatkit/sessions': unseen('a ChatKit session runs a workflow whose models the gateway does not see'),
  'POST /v1/videos/edits': VIDEO_OF_VIDEO,
  'POST /v1/videos/extensions': VIDEO_OF_VIDEO,
  'POST /v1/videos/*/remix': VIDEO_OF_VIDEO,
  // Names no model: policy.default, or the upstream's `endpoints` list.
  'GET /v1/models': NONE,
  'GET|DELETE /v1/models/*': NONE,
  'GET|POST /v1/files': NONE,
  'GET|DELETE /v1/files/*': NONE,
  'GET /v1/files/*/content': NONE,
  'POST /v1/uploads': NONE,
  'POST /v1/uploads/*/parts': NONE,
  'POST /v1/uploads/*/complete': NONE,
  'POST /v1/uploads/*/cancel': NONE,
  'GET /v1/batches': NONE,
  'GET /v1/batches/*': NONE,
  'POST /v1/batches/*/cancel': NONE,
  'GET /v1/chat/completions': NONE,
  'GET|POST|DELETE /v1/chat/completions/*': NONE,
  'GET /v1/chat/completions/*/messages': NONE,
  'GET|DELETE /v1/responses/*': NONE,
  'GET /v1/responses/*/input_items': NONE,
  'POST /v1/responses/*/cancel': NONE,
  'POST /v1/conversations': NONE,
  'GET|POST|DELETE /v1/conversations/*': NONE,
  'GET|POST /v1/conversations/*/items': NONE,
  'GET|DELETE /v1/conversations/*/items/*': NONE,
  'GET /v1/fine_tuning/jobs': NONE,
  'GET /v1/fine_tuning/jobs/*': NONE,
  'GET /v1/fine_tuning/jobs/*/events': NONE,
  'GET /v1/fine_tuning/jobs/*/checkpoints': NONE,
  'POST /v1/fine_tuning/jobs/*/cancel': NONE,
  'POST /v1/fine_tuning/jobs/*/pause': NONE,
  'POST /v1/fine_tuning/jobs/*/resume': NONE,
  'GET|POST /v1/fine_tuning/checkpoints/*/permissions': NONE,
  'DELETE /v1/fine_tuning/checkpoints/*/permissions/*': NONE,
  'POST /v1/fine_tuning/alpha/graders/validate': NONE,
  'GET|POST /v1/vector_stores': NONE,
  'GET|POST|DELETE /v1/vector_stores/*': NONE,
  'POST /v1/vector_stores/*/search': NONE,
  'GET|POST /v1/vector_stores/*/files': NONE,
  'GET|POST|DELETE /v1/vector_stores/*/files/*': NONE,
  'GET /v1/vector_stores/*/files/*/content': NONE,
  'POST /v1/vector_stores/*/file_batches': NONE,
  'GET /v1/vector_stores/*/file_batches/*': NONE,
  'POST /v1/vector_stores/*/file_batches/*/cancel': NONE,
  'GET /v1/vector_stores/*/file_batches/*/files': NONE,
  'GET|POST /v1/containers': NONE,
  'GET|DELETE /v1/containers/*': NONE,
  'GET|POST /v1/containers/*/files': NONE,
  'GET|DELETE /v1/containers/*/files/*': NONE,
  'GET /v1/containers/*/files/*/content': NONE,
  'GET /v1/evals': NONE,
  'GET|POST|DELETE /v1/evals/*': NONE,
  'GET /v1/evals/*/runs': NONE,
  'GET|POST|DELETE /v1/evals/*/runs/*': NONE,
  'GET /v1/evals/*/runs/*/output_items': NONE,
  'GET /v1/evals/*/runs/*/output_items/*': NONE,
  'GET|POST /v1/skills': NONE,
  'GET|POST|DELETE /v1/skills/*': NONE,
  'GET /v1/skills/*/content': NONE,
  'GET|POST /v1/skills/*/versions': NONE,
  'GET|DELETE /v1/skills/*/versions/*': NONE,
  'GET /v1/skills/*/versions/*/content': NONE,
  'GET /v1/videos': NONE,
  'GET|DELETE /v1/videos/*': NONE,
  'GET /v1/videos/*/content': NONE,
  'POST /v1/videos/characters': NONE,
  'GET /v1/videos/characters/*': NONE,
  'POST /v1/realtime/calls/*/hangup': NONE,
  'POST /v1/realtime/calls/*/refer': NONE,
  'POST /v1/realtime/calls/*/reject': NONE,
  'POST /v1/chatkit/sessions/*/cancel': NONE,
  'GET /v1/chatkit/threads': NONE,
  'GET|DELETE /v1/chatkit/threads/*': NONE,
  'GET /v1/chatkit/threads/*/items': NONE,
  'GET /v1/assistants': NONE,
  'GET|DELETE /v1/assistants/*': NONE,
  'POST /v1/threads': NONE,
  'GET|POST|DELETE /v1/threads/*': NONE,
  'GET|POST /v1/threads/*/messages': NONE,
  'GET|POST|DELETE /v1/threads/*/messages/*': NONE,
  'GET /v1/threads/*/runs': NONE,
  'GET|POST /v1/threads/*/runs/*': NONE,
  'POST /v1/threads/*/runs/*/cancel': NONE,
  'POST /v1/threads/*/runs/*/submit_tool_outputs': NONE,
  'GET /v1/threads/*/runs/*/steps': NONE,
  'GET /v1/threads/*/runs/*/steps/*': NONE,
})

/**
 * Where an OpenAI endpoint names its model, by its key below the API root (`/v1/...`);
 * `realtimeParam` is the query parameter of a Realtime connection (Azure's classic API: `deployment`).
 */
export function openaiEndpoints (method: string, key: string, path: UpstreamPath, realtimeParam = 'model'): ModelSource {
  if (method === 'GET' && key === '/v1/realtime') return realtime(realtimeParam, path.query)
  return table(method, key, path) ?? UNLISTED
}

/**
 * Where an endpoint names its model on a server other than OpenAI's (an OpenAI-compatible server,
 * Azure OpenAI): a model OpenAI documents as its default is not this server's, so a request that
 * leaves it out names a model the gateway cannot see.
 */
export function serverDefaults (source: ModelSource): ModelSource {
  return source.kind === 'multipart' && source.optional?.default !== undefined ? { kind: 'multipart', optional: { why: source.optional.why } } : source
}

export const renderOpenaiError = (kind: ErrorKind, message: string): unknown => ({
  error: { message, type: ERROR[kind].type, param: null, code: ERROR[kind].code },
})

/**
 * Where a Realtime client event names a model: session.update (GA: the session's model and
 * `audio.input.transcription.model`; beta: `input_audio_transcription.model`) and the beta
 * transcription_session.update. Every event is read; those that name none return none.
 */
export function realtimeFrameModels (event: Record<string, unknown>): string[] {
  if (event['type'] !== 'session.update' && event['type'] !== 'transcription_session.update') return []
  const session = event['session']
  if (session === undefined) return []
  if (session === null || typeof session !== 'object' || Array.isArray(session)) throw new GatewayError('invalid_request', `${String(event['type'])}: "session" must be an object`)
  const paths: Array<readonly string[]> = [['model'], ['audio', 'input', 'transcription', 'model'], ['input_audio_transcription', 'model']]
  const models: string[] = []
  for (const path of paths) {
    let at: unknown = session
    for (const key of path) at = at !== null && typeof at === 'object' && !Array.isArray(at) ? (at as Record<string, unknown>)[key] : undefined
    if (at === undefined || at === null) continue
    if (typeof at !== 'string') throw new GatewayError('invalid_request', `${String(event['type'])}: session.${path.join('.')} must be a string`)
    models.push(at)
  }
  return models
}

export const openai: Dialect = {
  name: 'openai',
  family: 'openai',
  endpoint: (method, path) => openaiEndpoints(method, path.key, path),
  webSockets: true,
  frameModels: realtimeFrameModels,
  ids: { api: 'OpenAI' },
  renderError: renderOpenaiError,
}

/**
 * vLLM, Ollama, llama.cpp: the OpenAI wire format, and route targets for OpenAI upstreams. Their
 * ids are plain names where "/" and ":" belong (`meta-llama/Llama-3.1-8B-Instruct`, `llama3.1:8b`).
 */
export const openaiCompatible: Dialect = {
  ...openai,
  name: 'openai-compatible',
  endpoint: (method, path) => serverDefaults(openaiEndpoints(method, path.key, path)),
  ids: { api: 'OpenAI-compatible', plainNames: true },
}
