// Route instead of block: the request goes to the sovereign upstream with only the model
// rewritten, and streams back as usual. Dry-run forwards unchanged and records the decision.
import { gzipSync } from 'node:zlib'
import t from 'tap'
import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { startTestGateway } from '../support/gateway.js'
import { send } from '../support/http.js'

const HONG_KONG = '203.198.0.1'
const UNITED_STATES = '8.8.8.8'

function config (frontier: string, sovereign: string, extra = ''): string {
  return `
server: { host: 127.0.0.1, port: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams:
  anthropic: { url: "${frontier}", dialect: anthropic }
  openai: { url: "${frontier}", dialect: openai }
  sovereign-anthropic: { url: "${sovereign}", dialect: anthropic }
  sovereign-openai: { url: "${sovereign}", dialect: openai-compatible }   # vLLM: routes from openai
policy:
  default: block
  rules:
    - name: sovereign
      upstreams: [sovereign-anthropic, sovereign-openai]
      deny: []
      action: block
    - name: claude-frontier
      upstreams: [anthropic]
      models: ["claude-*"]
      deny: [HK, CN]
      action: { route: { upstream: sovereign-anthropic, model: bank-llm-70b } }
${extra}
    - name: openai-frontier
      upstreams: [openai]
      models: ["gpt-*"]
      deny: [HK, CN]
      action: { route: { upstream: sovereign-openai, model: bank-llm-70b } }
`
}

t.test('routing to a sovereign model', async (t) => {
  const frontier = await startFakeUpstream()
  t.teardown(frontier.close)
  const sovereign = await startFakeUpstream()
  t.teardown(sovereign.close)
  const gw = await startTestGateway(config(frontier.url, sovereign.url))
  t.teardown(gw.close)

  t.test('the sovereign upstream sees the new model and an otherwise byte-identical body', async (t) => {
    const body = '{\n  "max_tokens": 64,\n  "model"  :  "claude-sonnet-4-5",\n  "messages": [{"role": "user", "content": "caf\u00e9 \\u00e9 \\"model\\": x"}],\n  "metadata": {"model": "nested stays"}\n}\n'
    const res = await send(`${gw.url}/anthropic/v1/messages?beta=true`, { body, headers: { 'content-type': 'application/json', 'x-forwarded-for': HONG_KONG } })
    t.equal(res.status, 200)
    t.equal(res.headers['x-geofence-routed-model'], 'bank-llm-70b')
    t.equal(frontier.calls.length, 0, 'the frontier provider is never called')
    const call = sovereign.calls.at(-1)
    t.equal(call?.url, '/v1/messages?beta=true')
    t.equal(call?.body.toString('utf8'), body.replace('"claude-sonnet-4-5"', '"bank-llm-70b"'), 'only the model value changed')
    t.equal(res.json().model, 'bank-llm-70b')
    t.match(gw.decisions().at(-1), {
      action: 'route', enforced: true, rule: 'claude-frontier', model: 'claude-sonnet-4-5',
      routed_upstream: 'sovereign-anthropic', routed_model: 'bank-llm-70b', country: 'HK', status: 200,
    })
  })

  t.test('a compressed body is routed decoded, with the model rewritten and no Content-Encoding', async (t) => {
    const json = '{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[]}'
    const res = await send(`${gw.url}/anthropic/v1/messages`, { body: gzipSync(json), headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', 'x-forwarded-for': HONG_KONG } })
    t.equal(res.status, 200)
    const call = sovereign.calls.at(-1)
    t.equal(call?.body.toString(), json.replace('claude-sonnet-4-5', 'bank-llm-70b'))
    t.equal(call?.headers['content-encoding'], undefined)
    t.equal(call?.headers['content-length'], String(call?.body.length))
  })

  t.test('a batch that would be routed is blocked instead, and says so', async (t) => {
    const before = frontier.calls.length + sovereign.calls.length
    const res = await send(`${gw.url}/anthropic/v1/messages/batches`, { body: '{"requests":[{"custom_id":"a","params":{"model":"claude-sonnet-4-5"}}]}', headers: { 'content-type': 'application/json', 'x-forwarded-for': HONG_KONG } })
    t.equal(res.status, 451)
    t.match(gw.decisions().at(-1), { action: 'block', rule: 'claude-frontier', reason: /a batch is not routed, so it is blocked$/ })
    t.equal(frontier.calls.length + sovereign.calls.length, before)
  })

  t.test('an allowed caller still reaches the frontier provider, with no routed header', async (t) => {
    const res = await send(`${gw.url}/anthropic/v1/messages`, { body: '{"model":"claude-sonnet-4-5"}', headers: { 'content-type': 'application/json', 'x-forwarded-for': UNITED_STATES } })
    t.equal(res.status, 200)
    t.equal(res.headers['x-geofence-routed-model'], undefined)
    t.equal(frontier.calls.at(-1)?.body.toString(), '{"model":"claude-sonnet-4-5"}')
  })

  t.test('the official SDKs stream from the routed model', async (t) => {
    const anthropic = new Anthropic({ apiKey: 'k', baseURL: `${gw.url}/anthropic`, maxRetries: 0, defaultHeaders: { 'x-forwarded-for': HONG_KONG } })
    const msg = await anthropic.messages.stream({ model: 'claude-opus-4-1', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }).finalMessage()
    t.equal(msg.model, 'bank-llm-70b')
    const openai = new OpenAI({ apiKey: 'k', baseURL: `${gw.url}/openai/v1`, maxRetries: 0, defaultHeaders: { 'x-forwarded-for': HONG_KONG } })
    let model = ''
    for await (const chunk of await openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], stream: true })) model = chunk.model
    t.equal(model, 'bank-llm-70b')
    t.equal(JSON.parse(sovereign.calls.at(-1)?.body.toString() ?? '{}').model, 'bank-llm-70b')
  })
})

t.test('a route target must exist and speak the same dialect (checked at load)', async (t) => {
  const bad = config('http://127.0.0.1:1', 'http://127.0.0.1:1').replace('upstream: sovereign-openai, model', 'upstream: sovereign-anthropic, model')
  const err = await startTestGateway(bad).then(() => null, (e: unknown) => e as Error)
  t.match(err?.message, /policy\.rules\[2\]\.action\.route\.upstream: upstream "sovereign-anthropic" speaks anthropic, but this rule applies to "openai", which speaks openai/)
  const missing = config('http://127.0.0.1:1', 'http://127.0.0.1:1').replace('upstream: sovereign-openai, model', 'upstream: nowhere, model')
  const err2 = await startTestGateway(missing).then(() => null, (e: unknown) => e as Error)
  t.match(err2?.message, /action\.route\.upstream: unknown upstream "nowhere"/)
})

t.test('dry-run: a block or route is recorded with enforced: false and the request goes through unchanged', async (t) => {
  const frontier = await startFakeUpstream()
  t.teardown(frontier.close)
  const sovereign = await startFakeUpstream()
  t.teardown(sovereign.close)
  const yaml = config(frontier.url, sovereign.url, `    - name: haiku-trial
      upstreams: [openai]
      models: ["gpt-4o-mini"]
      deny: [HK]
      action: block
      mode: dry-run`).replace('      action: { route: { upstream: sovereign-anthropic, model: bank-llm-70b } }', '      action: { route: { upstream: sovereign-anthropic, model: bank-llm-70b } }\n      mode: dry-run')
  const gw = await startTestGateway(yaml)
  t.teardown(gw.close)
  const routed = await send(`${gw.url}/anthropic/v1/messages`, { body: '{"model":"claude-sonnet-4-5"}', headers: { 'content-type': 'application/json', 'x-forwarded-for': HONG_KONG } })
  t.equal(routed.status, 200)
  t.equal(routed.headers['x-geofence-routed-model'], undefined)
  t.equal(frontier.calls.at(-1)?.body.toString(), '{"model":"claude-sonnet-4-5"}', 'forwarded unchanged to the original upstream')
  t.equal(sovereign.calls.length, 0)
  t.match(gw.decisions().at(-1), { action: 'route', enforced: false, routed_model: 'bank-llm-70b' })
  const blocked = await send(`${gw.url}/openai/v1/chat/completions`, { body: '{"model":"gpt-4o-mini"}', headers: { 'content-type': 'application/json', 'x-forwarded-for': HONG_KONG } })
  t.equal(blocked.status, 200)
  t.match(gw.decisions().at(-1), { action: 'block', enforced: false, rule: 'haiku-trial' })
  const global = await startTestGateway(config(frontier.url, sovereign.url).replace('  default: block', '  default: block\n  mode: dry-run'))
  t.teardown(global.close)
  const res = await send(`${global.url}/anthropic/v1/messages`, { body: '{"model":"mistral"}', headers: { 'content-type': 'application/json', 'x-forwarded-for': UNITED_STATES } })
  t.equal(res.status, 200, 'policy.mode dry-run: even policy.default is not enforced')
  t.match(global.decisions().at(-1), { action: 'block', enforced: false, rule: null })
})

t.test('duplicate model keys are refused: parsers disagree on which one counts', async (t) => {
  const frontier = await startFakeUpstream()
  t.teardown(frontier.close)
  const gw = await startTestGateway(config(frontier.url, frontier.url))
  t.teardown(gw.close)
  for (const body of ['{"model":"claude-haiku-4-5","model":"claude-opus-4-1"}', '{"model":"x","mod\\u0065l":"claude-opus-4-1"}']) {
    const res = await send(`${gw.url}/anthropic/v1/messages`, { body, headers: { 'content-type': 'application/json', 'x-forwarded-for': UNITED_STATES } })
    t.equal(res.status, 400, body)
    t.match(res.json().error.message, /more than one "model" key/)
  }
  t.equal(frontier.calls.length, 0)
})
