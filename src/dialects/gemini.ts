// Google Gemini API (ai.google.dev/api). The model is in the path:
//   /v1beta/models/{model}:{action} (generateContent, streamGenerateContent?alt=sse, countTokens,
//   embedContent, batchEmbedContents, batchGenerateContent, ...), also /v1/ and /v1alpha/;
// and in the body of cachedContents ("model": "models/gemini-2.5-pro").
// Errors: {"error":{"code":400,"message":"...","status":"FAILED_PRECONDITION"}}; Google's own
// region block is FAILED_PRECONDITION "User location is not supported for the API use."
import { STATUS, type ErrorKind } from '../errors.js'
import { MODEL_LESS, JSON_MODEL, type Dialect, type ModelSource, type UpstreamPath } from './types.js'

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

export const gemini: Dialect = {
  name: 'gemini',
  family: 'gemini',
  endpoint: (method, path) => {
    const [version = '', collection = '', , ...rest] = path.key.slice(1).split('/')
    if (!VERSIONS.has(version)) return MODEL_LESS
    // /{version}/models/{model}[:action]: every method, since the path names the model.
    if (collection === 'models' && path.segments.length === 3 && rest.length === 0) return modelSegment(path, 2)
    if (collection === 'cachedcontents' && path.segments.length === 2 && method === 'POST') return JSON_MODEL
    return MODEL_LESS
  },
  ids: { api: 'Gemini' },
  renderError: renderGoogleError,
}
