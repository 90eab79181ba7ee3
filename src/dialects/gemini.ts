// Google Gemini API (ai.google.dev/api). The model is in the path:
//   /v1beta/models/{model}:{action} (generateContent, streamGenerateContent?alt=sse, countTokens,
//   embedContent, batchEmbedContents, batchGenerateContent, ...), also /v1/ and /v1alpha/;
// and in the body of cachedContents ("model": "models/gemini-2.5-pro").
// Errors: {"error":{"code":400,"message":"...","status":"FAILED_PRECONDITION"}}; Google's own
// region block is FAILED_PRECONDITION "User location is not supported for the API use."
import { STATUS, type ErrorKind } from '../errors.js'
import type { Dialect } from './types.js'

const STATUS_NAME: Readonly<Record<ErrorKind, string>> = {
  blocked: 'FAILED_PRECONDITION',
  invalid_request: 'INVALID_ARGUMENT',
  unauthorized: 'UNAUTHENTICATED',
  not_found: 'NOT_FOUND',
  too_large: 'INVALID_ARGUMENT',
  unsupported_media: 'INVALID_ARGUMENT',
  bad_gateway: 'UNAVAILABLE',
  gateway_timeout: 'DEADLINE_EXCEEDED',
  overloaded: 'UNAVAILABLE',
  internal: 'INTERNAL',
}

// /{version}/models/{model} optionally followed by :{action}; the model is one path segment.
const MODEL_PATH = /^\/(v1|v1beta|v1alpha)\/models\/([^/:]+)(:[A-Za-z]+)?\/?$/i

export const gemini: Dialect = {
  name: 'gemini',
  modelEndpoints: new Set(['/v1beta/cachedcontents', '/v1/cachedcontents', '/v1alpha/cachedcontents']),
  pathModel: (path) => {
    const m = MODEL_PATH.exec(path)
    if (m === null) return undefined
    const start = path.indexOf('/models/') + '/models/'.length
    return { model: m[2] ?? '', start, end: start + (m[2] ?? '').length }
  },
  policyModel: (model) => (model.startsWith('models/') ? model.slice('models/'.length) : model),
  renderError: (kind, message) => ({
    error: { code: STATUS[kind], message, status: STATUS_NAME[kind] },
  }),
}
