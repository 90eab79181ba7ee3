// The official Anthropic SDK as the client, a fake Anthropic API as the upstream, the gateway
// between them on real sockets.
import net from 'node:net'
import t from 'tap'
import Anthropic from '@anthropic-ai/sdk'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { baseConfig, startTestGateway } from '../support/gateway.js'
import { send } from '../support/http.js'

// Verified in the embedded database (test/geo/embedded-database.test.ts): HK and US.
const HONG_KONG = '203.198.0.1'
const UNITED_STATES = '8.8.8.8'
const API_KEY = 'sk-ant-api03-test-credential-0123456789'

t.test('anthropic dialect', async (t) => {
  const upstream = await startFakeUpstream({ streamGateMs: 5000 })
  t.teardown(upstream.close)
  const gw = await startTestGateway(baseConfig(upstream.url))
  t.teardown(gw.close)
  const client = (ip: string): Anthropic => new Anthropic({
    apiKey: API_KEY,
    baseURL: `${gw.url}/anthropic`,
    maxRetries: 0,
    defaultHeaders: { 'x-forwarded-for': ip },
  })

  t.test('a caller in Hong Kong asking for Claude gets a 451 permission_error, and the upstream is never called', async (t) => {
    const before = upstream.calls.length
    const err = await client(HONG_KONG).messages.create({
      model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }],
    }).then(() => null, (e: unknown) => e)
    t.ok(err instanceof Anthropic.APIError, 'the SDK raises its APIError')
    const apiErr = err as InstanceType<typeof Anthropic.APIError>
    t.equal(apiErr.status, 451)
    const id = apiErr.headers?.get('x-geofence-decision-id')
    t.match(id, /^[0-9a-f-]{36}$/, 'the decision id header is present')
    t.same(apiErr.error, {
      type: 'error',
      error: {
        type: 'permission_error',
        message: `Model "claude-sonnet-4-5" is not available from HK: blocked by rule "anthropic-frontier" (country HK is in the deny list of rule anthropic-frontier). Decision id ${id}.`,
      },
      request_id: id,
    }, 'the body is the exact Anthropic error shape')
    t.equal(upstream.calls.length, before, 'the upstream counted no call')
    const line = gw.decisions().find((d) => d['decision_id'] === id)
    t.match(line, {
      action: 'block', enforced: true, rule: 'anthropic-frontier', country: 'HK', model: 'claude-sonnet-4-5',
      client_ip: HONG_KONG, ip_source: 'x-forwarded-for', location_source: 'geoip', upstream: 'anthropic', status: 451,
      policy_revision: gw.runtime.policy.revision,
    })
  })

  t.test('a caller in the US gets the upstream answer through the SDK', async (t) => {
    const before = upstream.calls.length
    const msg = await client(UNITED_STATES).messages.create({
      model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }],
    })
    t.equal(msg.content[0]?.type === 'text' ? msg.content[0].text : '', 'Hello from the fake upstream')
    t.equal(upstream.calls.length, before + 1)
    const call = upstream.calls.at(-1)
    t.equal(call?.url, '/v1/messages')
    t.equal(call?.headers.authorization, `Bearer ${API_KEY}`, 'the client credential is passed on')
    t.equal(call?.headers['x-forwarded-for'], undefined, 'X-Forwarded-For is not sent to the provider')
    t.match(gw.decisions().at(-1), { action: 'allow', rule: 'anthropic-frontier', country: 'US', status: 200 })
  })

  t.test('count_tokens is checked like messages', async (t) => {
    const err = await client(HONG_KONG).messages.countTokens({
      model: 'claude-opus-4-1', messages: [{ role: 'user', content: 'hi' }],
    }).then(() => null, (e: unknown) => e)
    t.equal((err as { status?: number }).status, 451)
    const ok = await client(UNITED_STATES).messages.countTokens({
      model: 'claude-opus-4-1', messages: [{ role: 'user', content: 'hi' }],
    })
    t.equal(ok.input_tokens, 12)
  })

  t.test('a stream reaches the client event by event, before the upstream sends its last event', async (t) => {
    const stream = client(UNITED_STATES).messages.stream({
      model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }],
    })
    const types: string[] = []
    let lastSentWhenFirstArrived: number | null | undefined
    for await (const event of stream) {
      if (types.length === 0) {
        lastSentWhenFirstArrived = upstream.lastEventSentAt()
        upstream.releaseStream()
      }
      types.push(event.type)
    }
    t.equal(lastSentWhenFirstArrived, null, 'the first event arrived while the upstream still held the rest')
    t.same(types, ['message_start', 'content_block_start', 'content_block_delta', 'content_block_delta',
      'content_block_delta', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop'])
    const final = await stream.finalMessage()
    t.equal(final.content[0]?.type === 'text' ? final.content[0].text : '', 'Hello from the fake upstream')
  })

  t.test('a model no rule matches falls under policy.default (block)', async (t) => {
    const err = await client(UNITED_STATES).messages.create({
      model: 'mistral-large', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }],
    }).then(() => null, (e: unknown) => e)
    t.equal((err as { status?: number }).status, 451)
    t.match(gw.decisions().at(-1), { action: 'block', rule: null, model: 'mistral-large', reason: /policy\.default is block/ })
  })
})

t.test('a client that goes away mid-stream aborts the upstream request promptly', async (t) => {
  const upstream = await startFakeUpstream({ streamGateMs: 20_000 })
  t.teardown(upstream.close)
  const gw = await startTestGateway(baseConfig(upstream.url))
  t.teardown(gw.close)
  const { port } = new URL(gw.url)
  const socket = net.connect(Number(port), '127.0.0.1')
  const body = JSON.stringify({ model: 'claude-sonnet-4-5', stream: true })
  socket.write(`POST /anthropic/v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-forwarded-for: ${UNITED_STATES}\r\ncontent-length: ${body.length}\r\n\r\n${body}`)
  await new Promise<void>((resolve) => socket.once('data', () => { resolve() }))
  const goneAt = Date.now()
  socket.destroy()
  while (upstream.abortedAt() === null && Date.now() - goneAt < 5000) await new Promise((resolve) => setTimeout(resolve, 10))
  const aborted = upstream.abortedAt()
  t.ok(aborted !== null, 'the upstream saw its request go away')
  t.ok((aborted ?? Infinity) - goneAt < 1000, `within one second (${String((aborted ?? 0) - goneAt)} ms)`)
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.match(gw.decisions().at(-1), { action: 'allow', status: 499 }, 'and the decision line records the client going away')
})

t.test('message batches: every requests[].params.model is decided; the batch passes only if all pass', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(baseConfig(upstream.url))
  t.teardown(gw.close)
  const batch = (...models: string[]): string => JSON.stringify({ requests: models.map((model, i) => ({ custom_id: `r${i}`, params: { model, max_tokens: 8, messages: [] } })) })
  const post = async (body: string, ip: string): ReturnType<typeof send> => send(`${gw.url}/anthropic/v1/messages/batches`, { body, headers: { 'content-type': 'application/json', 'x-forwarded-for': ip } })
  const ok = batch('claude-sonnet-4-5', 'claude-haiku-4-5', 'claude-sonnet-4-5')
  const allowed = await post(ok, UNITED_STATES)
  t.equal(allowed.status, 200)
  t.equal(upstream.calls.at(-1)?.body.toString(), ok, 'forwarded byte for byte')
  t.match(gw.decisions().at(-1), { action: 'allow', batch_models: ['claude-sonnet-4-5', 'claude-haiku-4-5'] })
  const before = upstream.calls.length
  const hk = await post(ok, HONG_KONG)
  t.equal(hk.status, 451)
  t.match(hk.json().error.message, /Model "claude-sonnet-4-5" is not available from HK/)
  const mixed = await post(batch('claude-sonnet-4-5', 'mistral-large'), UNITED_STATES)
  t.equal(mixed.status, 451, 'one model no rule allows blocks the whole batch')
  t.match(mixed.json().error.message, /Model "mistral-large"/)
  t.match(gw.decisions().at(-1), { model: 'mistral-large', rule: null, batch_models: ['claude-sonnet-4-5', 'mistral-large'] })
  for (const [body, message] of [
    ['{"requests":[]}', /exactly one non-empty "requests" list/],
    ['{"requests":[{"custom_id":"a"}]}', /requests\[0\] has no "params" object/],
    ['{"requests":[{"params":{"model":"claude-sonnet-4-5"}},{"params":{"model":7}}]}', /requests\[1\]\.params: "model" must be a non-empty string/],
    ['{"requests":[{"params":{"model":"claude-haiku-4-5","model":"claude-opus-4-1"}}]}', /requests\[0\]\.params: the request body has more than one "model" key/],
  ] as const) {
    const res = await post(body, UNITED_STATES)
    t.equal(res.status, 400, body)
    t.match(res.json().error.message, message)
  }
  t.equal(upstream.calls.length, before, 'nothing refused reached the upstream')
})
