// Vertex AI: the official @anthropic-ai/vertex-sdk as the client for Claude (the model in the
// path as claude-...@date, percent-encoded by the SDK), Google publisher paths, Claude's
// count-tokens (model in the body) and the OpenAI-compatible endpoint through the openai SDK.
import t from 'tap'
import { AnthropicVertex } from '@anthropic-ai/vertex-sdk'
import { APIError } from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { startTestGateway } from '../support/gateway.js'
import { send } from '../support/http.js'

const HONG_KONG = '203.198.0.1'
const UNITED_STATES = '8.8.8.8'
const PROJECT = '/v1/projects/bank-prod/locations/us-east5'

t.test('vertex dialect', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const sovereign = await startFakeUpstream()
  t.teardown(sovereign.close)
  const gw = await startTestGateway(`
server: { host: 127.0.0.1, port: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams:
  vertex: { url: "${upstream.url}", dialect: vertex }
  vertex-sovereign: { url: "${sovereign.url}", dialect: vertex }
policy:
  default: block
  rules:
    - { name: opus-routed, upstreams: [vertex], models: ["claude-opus-*"], deny: [CN], action: { route: { upstream: vertex-sovereign, model: "claude-haiku-4-5@20251001" } } }
    - { name: frontier, upstreams: [vertex], models: ["claude-*", "gemini-*"], deny: [HK, CN, MO], action: block }
    - { name: sovereign, upstreams: [vertex-sovereign], deny: [], action: block }
`)
  t.teardown(gw.close)

  // Google OAuth is the SDK's own business: a pre-made auth client, so nothing leaves loopback.
  const claude = (ip: string): AnthropicVertex => new AnthropicVertex({
    region: 'us-east5',
    projectId: 'bank-prod',
    baseURL: `${gw.url}/vertex/v1`,
    authClient: { getRequestHeaders: async () => new Headers({ authorization: 'Bearer ya29.token-never-logged' }), projectId: 'bank-prod' } as never,
    defaultHeaders: { 'x-forwarded-for': ip },
    maxRetries: 0,
  })

  t.test('Claude on Vertex: the model from the path (claude-...@date), allowed and streamed', async (t) => {
    const msg = await claude(UNITED_STATES).messages.create({ model: 'claude-sonnet-4@20250514', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] })
    t.match(msg.content[0], { type: 'text', text: 'Hello from the fake upstream' })
    t.match(upstream.calls.at(-1)?.url, /^\/v1\/projects\/bank-prod\/locations\/us-east5\/publishers\/anthropic\/models\/claude-sonnet-4(@|%40)20250514:rawPredict/)
    t.match(gw.decisions().at(-1), { action: 'allow', model: 'claude-sonnet-4@20250514', canonical_model: 'claude-sonnet-4-20250514', rule: 'frontier' })
    t.notMatch(gw.rawLogs(), /token-never-logged/)

    let text = ''
    const stream = claude(UNITED_STATES).messages.stream({ model: 'claude-sonnet-4@20250514', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] })
    stream.on('text', (d) => { text += d })
    await stream.finalMessage()
    t.equal(text, 'Hello from the fake upstream')
    t.match(upstream.calls.at(-1)?.url, /:streamRawPredict/)
  })

  t.test('a blocked call is the SDK\'s APIError with status 451, in Google\'s shape', async (t) => {
    const before = upstream.calls.length
    const err = await claude(HONG_KONG).messages.create({ model: 'claude-sonnet-4@20250514', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }).then(() => null, (e: unknown) => e)
    t.ok(err instanceof APIError)
    t.equal((err as APIError).status, 451)
    t.match((err as APIError).message, /Model \\?"claude-sonnet-4@20250514\\?" is not available from HK: blocked by rule \\?"frontier\\?"/)
    t.match((err as APIError).error, { error: { code: 451, status: 'FAILED_PRECONDITION' } })
    t.equal(upstream.calls.length, before)
  })

  t.test('count-tokens names the model in the body', async (t) => {
    const res = await claude(UNITED_STATES).messages.countTokens({ model: 'claude-sonnet-4@20250514', messages: [{ role: 'user', content: 'hi' }] })
    t.equal(res.input_tokens, 12)
    t.match(upstream.calls.at(-1)?.url, /publishers\/anthropic\/models\/count-tokens:rawPredict$/)
    t.match(gw.decisions().at(-1), { action: 'allow', model: 'claude-sonnet-4@20250514' })
    const blocked = await claude(HONG_KONG).messages.countTokens({ model: 'claude-sonnet-4@20250514', messages: [{ role: 'user', content: 'hi' }] }).then(() => null, (e: unknown) => e)
    t.equal((blocked as APIError).status, 451)
  })

  t.test('a route rewrites the model segment of the path', async (t) => {
    const msg = await claude('114.114.114.114').messages.create({ model: 'claude-opus-4-1@20250805', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] })
    t.equal(msg.model, 'claude-haiku-4-5@20251001')
    t.equal(sovereign.calls.at(-1)?.url, `${PROJECT}/publishers/anthropic/models/claude-haiku-4-5@20251001:rawPredict`)
    t.match(gw.decisions().at(-1), { action: 'route', model: 'claude-opus-4-1@20250805', routed_model: 'claude-haiku-4-5@20251001' })
  })

  t.test('Google publisher models, under a project and in express mode', async (t) => {
    for (const path of [`${PROJECT}/publishers/google/models/gemini-2.5-pro:generateContent`, '/v1/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse', `/v1beta1/projects/p/locations/global/publishers/google/models/gemini-2.5-pro:countTokens`]) {
      const hk = await send(`${gw.url}/vertex${path}`, { body: '{"contents":[]}', headers: { 'content-type': 'application/json', 'x-forwarded-for': HONG_KONG } })
      t.equal(hk.status, 451, path)
      t.same(Object.keys(hk.json().error), ['code', 'message', 'status'])
      const us = await send(`${gw.url}/vertex${path}`, { body: '{"contents":[]}', headers: { 'content-type': 'application/json', 'x-forwarded-for': UNITED_STATES } })
      t.equal(us.status, 200, path)
      t.match(gw.decisions().at(-1), { action: 'allow', model: 'gemini-2.5-pro', rule: 'frontier' })
    }
  })

  t.test('the OpenAI-compatible endpoint: the openai SDK, the model in the body as publisher/model', async (t) => {
    const client = (ip: string): OpenAI => new OpenAI({ apiKey: 'ya29.token', baseURL: `${gw.url}/vertex${PROJECT}/endpoints/openapi`, defaultHeaders: { 'x-forwarded-for': ip }, maxRetries: 0 })
    const ok = await client(UNITED_STATES).chat.completions.create({ model: 'google/gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }] })
    t.equal(ok.choices[0]?.message.content, 'Hello from the fake upstream')
    t.match(gw.decisions().at(-1), { action: 'allow', model: 'google/gemini-2.5-flash', canonical_model: 'gemini-2.5-flash' })
    const err = await client(HONG_KONG).chat.completions.create({ model: 'google/gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }] }).then(() => null, (e: unknown) => e)
    t.equal((err as { status?: number }).status, 451)
  })

  t.test('cachedContents and batchPredictionJobs name the model in the body', async (t) => {
    for (const path of [`${PROJECT}/cachedContents`, `${PROJECT}/batchPredictionJobs`]) {
      const body = JSON.stringify({ model: 'projects/bank-prod/locations/us-east5/publishers/google/models/gemini-2.5-pro' })
      const hk = await send(`${gw.url}/vertex${path}`, { body, headers: { 'x-forwarded-for': HONG_KONG } })
      t.equal(hk.status, 451, path)
      t.match(gw.decisions().at(-1), { canonical_model: 'gemini-2.5-pro', rule: 'frontier' })
      t.equal((await send(`${gw.url}/vertex${path}`, { body, headers: { 'x-forwarded-for': UNITED_STATES } })).status, 200, path)
    }
  })

  t.test('a deployed endpoint says nothing of its model: policy.unknown_model', async (t) => {
    const res = await send(`${gw.url}/vertex${PROJECT}/endpoints/1234567890:predict`, { body: '{"instances":[]}', headers: { 'x-forwarded-for': UNITED_STATES } })
    t.equal(res.status, 451)
    t.match(gw.decisions().at(-1), { rule: null, reason: /policy\.unknown_model is block/ })
  })
})
