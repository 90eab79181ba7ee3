// Stage endpoint, on its own: the upstream mounted at the first segment, the path below it
// decoded once, and where each dialect's endpoint names its model. Refusals are 400s or 404s.
import t from 'tap'
import { findEndpoint, mountedUpstream } from '../../src/pipeline/endpoint.js'
import { POLICY, UPSTREAMS, refusalStatus, testRuntime } from '../support/runtime.js'

t.test('where each request names its model, row by row', async (t) => {
  const runtime = await testRuntime()
  const { config } = runtime
  const rows: Array<[string, string, Record<string, unknown> | number]> = [
    ['POST', '/anthropic/v1/messages', { kind: 'json', field: 'model' }],
    ['POST', '/anthropic/v1/messages?beta=true', { kind: 'json' }],
    ['POST', '/anthropic/v1/messages/batches', { kind: 'batch' }],
    ['GET', '/anthropic/v1/models', { kind: 'none' }],
    ['POST', '/openai/v1/audio/transcriptions', { kind: 'multipart' }],
    ['POST', '/openai/v1/batches', { kind: 'unknown' }],
    ['GET', '/openai/v1/realtime?model=gpt-realtime', { kind: 'query', param: 'model' }],
    ['POST', '/gemini/v1beta/models/gemini-2.5-pro:generateContent', { kind: 'path', model: 'gemini-2.5-pro', prefix: '', suffix: ':generateContent' }],
    ['POST', '/bedrock/model/anthropic.claude-sonnet-4-20250514-v1%3A0/converse', { kind: 'path', model: 'anthropic.claude-sonnet-4-20250514-v1:0' }],
    ['POST', '/azure/openai/deployments/prod-4o/chat/completions', { kind: 'path', model: 'prod-4o', bodyIgnored: true }],
    ['POST', '/anthropic/v1//messages', 400],
    ['POST', '/anthropic/v1/%2e%2e/messages', 400],
    ['POST', '/anthropic/v1/mess%2Fages', 400],
    ['POST', '/anthropic/v1/messages%252F', 400],
  ]
  for (const [method, url, want] of rows) {
    const upstream = mountedUpstream(config, url)
    if (upstream === undefined) throw new Error(`no upstream for ${url}`)
    if (typeof want === 'number') {
      t.equal(await refusalStatus(() => findEndpoint(config, upstream, method, url)), want, `${method} ${url}`)
      continue
    }
    const endpoint = findEndpoint(config, upstream, method, url)
    t.match(endpoint.modelSource, want, `${method} ${url}`)
    t.equal(endpoint.upstream.name, upstream.name)
  }
})

t.test('the body limit is the endpoint\'s; nothing is mounted outside the upstreams', async (t) => {
  const runtime = await testRuntime(`server: { body_limit: 1mb, batch_body_limit: 8mb }\n${UPSTREAMS}${POLICY}`)
  const { config } = runtime
  const anthropic = mountedUpstream(config, '/anthropic/v1/messages')
  if (anthropic === undefined) throw new Error('anthropic is mounted')
  t.equal(findEndpoint(config, anthropic, 'POST', '/anthropic/v1/messages').bodyLimit, 1024 * 1024)
  t.equal(findEndpoint(config, anthropic, 'POST', '/anthropic/v1/messages/batches').bodyLimit, 8 * 1024 * 1024)
  t.equal(mountedUpstream(config, '/nowhere/v1/messages'), undefined)
  t.equal(mountedUpstream(config, '/anthropicx/v1/messages'), undefined)
  t.equal(await refusalStatus(() => findEndpoint(config, anthropic, 'POST', '/anthropicx/v1/messages')), 404)
})

t.test('each dialect\'s table is an allow-list: what it lists, row by row, and what it does not', async (t) => {
  const runtime = await testRuntime(`${UPSTREAMS}  vertex: { url: "http://127.0.0.1:6", dialect: vertex }\n${POLICY}`)
  const { config } = runtime
  const UNLISTED = { kind: 'unlisted' }
  const NONE = { kind: 'none' }
  const JSON = { kind: 'json', field: 'model' }
  const loc = '/vertex/v1/projects/p/locations/us-east5'
  const rows: Array<[string, string, Record<string, unknown>]> = [
    // OpenAI: endpoints that name a model beyond the classic ones.
    ['POST', '/openai/v1/responses/compact', JSON],
    ['POST', '/openai/v1/responses/compact?beta=true', JSON],
    ['POST', '/openai/v1/responses/input_tokens', { kind: 'json', field: 'model', optional: { why: /a token count without "model"/ } }],
    ['POST', '/openai/v1/responses', { kind: 'json', field: 'model', optional: { with: 'prompt', why: /stored prompt/ } }],
    ['POST', '/openai/v1/fine_tuning/jobs', JSON],
    ['POST', '/openai/v1/realtime/transcription_sessions', { kind: 'unknown', why: /realtime session configuration/ }],
    ['GET', '/openai/v1/realtime?intent=transcription', { kind: 'query', param: 'model', missing: /transcription session \(\?intent=transcription\)/ }],
    ['GET', '/openai/v1/realtime?call_id=rtc_1', { kind: 'query', param: 'model', missing: /joins a session whose model was set elsewhere/ }],
    // OpenAI: model-less endpoints, named as such.
    ['GET', '/openai/v1/models', NONE],
    ['GET', '/openai/v1/models/gpt-4o', NONE],
    ['GET', '/openai/v1/files/file-abc/content', NONE],
    ['POST', '/openai/v1/files', NONE],
    ['GET', '/openai/v1/batches/batch_1', NONE],
    ['POST', '/openai/v1/batches/batch_1/cancel', NONE],
    ['GET', '/openai/v1/fine_tuning/jobs/ftjob-1/events', NONE],
    ['POST', '/openai/v1/vector_stores/vs_1/search', NONE],
    ['GET', '/openai/v1/responses/resp_1/input_items', NONE],
    // OpenAI: anything else.
    ['POST', '/openai/v1/foo', UNLISTED],
    ['PUT', '/openai/v1/chat/completions', UNLISTED],
    ['GET', '/openai/v1/chat/completions/a/b/c', UNLISTED],
    ['DELETE', '/openai/v1/files', UNLISTED],
    ['GET', '/openai/v1/organization/usage/completions', UNLISTED],
    ['POST', '/openai/v2/chat/completions', UNLISTED],
    ['POST', '/sovereign/api/chat', UNLISTED],
    // Anthropic.
    ['POST', '/anthropic/v1/complete', JSON],
    ['GET', '/anthropic/v1/messages/batches', NONE],
    ['POST', '/anthropic/v1/messages/batches/msgbatch_1/cancel', NONE],
    ['GET', '/anthropic/v1/messages/batches/msgbatch_1/results', NONE],
    ['GET', '/anthropic/v1/files/file_1/content', NONE],
    ['GET', '/anthropic/v1/messages', UNLISTED],
    ['POST', '/anthropic/v1/agents', UNLISTED],
    ['POST', '/anthropic/v1/messages/batches/msgbatch_1', UNLISTED],
    // Gemini: tuned models, the OpenAI-compatible endpoints, uploads, operations.
    ['POST', '/gemini/v1beta/tunedModels/my-tune:generateContent', { kind: 'path', model: 'tunedModels/my-tune', segment: 2, suffix: ':generateContent', notRouted: /tuned model/ }],
    ['PATCH', '/gemini/v1beta/tunedModels/my-tune', { kind: 'path', model: 'tunedModels/my-tune' }],
    ['POST', '/gemini/v1beta/tunedModels', { kind: 'unknown', why: /base model of a tuning job/ }],
    ['GET', '/gemini/v1beta/tunedModels', NONE],
    ['POST', '/gemini/v1beta/openai/chat/completions', JSON],
    ['POST', '/gemini/v1beta/openai/embeddings', JSON],
    ['GET', '/gemini/v1beta/openai/models', NONE],
    ['POST', '/gemini/v1beta/openai/batches', { kind: 'unknown' }],
    ['POST', '/gemini/v1beta/interactions', { kind: 'json', field: 'model', optional: { with: 'agent' } }],
    ['POST', '/gemini/upload/v1beta/files', NONE],
    ['GET', '/gemini/v1beta/files/abc:download', NONE],
    ['POST', '/gemini/v1beta/batches/b1:cancel', NONE],
    ['GET', '/gemini/v1beta/models/veo-3.0-generate-001/operations/op1', NONE],
    ['POST', '/gemini/v1beta/batches/b1', UNLISTED],
    ['POST', '/gemini/v1beta:chatCompletions', UNLISTED],
    ['POST', '/gemini/v1beta/corpora', UNLISTED],
    ['POST', '/gemini/v2/models/gemini-2.5-pro:generateContent', UNLISTED],
    ['POST', '/gemini/upload/v1beta/models/gemini-2.5-pro:generateContent', UNLISTED],
    // The Live API: a WebSocket, its model in the first message.
    ['GET', '/gemini/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent?key=k', { kind: 'setup' }],
    ['GET', '/gemini/ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContentConstrained?access_token=t', { kind: 'setup', unseen: /ephemeral token/ }],
    ['POST', '/gemini/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent', UNLISTED],
    ['GET', '/gemini/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateMusic', UNLISTED],
    ['GET', '/vertex/ws/google.cloud.aiplatform.v1beta1.LlmBidiService/BidiGenerateContent', { kind: 'setup' }],
    ['GET', '/vertex/ws/google.cloud.aiplatform.v1.LlmBidiService/BidiGenerateContent/x', UNLISTED],
    // Vertex AI.
    ['POST', `${loc}/tuningJobs`, { kind: 'unknown', why: /base model of a tuning job/ }],
    ['POST', `${loc}/models/123:generateContent`, { kind: 'unknown', why: /Model Registry/ }],
    ['POST', `${loc}/endpoints/42/chat/completions`, { kind: 'unknown', why: /deployed Vertex endpoint/ }],
    ['GET', `${loc}/batchPredictionJobs/1`, NONE],
    ['POST', `${loc}/batchPredictionJobs/1:cancel`, NONE],
    ['POST', `${loc}/ragCorpora`, UNLISTED],
    ['POST', '/vertex/v1/cachedContents', UNLISTED],
    // Bedrock.
    ['POST', '/bedrock/model/amazon.nova-sonic-v1%3A0/invoke-with-bidirectional-stream', { kind: 'path', model: 'amazon.nova-sonic-v1:0' }],
    ['POST', '/bedrock/model/amazon.nova-pro-v1%3A0/summarize', UNLISTED],
    ['GET', '/bedrock/async-invoke', NONE],
    ['POST', '/bedrock/guardrail/g1/version/1/apply', NONE],
    ['POST', '/bedrock/foundation-models', UNLISTED],
    // Azure OpenAI: the classic API below /openai is OpenAI's table.
    ['GET', '/azure/openai/deployments', NONE],
    ['GET', '/azure/openai/models?api-version=2024-10-21', NONE],
    ['POST', '/azure/openai/files?api-version=2024-10-21', NONE],
    ['POST', '/azure/openai/batches?api-version=2024-10-21', { kind: 'unknown' }],
    ['POST', '/azure/openai/responses?api-version=2025-04-01-preview', { kind: 'json', field: 'model', optional: { with: 'prompt' } }],
    ['GET', '/azure/openai/realtime?api-version=2025-04-01-preview&deployment=voice', { kind: 'query', param: 'deployment' }],
    ['POST', '/azure/openai/foo', UNLISTED],
    ['POST', '/azure/other/chat/completions', UNLISTED],
  ]
  for (const [method, url, want] of rows) {
    const upstream = mountedUpstream(config, url)
    if (upstream === undefined) throw new Error(`no upstream for ${url}`)
    const source = findEndpoint(config, upstream, method, url).modelSource
    t.match(source, want, `${method} ${url}`)
    if (want === NONE || want === UNLISTED) t.same(source, want, `${method} ${url}: exactly`)
  }
})
