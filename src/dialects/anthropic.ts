// Anthropic Messages API (docs: platform.claude.com/docs/en/api/errors).
// Errors: {"type":"error","error":{"type":...,"message":...},"request_id":...}
import type { ErrorKind } from '../errors.js'
import { endpointTable, type Dialect } from './types.js'

const ERROR_TYPE: Readonly<Record<ErrorKind, string>> = {
  blocked: 'permission_error',
  invalid_request: 'invalid_request_error',
  unauthorized: 'authentication_error',
  not_found: 'not_found_error',
  too_large: 'request_too_large',
  unsupported_media: 'invalid_request_error',
  bad_gateway: 'api_error',
  gateway_timeout: 'timeout_error',
  overloaded: 'overloaded_error',
  identity_unavailable: 'api_error',
  internal: 'api_error',
}

// /v1/models, /v1/files and the batch results name no model.
const endpoints = endpointTable({
  '/v1/messages': 'json',
  '/v1/messages/count_tokens': 'json',
  '/v1/messages/batches': { kind: 'batch' },
})

export const anthropic: Dialect = {
  name: 'anthropic',
  family: 'anthropic',
  endpoint: (method, path) => endpoints(method, path.key),
  ids: { api: 'Anthropic' },
  renderError: (kind, message, decisionId) => ({
    type: 'error',
    error: { type: ERROR_TYPE[kind], message },
    request_id: decisionId,
  }),
}
