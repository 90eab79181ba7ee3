// Every dialect's endpoint table is an allow-list. An endpoint it does not list is decided by
// policy.unknown_endpoint (default block), whatever policy.default says, with a reason naming
// the method and path; an upstream's `endpoints` list still allows what it names. Endpoints
// that carry a model, newly listed, are decided by that model: the official SDKs as clients.
import t from 'tap'
import OpenAI from 'openai'
import { ApiError, GoogleGenAI } from '@google/genai'
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js'
import { startTestGateway } from '../support/gateway.js'
import { send } from '../support/http.js'

const HONG_KONG = '203.198.0.1'
const UNITED_STATES = '8.8.8.8'
const LOC = '/v1/projects/p/locations/us-east5'

/** Every dialect in front of one fake upstream; `policy` replaces the settings (default allow). */
const config = (upstream: FakeUpstream, policy = 'default: allow', extra = ''): string => `
server: { host: 127.0.0.1, port: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams:
  anthropic: { url: "${upstream.url}", dialect: anthropic${extra} }
  openai: { url: "${upstream.url}", dialect: openai }
  gemini: { url: "${upstream.url}", dialect: gemini, model_aliases: { tunedModels/support-tune: gemini-2.5-flash } }
  vertex: { url: "${upstream.url}", dialect: vertex }
  bedrock: { url: "${upstream.url}", dialect: bedrock }
  azure: { url: "${upstream.url}", dialect: azure-openai }
  sovereign-gemini: { url: "${upstream.url}", dialect: gemini }
policy:
  ${policy}
  unknown_location: block
  rules:
    - { name: flash-routed, upstreams: [gemini], models: ["gemini-2.5-flash"], deny: [CN], action: { route: { upstream: sovereign-gemini, model: gemma-3-27b } } }
    - { name: openai-frontier, upstreams: [openai], models: ["gpt-*"], deny: [HK, CN], action: block }
    - { name: gemini-frontier, upstreams: [gemini], models: ["gemini-*", "text-embedding-*"], deny: [HK, CN], action: block }
`

t.test('an endpoint no table lists is refused under policy.default allow, and says which one', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(config(upstream))
  t.teardown(gw.close)
  const rows: Array<{ name: string, method?: string, url: string, endpoint: string }> = [
    { name: 'an OpenAI path no SDK calls', url: '/openai/v1/foo', endpoint: 'POST /v1/foo' },
    { name: 'another method on a listed path', method: 'PUT', url: '/openai/v1/chat/completions', endpoint: 'PUT /v1/chat/completions' },
    { name: 'the OpenAI Admin API', method: 'GET', url: '/openai/v1/organization/usage/completions?models=gpt-4o', endpoint: 'GET /v1/organization/usage/completions' },
    { name: 'Claude Managed Agents', url: '/anthropic/v1/agents', endpoint: 'POST /v1/agents' },
    { name: 'GET on Anthropic messages', method: 'GET', url: '/anthropic/v1/messages', endpoint: 'GET /v1/messages' },
    { name: 'Gemini\'s gRPC-transcoded chat completions', url: '/gemini/v1beta:chatCompletions', endpoint: 'POST /v1beta:chatCompletions' },
    { name: 'a Gemini API version the gateway does not know', url: '/gemini/v2/models/gemini-2.5-pro:generateContent', endpoint: 'POST /v2/models/gemini-2.5-pro:generateContent' },
    { name: 'a Vertex resource outside the table', url: `/vertex${LOC}/ragCorpora`, endpoint: `POST ${LOC}/ragCorpora` },
    { name: 'a Bedrock model action the runtime does not have', url: '/bedrock/model/amazon.nova-pro-v1%3A0/summarize', endpoint: 'POST /model/amazon.nova-pro-v1%3A0/summarize' },
    { name: 'an Azure path outside /openai', url: '/azure/other/chat/completions', endpoint: 'POST /other/chat/completions' },
  ]
  for (const row of rows) {
    const before = upstream.calls.length
    const res = await send(`${gw.url}${row.url}`, { method: row.method ?? 'POST', body: row.method === 'GET' ? undefined : '{"model":"gemini-2.5-flash"}', headers: { 'content-type': 'application/json', 'x-forwarded-for': UNITED_STATES } })
    t.equal(res.status, 451, `${row.name}: refused`)
    t.equal(upstream.calls.length, before, `${row.name}: never reaches the upstream`)
    t.match(gw.decisions().at(-1), { action: 'block', enforced: true, rule: null, model: null, reason: `the endpoint ${row.endpoint} is not one the gateway knows: policy.unknown_endpoint is block` }, `${row.name}: the decision line names it`)
  }
  // In the dialect's own shape.
  const anthropic = await send(`${gw.url}/anthropic/v1/agents`, { body: '{}', headers: { 'x-forwarded-for': UNITED_STATES } })
  t.match(anthropic.json(), { type: 'error', error: { type: 'permission_error', message: /blocked by the policy \(the endpoint POST \/v1\/agents is not one the gateway knows/ } })
  const bedrock = await send(`${gw.url}/bedrock/model/amazon.nova-pro-v1%3A0/summarize`, { body: '{}', headers: { 'x-forwarded-for': UNITED_STATES } })
  t.equal(bedrock.headers['x-amzn-errortype'], 'AccessDeniedException')
  const metrics = await send(`${gw.adminUrl}/metrics`)
  t.match(metrics.body, /geofence_decisions_total\{upstream="openai",rule="unknown_endpoint",action="block",enforced="true",country="US"\} 3/, 'the metric names the setting that decided')
  // A listed endpoint that names no model is still policy.default's.
  t.equal((await send(`${gw.url}/anthropic/v1/models`, { headers: { 'x-forwarded-for': UNITED_STATES } })).status, 200)
  t.match(gw.decisions().at(-1), { action: 'allow', reason: 'the endpoint names no model: policy.default is allow' })
})

t.test('policy.unknown_endpoint allow forwards it; an upstream\'s endpoints list allows what it names; dry-run only records', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const allowing = await startTestGateway(config(upstream, 'default: block\n  unknown_endpoint: allow'))
  t.teardown(allowing.close)
  const ok = await send(`${allowing.url}/anthropic/v1/agents`, { body: '{"name":"a"}', headers: { 'x-forwarded-for': UNITED_STATES } })
  t.equal(ok.status, 200)
  t.equal(upstream.calls.at(-1)?.url, '/v1/agents')
  t.equal(upstream.calls.at(-1)?.body.toString(), '{"name":"a"}')
  t.match(allowing.decisions().at(-1), { action: 'allow', rule: null, reason: 'the endpoint POST /v1/agents is not one the gateway knows: policy.unknown_endpoint is allow' })

  const listing = await startTestGateway(config(upstream, 'default: block', ', endpoints: ["GET /v1/organizations/me", "POST /v1/agents"]'))
  t.teardown(listing.close)
  t.equal((await send(`${listing.url}/anthropic/v1/organizations/me`, { headers: { 'x-forwarded-for': HONG_KONG } })).status, 200)
  t.match(listing.decisions().at(-1), { action: 'allow', reason: 'the endpoint names no model and is listed in upstreams.anthropic.endpoints (GET /v1/organizations/me)' })
  t.equal((await send(`${listing.url}/anthropic/v1/organizations/users`, { headers: { 'x-forwarded-for': HONG_KONG } })).status, 451, 'an endpoint the list does not name stays refused')
  t.match(listing.decisions().at(-1), { reason: /policy\.unknown_endpoint is block/ })

  const dryRun = await startTestGateway(config(upstream, 'mode: dry-run\n  default: block'))
  t.teardown(dryRun.close)
  t.equal((await send(`${dryRun.url}/openai/v1/foo`, { body: '{}', headers: { 'x-forwarded-for': UNITED_STATES } })).status, 200)
  t.match(dryRun.decisions().at(-1), { action: 'block', enforced: false, reason: /policy\.unknown_endpoint is block/ })
})

t.test('OpenAI endpoints that carry a model are decided by it: the openai SDK', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(config(upstream))
  t.teardown(gw.close)
  const client = (ip: string): OpenAI => new OpenAI({ apiKey: 'sk-test', baseURL: `${gw.url}/openai/v1`, maxRetries: 0, defaultHeaders: { 'x-forwarded-for': ip } })
  const rows: Array<{ name: string, call: (c: OpenAI) => Promise<unknown>, path: string, model: string }> = [
    { name: 'responses.compact', call: async (c) => c.responses.compact({ model: 'gpt-5.2', input: 'hi' }), path: '/v1/responses/compact', model: 'gpt-5.2' },
    { name: 'responses.inputTokens.count', call: async (c) => c.responses.inputTokens.count({ model: 'gpt-5.2', input: 'hi' }), path: '/v1/responses/input_tokens', model: 'gpt-5.2' },
    { name: 'fineTuning.jobs.create', call: async (c) => c.fineTuning.jobs.create({ model: 'gpt-4o-mini-2024-07-18', training_file: 'file-abc' }), path: '/v1/fine_tuning/jobs', model: 'gpt-4o-mini-2024-07-18' },
  ]
  for (const row of rows) {
    const before = upstream.calls.length
    const err = await row.call(client(HONG_KONG)).then(() => null, (e: unknown) => e)
    t.equal((err as { status?: number } | null)?.status, 451, `${row.name}: blocked from Hong Kong`)
    t.equal(upstream.calls.length, before, `${row.name}: never reaches the upstream`)
    t.match(gw.decisions().at(-1), { action: 'block', rule: 'openai-frontier', model: row.model, reason: /country HK is in the deny list/ })
    await row.call(client(UNITED_STATES))
    t.equal(upstream.calls.at(-1)?.url, row.path, `${row.name}: forwarded from the US`)
    t.match(gw.decisions().at(-1), { action: 'allow', rule: 'openai-frontier', model: row.model })
  }
})

t.test('Gemini: a tuned model is an unknown model unless model_aliases maps it; the OpenAI-compatible endpoints name the model in the body', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(config(upstream))
  t.teardown(gw.close)
  const ai = (ip: string): GoogleGenAI => new GoogleGenAI({ apiKey: 'k', httpOptions: { baseUrl: `${gw.url}/gemini`, headers: { 'x-forwarded-for': ip } } })

  const before = upstream.calls.length
  const err = await ai(UNITED_STATES).models.generateContent({ model: 'tunedModels/someone-elses', contents: 'hi' }).then(() => null, (e: unknown) => e)
  t.ok(err instanceof ApiError)
  t.equal((err as ApiError).status, 451)
  t.equal(upstream.calls.length, before)
  t.match(gw.decisions().at(-1), { action: 'block', rule: null, model: 'tunedModels/someone-elses', reason: /a tuned Gemini model \(tunedModels\/\.\.\.\) does not say which model it was tuned from; map it in upstreams\.gemini\.model_aliases\): policy\.unknown_model is block/ })

  await ai(UNITED_STATES).models.generateContent({ model: 'tunedModels/support-tune', contents: 'hi' })
  t.equal(upstream.calls.at(-1)?.url, '/v1beta/tunedModels/support-tune:generateContent')
  t.match(gw.decisions().at(-1), { action: 'allow', rule: 'flash-routed', model: 'tunedModels/support-tune', canonical_model: 'gemini-2.5-flash' })
  // Decided as the model it maps to: a route, which would rewrite the path, is a block instead.
  const cn = await ai('114.114.114.114').models.generateContent({ model: 'tunedModels/support-tune', contents: 'hi' }).then(() => null, (e: unknown) => e)
  t.equal((cn as ApiError).status, 451)
  t.match(gw.decisions().at(-1), { action: 'block', rule: 'flash-routed', reason: /a tuned model's path is not routed, so it is blocked/ })

  const openai = (ip: string): OpenAI => new OpenAI({ apiKey: 'k', baseURL: `${gw.url}/gemini/v1beta/openai/`, maxRetries: 0, defaultHeaders: { 'x-forwarded-for': ip } })
  const blocked = await openai(HONG_KONG).chat.completions.create({ model: 'gemini-2.5-pro', messages: [{ role: 'user', content: 'hi' }] }).then(() => null, (e: unknown) => e)
  t.equal((blocked as { status?: number }).status, 451)
  t.match(gw.decisions().at(-1), { action: 'block', rule: 'gemini-frontier', model: 'gemini-2.5-pro' })
  const chat = await openai(UNITED_STATES).chat.completions.create({ model: 'models/gemini-2.5-pro', messages: [{ role: 'user', content: 'hi' }] })
  t.equal(chat.choices[0]?.message.content, 'Hello from the fake upstream')
  t.equal(upstream.calls.at(-1)?.url, '/v1beta/openai/chat/completions')
  t.match(gw.decisions().at(-1), { action: 'allow', model: 'models/gemini-2.5-pro', canonical_model: 'gemini-2.5-pro' })
  const embedding = await openai(HONG_KONG).embeddings.create({ model: 'text-embedding-004', input: 'x' }).then(() => null, (e: unknown) => e)
  t.equal((embedding as { status?: number }).status, 451)
  t.match(gw.decisions().at(-1), { action: 'block', rule: 'gemini-frontier', model: 'text-embedding-004' })
  const tuned = await openai(UNITED_STATES).chat.completions.create({ model: 'tunedModels/someone-elses', messages: [] }).then(() => null, (e: unknown) => e)
  t.equal((tuned as { status?: number }).status, 451)
  t.match(gw.decisions().at(-1), { rule: null, reason: /tuned Gemini model/ })
  t.equal((await openai(HONG_KONG).models.list().then(() => 200, (e: { status?: number }) => e.status)), 200, 'the model list names no model: policy.default (allow)')
})
