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
