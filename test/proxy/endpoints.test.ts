// Which endpoints name a model and which do not: OpenAI's JSON endpoints beyond chat, the
// batch whose models the gateway cannot see (policy.unknown_model), model-less endpoints
// allowed by an upstream's `endpoints` list, and body limits per endpoint.
import t from 'tap'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { baseConfig, startTestGateway } from '../support/gateway.js'
import { send } from '../support/http.js'

const MAINLAND_CHINA = '114.114.114.114'
const UNITED_STATES = '8.8.8.8'
const jsonFrom = (ip: string): Record<string, string> => ({ 'content-type': 'application/json', 'x-forwarded-for': ip })

t.test('OpenAI JSON endpoints name the model in the body', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(baseConfig(upstream.url))
  t.teardown(gw.close)
  for (const [path, body] of [
    ['/v1/moderations', { model: 'gpt-4o-mini-moderation', input: 'x' }],
    ['/v1/images/generations', { model: 'gpt-image-1', prompt: 'x' }],
    ['/v1/audio/speech', { model: 'gpt-4o-mini-tts', input: 'x', voice: 'alloy' }],
    ['/v1/embeddings', { model: 'gpt-embedding-x', input: 'x' }],
    ['/v1/responses', { model: 'gpt-5', input: 'x' }],
    ['/v1/realtime/sessions', { model: 'gpt-realtime' }],
  ] as const) {
    const before = upstream.calls.length
    const cn = await send(`${gw.url}/openai${path}`, { body: JSON.stringify(body), headers: jsonFrom(MAINLAND_CHINA) })
    t.equal(cn.status, 451, path)
    t.equal(upstream.calls.length, before, `${path}: never reaches the upstream`)
    t.match(gw.decisions().at(-1), { model: body.model, rule: 'openai-frontier', action: 'block' })
    const us = await send(`${gw.url}/openai${path}`, { body: JSON.stringify(body), headers: jsonFrom(UNITED_STATES) })
    t.equal(us.status, 200, path)
    t.equal(upstream.calls.at(-1)?.url, path)
  }
})

t.test('OpenAI batches: the models are in an uploaded file, so policy.unknown_model decides', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const batch = JSON.stringify({ input_file_id: 'file-abc', endpoint: '/v1/chat/completions', completion_window: '24h' })
  const blocking = await startTestGateway(baseConfig(upstream.url).replace('default: block', 'default: allow'))
  t.teardown(blocking.close)
  const res = await send(`${blocking.url}/openai/v1/batches`, { body: batch, headers: jsonFrom(UNITED_STATES) })
  t.equal(res.status, 451, 'blocked by default even where policy.default allows')
  t.match(res.json(), { error: { code: 'unsupported_country_region_territory', message: /blocked by the policy \(the model cannot be seen \(the models of an OpenAI batch are in its uploaded input file/ } })
  t.match(blocking.decisions().at(-1), { action: 'block', rule: null, model: null, reason: /policy\.unknown_model is block/ })
  t.equal(upstream.calls.length, 0)
  const metrics = await send(`${blocking.adminUrl}/metrics`)
  t.match(metrics.body, /geofence_decisions_total\{upstream="openai",rule="unknown_model",action="block",enforced="true",country="US"\} 1/, 'the metric names the setting that decided')

  const allowing = await startTestGateway(baseConfig(upstream.url).replace('unknown_location: block', 'unknown_location: block\n  unknown_model: allow'))
  t.teardown(allowing.close)
  const ok = await send(`${allowing.url}/openai/v1/batches`, { body: batch, headers: jsonFrom(UNITED_STATES) })
  t.equal(ok.status, 200)
  t.equal(upstream.calls.at(-1)?.url, '/v1/batches')
  const listing = await send(`${allowing.url}/openai/v1/batches`, { headers: { 'x-forwarded-for': UNITED_STATES } })
  t.equal(listing.status, 451, 'GET /v1/batches names no model: policy.default (block)')
  for (const path of ['/v1/realtime/client_secrets', '/v1/realtime/calls']) {
    const res = await send(`${blocking.url}/openai${path}`, { body: '{"session":{"type":"realtime","model":"gpt-realtime"}}', headers: jsonFrom(UNITED_STATES) })
    t.equal(res.status, 451, path)
    t.match(blocking.decisions().at(-1), { reason: /the gateway does not read the model of a realtime session configuration\): policy\.unknown_model is block/ }, path)
  }
})

t.test('an upstream\'s endpoints list allows the model-less paths it names', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const yaml = baseConfig(upstream.url).replace('anthropic: { url: "' + upstream.url + '", dialect: anthropic }',
    `anthropic: { url: "${upstream.url}", dialect: anthropic, endpoints: ["GET /v1/models", "GET /v1/models/*"] }`)
  const gw = await startTestGateway(yaml)
  t.teardown(gw.close)
  const get = async (path: string, method = 'GET'): Promise<number> => (await send(`${gw.url}${path}`, { method, headers: { 'x-forwarded-for': MAINLAND_CHINA } })).status
  t.equal(await get('/anthropic/v1/models'), 200)
  t.match(gw.decisions().at(-1), { action: 'allow', rule: null, reason: 'the endpoint names no model and is listed in upstreams.anthropic.endpoints (GET /v1/models)' })
  t.equal(await get('/anthropic/v1/models/claude-sonnet-4-5'), 200)
  t.equal(await get('/anthropic/v1/models/'), 200, 'one trailing slash is the same path')
  t.equal(await get('/anthropic/v1/models/a/b'), 451, '* is one segment')
  t.equal(await get('/anthropic/v1/files'), 451, 'an endpoint not listed: policy.default')
  t.equal(await get('/anthropic/v1/models', 'DELETE'), 451, 'another method is another endpoint')
  t.equal(await get('/openai/v1/models'), 451, 'the list is per upstream')
  // A listed path that names a model is still decided by its model.
  const listedModel = await startTestGateway(baseConfig(upstream.url).replace('anthropic: { url: "' + upstream.url + '", dialect: anthropic }',
    `anthropic: { url: "${upstream.url}", dialect: anthropic, endpoints: ["POST /v1/messages"] }`))
  t.teardown(listedModel.close)
  const res = await send(`${listedModel.url}/anthropic/v1/messages`, { body: '{"model":"claude-sonnet-4-5"}', headers: jsonFrom(MAINLAND_CHINA) })
  t.equal(res.status, 451)
})

t.test('batches take server.batch_body_limit; every other body takes server.body_limit', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(baseConfig(upstream.url).replace('body_limit: 1mb', 'body_limit: 1kb, batch_body_limit: 4kb'))
  t.teardown(gw.close)
  const pad = (n: number): string => 'x'.repeat(n)
  const message = JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 1, messages: [{ role: 'user', content: pad(2000) }] })
  const batch = (n: number): string => JSON.stringify({ requests: [{ custom_id: 'a', params: { model: 'claude-sonnet-4-5', max_tokens: 1, messages: [{ role: 'user', content: pad(n) }] } }] })

  const big = await send(`${gw.url}/anthropic/v1/messages`, { body: message, headers: jsonFrom(UNITED_STATES) })
  t.equal(big.status, 413)
  t.match(big.json(), { error: { type: 'request_too_large', message: 'the request body is larger than server.body_limit' } })
  const chunked = await send(`${gw.url}/anthropic/v1/messages`, { body: message, headers: { ...jsonFrom(UNITED_STATES), 'transfer-encoding': 'chunked' } })
  t.equal(chunked.status, 413, 'a chunked body is cut at its endpoint\'s limit too')
  t.equal((await send(`${gw.url}/anthropic/v1/messages/batches`, { body: batch(2000), headers: jsonFrom(UNITED_STATES) })).status, 200)
  t.equal((await send(`${gw.url}/anthropic/v1/messages/batches`, { body: batch(2000), headers: { ...jsonFrom(UNITED_STATES), 'transfer-encoding': 'chunked' } })).status, 200)
  const tooBig = await send(`${gw.url}/anthropic/v1/messages/batches`, { body: batch(5000), headers: jsonFrom(UNITED_STATES) })
  t.equal(tooBig.status, 413)
  t.match(tooBig.json(), { error: { message: 'the request body is larger than server.batch_body_limit' } })
  t.equal(upstream.calls.filter((c) => c.url === '/v1/messages').length, 0)
  t.match(gw.decisions().at(-1), { status: 413, action: 'block', reason: 'the request body is larger than server.batch_body_limit' })
})
