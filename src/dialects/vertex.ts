// Vertex AI (cloud.google.com/vertex-ai/docs/reference/rest). Publisher models are named by
// the path:
//   /v1/projects/{p}/locations/{l}/publishers/{google|anthropic|...}/models/{model}:{action}
//   (generateContent, streamGenerateContent, countTokens, predict; Claude: rawPredict,
//   streamRawPredict, with ids like claude-sonnet-4@20250514 and no model in the body),
//   also /v1beta1, and /v1/publishers/{publisher}/models/{model}:{action} (express mode);
// Claude's token counting is publishers/anthropic/models/count-tokens:rawPredict with the model
// in the body; the OpenAI-compatible endpoints/openapi/chat/completions, cachedContents and
// batchPredictionJobs name it in the body. A deployed endpoint (endpoints/{id}) is opaque. Any
// other endpoint is policy.unknown_endpoint.
// The Live API is a WebSocket, GET /ws/google.cloud.aiplatform.{v1,v1beta1}.LlmBidiService/
//   BidiGenerateContent: the model is `setup.model` of the client's first frame
//   (projects/{p}/locations/{l}/publishers/google/models/{model}).
// Errors are Google's: {"error":{"code":...,"message":...,"status":...}}.
import { modelSegment, renderGoogleError } from './gemini.js'
import { endpointTable, JSON_MODEL, MODEL_LESS, UNLISTED, type Dialect, type ModelSource, type UpstreamPath } from './types.js'

const VERSIONS = new Set(['v1', 'v1beta1'])
const NONE = MODEL_LESS
const unseen = (why: string): ModelSource => ({ kind: 'unknown', why })

/**
 * Below /{version}/projects/{p}/locations/{l}: an allow-list from the paths the official
 * @google/genai SDK calls in Vertex mode, and the OpenAI-compatible endpoints. Publisher models
 * (publishers/{publisher}/models/{model}[:action]) are read before this table.
 */
const located = endpointTable({
  'POST /endpoints/openapi/chat/completions': JSON_MODEL,
  'POST /endpoints/openapi/embeddings': JSON_MODEL,
  'POST /cachedcontents': JSON_MODEL,
  'POST /batchpredictionjobs': JSON_MODEL,
  // A deployed endpoint, or a model of the Model Registry (a tuned or uploaded model).
  '* /endpoints/*': unseen('a deployed Vertex endpoint does not say which model it serves'),
  'POST /endpoints/*/chat/completions': unseen('a deployed Vertex endpoint does not say which model it serves'),
  '* /models/*': unseen('a Vertex Model Registry model does not say which model it is'),
  'POST /tuningjobs': unseen('the gateway does not read the base model of a tuning job'),
  'GET /cachedcontents': NONE,
  'GET|PATCH|DELETE /cachedcontents/*': NONE,
  'GET /batchpredictionjobs': NONE,
  'GET|DELETE /batchpredictionjobs/*': NONE,
  'POST /batchpredictionjobs/*:cancel': NONE,
  'GET /tuningjobs': NONE,
  'GET /tuningjobs/*': NONE,
  'POST /tuningjobs/*:cancel': NONE,
  'GET /operations/*': NONE,
  'GET /publishers/*/models/*/operations/*': NONE,
})

/** The Live API's WebSocket: the session names its model in its first frame. */
const LIVE = /^google\.cloud\.aiplatform\.(v1|v1beta1)\.llmbidiservice$/
const LIVE_SETUP: ModelSource = { kind: 'setup' }

function endpoint (method: string, path: UpstreamPath): ModelSource {
  const key = path.key.slice(1).split('/')
  if (key[0] === 'ws') return method === 'GET' && key.length === 3 && LIVE.test(key[1] ?? '') && key[2] === 'bidigeneratecontent' ? LIVE_SETUP : UNLISTED
  if (!VERSIONS.has(key[0] ?? '')) return UNLISTED
  // Below /{version}/projects/{p}/locations/{l}, or /{version} itself (express mode).
  const at = key[1] === 'projects' && key[3] === 'locations' ? 5 : 1
  const rest = key.slice(at)
  if (rest[0] === 'publishers' && rest[2] === 'models' && rest.length === 4) {
    const found = modelSegment(path, at + 3)
    if (found.kind === 'path' && rest[1] === 'anthropic' && found.model.toLowerCase() === 'count-tokens') return JSON_MODEL
    return found
  }
  if (at === 5) return located(method, `/${rest.join('/')}`, path) ?? UNLISTED
  return UNLISTED
}

export const vertex: Dialect = {
  name: 'vertex',
  family: 'vertex',
  webSockets: true,
  endpoint,
  ids: { api: 'Vertex AI', anyPublisher: true },
  renderError: renderGoogleError,
}
