// OpenAI API (platform.openai.com/docs/guides/error-codes).
// Errors: {"error":{"message":...,"type":...,"param":null,"code":...}}. OpenAI's own region block
// uses code "unsupported_country_region_territory"; the gateway answers a block with the same code.
import type { ErrorKind } from '../errors.js'
import type { Dialect } from './types.js'

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
  internal: { type: 'server_error', code: null },
}

export const openai: Dialect = {
  name: 'openai',
  modelEndpoints: new Set(['/v1/chat/completions', '/v1/completions', '/v1/responses', '/v1/embeddings']),
  multipartEndpoints: new Set(['/v1/audio/transcriptions', '/v1/audio/translations', '/v1/images/edits']),
  renderError: (kind, message) => ({
    error: { message, type: ERROR[kind].type, param: null, code: ERROR[kind].code },
  }),
}
