// Vertex AI (cloud.google.com/vertex-ai/docs/reference/rest). Publisher models are named by
// the path:
//   /v1/projects/{p}/locations/{l}/publishers/{google|anthropic|...}/models/{model}:{action}
//   (generateContent, streamGenerateContent, countTokens, predict; Claude: rawPredict,
//   streamRawPredict, with ids like claude-sonnet-4@20250514 and no model in the body),
//   also /v1beta1, and /v1/publishers/{publisher}/models/{model}:{action} (express mode);
// Claude's token counting is publishers/anthropic/models/count-tokens:rawPredict with the model
// in the body; the OpenAI-compatible endpoints/openapi/chat/completions, cachedContents and
// batchPredictionJobs name it in the body. A deployed endpoint (endpoints/{id}) is opaque.
// Errors are Google's: {"error":{"code":...,"message":...,"status":...}}.
import { modelSegment, renderGoogleError } from './gemini.js'
import { JSON_MODEL, MODEL_LESS, type Dialect, type ModelSource, type UpstreamPath } from './types.js'

const VERSIONS = new Set(['v1', 'v1beta1'])
const BODY_MODEL = new Set(['endpoints/openapi/chat/completions', 'endpoints/openapi/embeddings', 'cachedcontents', 'batchpredictionjobs'])

function endpoint (method: string, path: UpstreamPath): ModelSource {
  const key = path.key.slice(1).split('/')
  if (!VERSIONS.has(key[0] ?? '')) return MODEL_LESS
  // Below /{version}/projects/{p}/locations/{l}, or /{version} itself (express mode).
  const at = key[1] === 'projects' && key[3] === 'locations' ? 5 : 1
  const rest = key.slice(at)
  if (rest[0] === 'publishers' && rest[2] === 'models' && rest.length === 4) {
    const found = modelSegment(path, at + 3)
    if (found.kind === 'path' && rest[1] === 'anthropic' && found.model.toLowerCase() === 'count-tokens') return JSON_MODEL
    return found
  }
  if (at === 5 && method === 'POST' && BODY_MODEL.has(rest.join('/'))) return JSON_MODEL
  if (at === 5 && rest[0] === 'endpoints' && rest[1] !== 'openapi' && rest.length >= 2) {
    return { kind: 'unknown', why: 'a deployed Vertex endpoint does not say which model it serves' }
  }
  return MODEL_LESS
}

export const vertex: Dialect = {
  name: 'vertex',
  family: 'vertex',
  endpoint,
  ids: { api: 'Vertex AI', anyPublisher: true },
  renderError: renderGoogleError,
}
