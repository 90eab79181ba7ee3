// HTTP/2 on the TLS listener (ALPN, with HTTP/1.1 on the same port): curl --http2, the AWS SDK's
// Bedrock client on its default HTTP/2 handler, Node's http2 client for streams event by
// event, the official SDKs over TLS, and WebSocket upgrades over HTTP/1.1. Decisions, refusals
// and decision lines are the same over both protocols.
import { execFile } from 'node:child_process'
import http2 from 'node:http2'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import WebSocket from 'ws'
import { Agent } from 'undici'
import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { curl } from '../support/curl.js'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { startTestGateway } from '../support/gateway.js'
import { LOOPBACK_SAN, makeCa } from '../support/pki.js'

const HONG_KONG = '203.198.0.1'
const UNITED_STATES = '8.8.8.8'
const claude = (model = 'claude-sonnet-4-5', stream = false): string => JSON.stringify({ model, max_tokens: 8, stream, messages: [{ role: 'user', content: 'hi' }] })

/** A decision line without what differs between any two requests (ids, times, durations). */
function comparable (line: Record<string, unknown> | undefined): Record<string, unknown> {
  const { decision_id: _id, time: _time, duration_ms: _d, pid: _pid, hostname: _h, ...rest } = line ?? {}
  return rest
}

t.test('HTTP/2 on the TLS listener', async (t) => {
  const ca = makeCa('Bank Root CA')
  const cert = ca.issue('listener', { subject: '/O=Bank/CN=llm-geofence', san: LOOPBACK_SAN })
  const upstream = await startFakeUpstream({ streamGateMs: 5_000 })
  t.teardown(upstream.close)
  const gw = await startTestGateway(`
server:
  host: 127.0.0.1
  port: 0
  tls: { cert: "file:${cert.certFile}", key: "file:${cert.keyFile}" }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams:
  anthropic: { url: "${upstream.url}", dialect: anthropic }
  openai: { url: "${upstream.url}", dialect: openai }
  bedrock: { url: "${upstream.url}", dialect: bedrock }
policy:
  default: block
  rules:
    - { name: claude-frontier, models: ["claude-*"], deny: [HK, CN, MO], action: block }
    - { name: others, models: ["*"], deny: [HK], action: block }
`)
  t.teardown(gw.close)
  const url = `${gw.url}/anthropic/v1/messages`

  t.test('curl --http2 and --http1.1: the same decisions, refusals and decision lines', async (t) => {
    for (const [ip, body, status] of [[UNITED_STATES, claude(), 200], [HONG_KONG, claude(), 451], [UNITED_STATES, '{"model":', 400]] as const) {
      const lines: Array<Record<string, unknown>> = []
      const answers: Array<{ status: number, body: string }> = []
      for (const http2 of [false, true]) {
        const res = await curl(url, { http2, cacert: ca.certFile, headers: { 'content-type': 'application/json', 'x-forwarded-for': ip }, body })
        t.equal(res.exit, 0)
        t.equal(res.httpVersion, http2 ? '2' : '1.1', `curl spoke HTTP/${http2 ? '2' : '1.1'}`)
        t.equal(res.status, status, `${ip} ${body}: ${status} over HTTP/${res.httpVersion}`)
        t.equal(res.headers['x-geofence-decision-id'], gw.decisions().at(-1)?.['decision_id'])
        lines.push(comparable(gw.decisions().at(-1)))
        answers.push({ status: res.status, body: res.body.replace(/"request_id":"[^"]+"|Decision id [0-9a-f-]+/g, '') })
      }
      t.same(lines[1], lines[0], `${status}: the decision line is the same over HTTP/2`)
      t.same(answers[1], answers[0], `${status}: the answer is the same over HTTP/2`)
    }
    const refused = JSON.parse((await curl(url, { http2: true, cacert: ca.certFile, headers: { 'content-type': 'application/json', 'x-forwarded-for': HONG_KONG }, body: claude() })).body) as Record<string, any>
    t.match(refused, { type: 'error', error: { type: 'permission_error', message: /not available from HK/ } })
  })

  t.test('the caller is the socket peer over HTTP/2 too', async (t) => {
    const res = await curl(url, { http2: true, cacert: ca.certFile, headers: { 'content-type': 'application/json' }, body: claude() })
    t.equal(res.status, 451, 'loopback is an unknown location: blocked by the rule')
    t.match(gw.decisions().at(-1), { client_ip: '127.0.0.1', ip_source: 'socket', location_source: 'none' })
  })

  t.test('an SSE stream arrives over HTTP/2 event by event, not at its end', async (t) => {
    const session = http2.connect(gw.url, { ca: ca.cert })
    t.teardown(() => { session.close() })
    const stream = session.request({ ':method': 'POST', ':path': '/anthropic/v1/messages', 'content-type': 'application/json', 'x-forwarded-for': UNITED_STATES })
    stream.end(claude('claude-sonnet-4-5', true))
    const headers = await new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once('response', resolve))
    t.equal(headers[':status'], 200)
    t.match(headers['content-type'], /^text\/event-stream/)
    t.equal(headers['connection'], undefined, 'no HTTP/1.1 connection header on an HTTP/2 answer')
    let text = ''
    stream.setEncoding('utf8')
    await new Promise<void>((resolve) => {
      stream.on('data', (chunk: string) => {
        text += chunk
        if (text.includes('message_start')) resolve()
      })
    })
    t.notMatch(text, /message_stop/, 'the first event arrived while the upstream holds the rest')
    upstream.releaseStream()
    await new Promise((resolve) => stream.once('end', resolve))
    t.match(text, /event: message_stop/)
    t.match(gw.decisions().at(-1), { action: 'allow', status: 200, model: 'claude-sonnet-4-5' })
    const sent = upstream.calls.at(-1)?.headers ?? {}
    t.same(Object.keys(sent).filter((h) => h.startsWith(':')), [], 'no HTTP/2 pseudo-header is forwarded')
    t.equal(sent.host, new URL(upstream.url).host)
  })

  t.test('the AWS SDK\'s Bedrock client on its default HTTP/2 handler, and its event stream', async (t) => {
    upstream.releaseStream()
    const script = fileURLToPath(new URL('../support/bedrock-default-client.mjs', import.meta.url))
    const run = async (ip: string): Promise<Array<Record<string, any>>> => new Promise((resolve, reject) => {
      execFile(process.execPath, [script, `${gw.url}/bedrock`, ip], { env: { ...process.env, NODE_EXTRA_CA_CERTS: ca.certFile }, timeout: 60_000 }, (err, stdout, stderr) => {
        if (err !== null) reject(new Error(`${err.message}\n${stderr}`))
        else resolve(stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>))
      })
    })
    const before = gw.decisions().length
    const [handler, invoke, stream] = await run(UNITED_STATES)
    t.same(handler, { handler: 'NodeHttp2Handler' }, 'the default handler, not NodeHttpHandler')
    t.same(invoke, { call: 'invoke', status: 200, text: 'Hello from the fake upstream' })
    t.same(stream, { call: 'converse-stream', status: 200, events: ['messageStart', 'contentBlockDelta', 'contentBlockDelta', 'contentBlockDelta', 'contentBlockDelta', 'contentBlockDelta', 'contentBlockStop', 'messageStop', 'metadata'] })
    const [, blocked, blockedStream] = await run(HONG_KONG)
    t.match(blocked, { call: 'invoke', error: 'AccessDeniedException', status: 451, message: /not available from HK/ })
    t.match(blockedStream, { call: 'converse-stream', error: 'AccessDeniedException', status: 451 })
    const lines = gw.decisions().slice(before)
    t.match(lines, [
      { upstream: 'bedrock', action: 'allow', canonical_model: 'claude-sonnet-4-20250514', status: 200 },
      { upstream: 'bedrock', action: 'allow', status: 200 },
      { upstream: 'bedrock', action: 'block', rule: 'claude-frontier', country: 'HK', status: 451 },
      { upstream: 'bedrock', action: 'block', status: 451 },
    ])
    t.notMatch(gw.rawLogs(), /secret-never-logged|AWS4-HMAC/)
  })

  t.test('the official SDKs over TLS (HTTP/1.1 through ALPN)', async (t) => {
    const dispatcher = new Agent({ connect: { ca: ca.cert } })
    t.teardown(async () => { await dispatcher.close() })
    const anthropic = new Anthropic({ apiKey: 'sk-ant', baseURL: `${gw.url}/anthropic`, maxRetries: 0, defaultHeaders: { 'x-forwarded-for': UNITED_STATES }, fetchOptions: { dispatcher } as never })
    const msg = await anthropic.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] })
    t.equal(msg.content[0]?.type === 'text' ? msg.content[0].text : '', 'Hello from the fake upstream')
    const openai = new OpenAI({ apiKey: 'sk-oa', baseURL: `${gw.url}/openai/v1`, maxRetries: 0, defaultHeaders: { 'x-forwarded-for': HONG_KONG }, fetchOptions: { dispatcher } as never })
    const err = await openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }).then(() => null, (e: unknown) => e)
    t.equal((err as InstanceType<typeof OpenAI.APIError>).status, 451)
  })

  t.test('a WebSocket upgrade over HTTP/1.1 on the same port', async (t) => {
    const ws = new WebSocket(`${gw.url.replace('https', 'wss')}/openai/v1/realtime?model=gpt-realtime`, { ca: ca.cert, headers: { 'x-forwarded-for': UNITED_STATES } })
    const first = await new Promise<Record<string, any>>((resolve, reject) => {
      ws.once('message', (d) => { resolve(JSON.parse(d.toString()) as Record<string, any>) })
      ws.once('error', reject)
    })
    ws.close()
    t.match(first, { type: 'session.created', session: { model: 'gpt-realtime' } })
    t.match(gw.decisions().at(-1), { status: 101, action: 'allow' })
  })
})

t.test('HTTP/2: a body that stalls is refused at server.body_timeout; shutdown lets a stream under way finish', async (t) => {
  const ca = makeCa('Bank Root CA')
  const cert = ca.issue('listener', { subject: '/O=Bank/CN=llm-geofence', san: LOOPBACK_SAN })
  const upstream = await startFakeUpstream({ streamGateMs: 10_000 })
  t.teardown(upstream.close)
  const gw = await startTestGateway(`
server:
  host: 127.0.0.1
  port: 0
  body_timeout: 500ms
  shutdown_grace: 5s
  tls: { cert: "file:${cert.certFile}", key: "file:${cert.keyFile}" }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams:
  anthropic: { url: "${upstream.url}", dialect: anthropic }
policy:
  rules:
    - { name: others, models: ["*"], deny: [HK], action: block }
`)
  const session = http2.connect(gw.url, { ca: ca.cert })
  t.teardown(() => { session.close() })

  const started = Date.now()
  const stalled = session.request({ ':method': 'POST', ':path': '/anthropic/v1/messages', 'content-type': 'application/json', 'content-length': '100', 'x-forwarded-for': UNITED_STATES })
  stalled.write('{"model":')
  const head = await new Promise<http2.IncomingHttpHeaders>((resolve) => stalled.once('response', resolve))
  t.equal(head[':status'], 408)
  t.ok(Date.now() - started < 3_000, `answered after the body timeout (${Date.now() - started} ms)`)
  for (let i = 0; i < 20 && gw.decisions().length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.match(gw.decisions().at(-1), { status: 408, reason: 'the request did not arrive within server.body_timeout' })
  stalled.close()

  const stream = session.request({ ':method': 'POST', ':path': '/anthropic/v1/messages', 'content-type': 'application/json', 'x-forwarded-for': UNITED_STATES })
  stream.end(claude('claude-sonnet-4-5', true))
  let text = ''
  stream.setEncoding('utf8')
  await new Promise<void>((resolve) => {
    stream.on('data', (chunk: string) => {
      text += chunk
      if (text.includes('message_start')) resolve()
    })
  })
  const closing = gw.close()
  const goaway = await new Promise((resolve) => session.once('goaway', () => { resolve(true) }))
  t.ok(goaway, 'the client is told to go (GOAWAY)')
  upstream.releaseStream()
  await new Promise((resolve) => stream.once('end', resolve))
  t.match(text, /event: message_stop/, 'the stream under way finished')
  await closing
  t.match(gw.logs().find((l) => l['msg'] === 'stopped'), { outcome: 'done' }, 'within the grace, nothing cut')
})
