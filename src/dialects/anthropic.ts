// Anthropic Messages API (docs: platform.claude.com/docs/en/api/errors).
// Errors: {"type":"error","error":{"type":...,"message":...},"request_id":...}
import type { ErrorKind } from '../errors.js'
import { endpointTable, JSON_MODEL, MODEL_LESS, UNLISTED, type Dialect } from './types.js'

const ERROR_TYPE: Readonly<Record<ErrorKind, string>> = {
  blocked: 'permission_error',
  invalid_request: 'invalid_request_error',
  unauthorized: 'authentication_error',
  not_found: 'not_found_error',
  too_large: 'request_too_large',
  headers_too_large: 'invalid_request_error',
  request_timeout: 'timeout_error',
  unsupported_media: 'invalid_request_error',
  bad_gateway: 'api_error',
  gateway_timeout: 'timeout_error',
  overloaded: 'overloaded_error',
  identity_unavailable: 'api_error',
  internal: 'api_error',
}

// An allow-list, from the paths the official @anthropic-ai/sdk calls (beta paths are the same,
// with ?beta=true): every endpoint is listed with where its model is, or as naming none; any
// other endpoint is policy.unknown_endpoint. Claude Managed Agents (agents, sessions,
// environments, ...) and the Admin API (/v1/organizations/...) are left out.
const NONE = MODEL_LESS
const endpoints = endpointTable({
  'POST /v1/messages': JSON_MODEL,
  'POST /v1/messages/count_tokens': JSON_MODEL,
  'POST /v1/complete': JSON_MODEL,
  // Anthropic's OpenAI SDK compatibility layer (docs.claude.com: "OpenAI SDK compatibility").
  'POST /v1/chat/completions': JSON_MODEL,
  'POST /v1/messages/batches': { kind: 'batch' },
  'GET /v1/messages/batches': NONE,
  'GET|DELETE /v1/messages/batches/*': NONE,
  'POST /v1/messages/batches/*/cancel': NONE,
  'GET /v1/messages/batches/*/results': NONE,
  'GET /v1/models': NONE,
  'GET /v1/models/*': NONE,
  'GET|POST /v1/files': NONE,
  'GET|DELETE /v1/files/*': NONE,
  'GET /v1/files/*/content': NONE,
  'GET|POST /v1/skills': NONE,
  'GET|DELETE /v1/skills/*': NONE,
  'GET|POST /v1/skills/*/versions': NONE,
  'GET|DELETE /v1/skills/*/versions/*': NONE,
  'GET /v1/skills/*/versions/*/content': NONE,
})

export const anthropic: Dialect = {
  name: 'anthropic',
  family: 'anthropic',
  endpoint: (method, path) => endpoints(method, path.key, path) ?? UNLISTED,
  ids: { api: 'Anthropic' },
  renderError: (kind, message, decisionId) => ({
    type: 'error',
    error: { type: ERROR_TYPE[kind], message },
    request_id: decisionId,
  }),
}

/**
 * A self-hosted server speaking the Anthropic API (vLLM, Ollama, llama.cpp, LiteLLM): the same
 * endpoints and errors, and route targets for Anthropic upstreams. Its ids are plain names where
 * "/" and ":" belong (`Qwen/Qwen3-8B`, `qwen3:8b`), as on an OpenAI-compatible server.
 */
export const anthropicCompatible: Dialect = { ...anthropic, name: 'anthropic-compatible', ids: { api: 'Anthropic-compatible', plainNames: true } }
