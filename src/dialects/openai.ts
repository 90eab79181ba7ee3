// OpenAI API (platform.openai.com/docs/api-reference).
// Errors: {"error":{"message":...,"type":...,"param":null,"code":...}}. OpenAI's own region block
// uses code "unsupported_country_region_territory"; the gateway answers a block with the same code.
// The same wire format serves OpenAI-compatible servers (vLLM, Ollama, llama.cpp) and, below
// /openai, Azure OpenAI's v1 API.
import type { ErrorKind } from '../errors.js'
import { endpointTable, type Dialect, type ModelSource } from './types.js'

const ERROR: Readonly<Record<ErrorKind, { type: string, code: string | null }>> = {
  blocked: { type: 'permission_error', code: 'unsupported_country_region_territory' },
  invalid_request: { type: 'invalid_request_error', code: null },
  unauthorized: { type: 'invalid_request_error', code: 'invalid_api_key' },
  not_found: { type: 'invalid_request_error', code: 'unknown_url' },
  too_large: { type: 'invalid_request_error', code: 'request_too_large' },
  unsupported_media: { type: 'invalid_request_error', code: 'unsupported_content_encoding' },
  bad_gateway: { type: 'server_error', code: 'bad_gateway' },
  gateway_timeout: { type: 'server_error', code: 'gateway_timeout' },
  overloaded: { type: 'server_error', code: 'overloaded' },
  identity_unavailable: { type: 'server_error', code: 'identity_unavailable' },
  internal: { type: 'server_error', code: null },
}

const MULTIPART: ModelSource = { kind: 'multipart' }

/** OpenAI Realtime over WebSocket: `GET /v1/realtime?model=...`, or `?call_id=` for a session set up before. */
const REALTIME: ModelSource = { kind: 'query', param: 'model', missing: 'a Realtime connection without ?model= joins a session whose model was set elsewhere' }

/** OpenAI's endpoints by key below /v1; model lists, files, uploads name no model. */
export const openaiEndpoints = (method: string, key: string): ModelSource => (method === 'GET' && key === '/v1/realtime' ? REALTIME : postEndpoints(method, key))

const postEndpoints = endpointTable({
  '/v1/chat/completions': 'json',
  '/v1/completions': 'json',
  '/v1/responses': 'json',
  '/v1/embeddings': 'json',
  '/v1/moderations': 'json',
  '/v1/images/generations': 'json',
  '/v1/audio/speech': 'json',
  '/v1/realtime/sessions': 'json',
  '/v1/audio/transcriptions': MULTIPART,
  '/v1/audio/translations': MULTIPART,
  '/v1/images/edits': MULTIPART,
  '/v1/batches': { kind: 'unknown', why: 'the models of an OpenAI batch are in its uploaded input file, which the gateway does not see' },
  '/v1/realtime/client_secrets': { kind: 'unknown', why: 'the gateway does not read the model of a realtime session configuration' },
  '/v1/realtime/calls': { kind: 'unknown', why: 'the gateway does not read the model of a realtime session configuration' },
})

export const renderOpenaiError = (kind: ErrorKind, message: string): unknown => ({
  error: { message, type: ERROR[kind].type, param: null, code: ERROR[kind].code },
})

export const openai: Dialect = {
  name: 'openai',
  family: 'openai',
  endpoint: (method, path) => openaiEndpoints(method, path.key),
  ids: { api: 'OpenAI' },
  renderError: renderOpenaiError,
}

/**
 * vLLM, Ollama, llama.cpp: the OpenAI wire format, and route targets for OpenAI upstreams. Their
 * ids are plain names where "/" and ":" belong (`meta-llama/Llama-3.1-8B-Instruct`, `llama3.1:8b`).
 */
export const openaiCompatible: Dialect = { ...openai, name: 'openai-compatible', ids: { api: 'OpenAI-compatible', plainNames: true } }
