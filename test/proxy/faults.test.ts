// When the upstream fails: it resets a stream mid-way or before answering, answers 429 or 5xx
// (passed through in the provider's own shape, retry-after kept), stalls before its first byte
// or mid-stream, refuses the connection, or its name does not resolve. Each gives its
// documented status and decision line; nothing is left behind (sockets, timers, listeners);
// and an ordinary request to another upstream, sent while the fault is under way, is answered.
import dns from 'node:dns'
import { mkdtempSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { replay } from '../../src/evidence/replay.js'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { startTestGateway, type TestGateway } from '../support/gateway.js'
import { send, type Response } from '../support/http.js'

const UNITED_STATES = '8.8.8.8'
const headers = { 'content-type': 'application/json', 'x-forwarded-for': UNITED_STATES }
const CUT = 'the upstream response was cut before its end'
const sleep = async (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

// Names are resolved by Node's dns.lookup (undici connects with net/tls). A name under
// .invalid never resolves (RFC 6761): it is answered NXDOMAIN here, as a resolver that follows
// RFC 6761 answers it, so that no query leaves the machine; any other name fails the test.
// Addresses (127.0.0.1) are passed on: looking one up asks no resolver.
const lookedUp: string[] = []
const realLookup = dns.lookup
dns.lookup = ((hostname: string, options: unknown, callback?: unknown): void => {
  if (net.isIP(hostname) !== 0) {
    (realLookup as (...a: unknown[]) => void)(hostname, options, callback)
    return
  }
  lookedUp.push(hostname)
  const cb = (typeof options === 'function' ? options : callback) as (err: NodeJS.ErrnoException) => void
  const err: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`)
  err.code = 'ENOTFOUND'
  err.syscall = 'getaddrinfo'
  process.nextTick(cb, err)
}) as typeof dns.lookup
t.teardown(() => { dns.lookup = realLookup })

/** The active handles and requests of this process (the gateway, its upstreams, the test) by type. */
function resources (): Map<string, number> {
  const out = new Map<string, number>()
  for (const type of process.getActiveResourcesInfo()) out.set(type, (out.get(type) ?? 0) + 1)
  return out
}

/** Sockets and timers that stay above `before` once closing connections have had time to close. */
async function leftOver (before: Map<string, number>): Promise<string[]> {
  let over: string[] = []
  for (let i = 0; i < 60; i++) {
    const now = resources()
    over = ['TCPSocketWrap', 'Timeout', 'TCPServerWrap'].filter((type) => (now.get(type) ?? 0) > (before.get(type) ?? 0)).map((type) => `${type}: ${before.get(type) ?? 0} -> ${now.get(type) ?? 0}`)
    if (over.length === 0) return over
    await sleep(50)
  }
  return over
}

t.test('upstream faults', async (t) => {
  // Idle keep-alive connections close quickly, so that what stays open afterwards is a leak.
  const faulty = await startFakeUpstream({ keepAliveMs: 100 })
  t.teardown(faulty.close)
  const healthy = await startFakeUpstream({ keepAliveMs: 100 })
  t.teardown(healthy.close)
  // A port that refuses: listened on, then closed.
  const closed = net.createServer().listen(0, '127.0.0.1')
  await new Promise((resolve) => closed.once('listening', resolve))
  const refusedPort = (closed.address() as net.AddressInfo).port
  await new Promise((resolve) => closed.close(resolve))

  const timeouts = '{ connect: 1s, first_byte: 400ms, idle: 400ms }'
  const gw = await startTestGateway(`
server: { host: 127.0.0.1, port: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams:
  anthropic: { url: "${faulty.url}", dialect: anthropic, timeouts: ${timeouts} }
  openai: { url: "${faulty.url}", dialect: openai, timeouts: ${timeouts} }
  gemini: { url: "${faulty.url}", dialect: gemini, timeouts: ${timeouts} }
  bedrock: { url: "${faulty.url}", dialect: bedrock, timeouts: ${timeouts} }
  refusing: { url: "http://127.0.0.1:${refusedPort}", dialect: anthropic }
  unresolvable: { url: "http://llm-provider.invalid", dialect: openai }
  healthy: { url: "${healthy.url}", dialect: openai-compatible }
policy: { rules: [ { name: everyone, deny: [], action: block } ] }
`)
  t.teardown(gw.close)
  const warnings: Error[] = []
  const onWarning = (w: Error): void => { warnings.push(w) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })

  const ordinary = async (): Promise<Response> => send(`${gw.url}/healthy/v1/chat/completions`, { body: JSON.stringify({ model: 'bank-llm-70b', messages: [] }), headers })
  t.equal((await ordinary()).status, 200, 'warm: the healthy upstream answers')
  await sleep(300)
  const serverListeners = (): number[] => ['request', 'upgrade', 'connection', 'clientError'].map((e) => gw.app.server.listenerCount(e))
  const listenersAtStart = serverListeners()

  /**
   * Runs `fault` with an ordinary request sent while it is under way, then checks that the
   * ordinary request was answered and that nothing the fault opened stays open.
   */
  const underFault = async <T>(t: Test, fault: () => Promise<T>): Promise<T> => {
    const before = resources()
    const [result, other] = await Promise.all([fault(), sleep(60).then(ordinary)])
    t.equal(other.status, 200, 'an ordinary request sent during the fault is answered')
    t.match(other.json(), { object: 'chat.completion' })
    t.same(await leftOver(before), [], 'no socket, server or timer is left open')
    t.same(serverListeners(), listenersAtStart, 'no listener is left on the server')
    return result
  }
  /** The decision line that `match` picks, once written (a cut is logged when the gateway has closed the client's response). */
  const lineWhere = async (match: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown> | undefined> => {
    for (let i = 0; i < 40; i++) {
      const found = gw.decisions().find(match)
      if (found !== undefined) return found
      await sleep(50)
    }
    return undefined
  }
  const line = async (res: { headers: Record<string, unknown> }): Promise<Record<string, unknown> | undefined> =>
    lineWhere((l) => l['decision_id'] === res.headers['x-geofence-decision-id'])

  t.test('429 and 5xx are passed through in the provider\'s shape, retry-after kept', async (t) => {
    const cases = [
      { path: '/anthropic/v1/messages', status: 429, body: { type: 'error', error: { type: 'rate_limit_error' } }, header: 'anthropic-ratelimit-requests-remaining' },
      { path: '/anthropic/v1/messages', status: 529, body: { type: 'error', error: { type: 'overloaded_error' } }, header: 'anthropic-ratelimit-requests-remaining' },
      { path: '/openai/v1/chat/completions', status: 429, body: { error: { type: 'requests', code: 'rate_limit_exceeded' } }, header: 'x-ratelimit-remaining-requests' },
      { path: '/openai/v1/chat/completions', status: 500, body: { error: { type: 'server_error' } }, header: 'x-ratelimit-remaining-requests' },
      { path: '/gemini/v1beta/models/fake-error-429:generateContent', status: 429, body: { error: { code: 429, status: 'RESOURCE_EXHAUSTED' } } },
      { path: '/gemini/v1beta/models/fake-error-503:generateContent', status: 503, body: { error: { code: 503, status: 'UNAVAILABLE' } } },
      { path: '/bedrock/model/anthropic.fake-error-429/converse', status: 429, body: { message: /Too many requests/ }, header: 'x-amzn-errortype' },
      { path: '/bedrock/model/anthropic.fake-error-503/converse', status: 503, body: { message: /unavailable/ }, header: 'x-amzn-errortype' },
    ]
    for (const c of cases) {
      const body = c.path.startsWith('/gemini') || c.path.startsWith('/bedrock') ? '{"messages":[]}' : JSON.stringify({ model: `fake-error-${c.status}`, messages: [] })
      const res = await underFault(t, async () => send(`${gw.url}${c.path}`, { body, headers }))
      t.equal(res.status, c.status, `${c.path}: ${c.status}`)
      t.match(res.json(), c.body, 'the provider\'s own error body')
      t.equal(res.headers['retry-after'], '17', 'retry-after kept')
      if (c.header !== undefined) t.ok(res.headers[c.header], `${c.header} kept`)
      t.match(await line(res), { action: 'allow', rule: 'everyone', status: c.status }, 'the decision line has the upstream\'s status')
      t.notOk((await line(res))?.['cut'])
      t.notOk((await line(res))?.['upstream_error'], 'the upstream\'s own answer: no upstream_error')
    }
  })

  t.test('the official SDKs read them as the provider\'s own errors', async (t) => {
    const anthropic = new Anthropic({ baseURL: `${gw.url}/anthropic`, apiKey: 'sk-test', maxRetries: 0, defaultHeaders: { 'x-forwarded-for': UNITED_STATES } })
    const err = await anthropic.messages.create({ model: 'fake-error-429', max_tokens: 1, messages: [] }).then(() => null, (e: unknown) => e)
    t.ok(err instanceof Anthropic.RateLimitError, 'Anthropic.RateLimitError')
    t.equal((err as InstanceType<typeof Anthropic.RateLimitError>).headers?.get('retry-after'), '17')
    const openai = new OpenAI({ baseURL: `${gw.url}/openai/v1`, apiKey: 'sk-test', maxRetries: 0, defaultHeaders: { 'x-forwarded-for': UNITED_STATES } })
    const oerr = await openai.chat.completions.create({ model: 'fake-error-500', messages: [] }).then(() => null, (e: unknown) => e)
    t.ok(oerr instanceof OpenAI.InternalServerError, 'OpenAI.InternalServerError')
  })

  t.test('the upstream resets a stream mid-way: the client\'s stream is cut, not ended', async (t) => {
    const res = await underFault(t, async () => send(`${gw.url}/anthropic/v1/messages`, { body: '{"model":"fake-reset","stream":true}', headers }).then((r) => r, (e: Error) => e))
    t.ok(res instanceof Error, 'the client sees its response end abruptly (no final chunk): it cannot take the stream for whole')
    if (res instanceof Error) t.match(res.message, /aborted|terminated|socket hang up/)
    t.match(await lineWhere((d) => d['model'] === 'fake-reset'), { action: 'allow', status: 200, cut: CUT })
  })

  t.test('the upstream resets before answering: 502 in the dialect\'s shape', async (t) => {
    const res = await underFault(t, async () => send(`${gw.url}/anthropic/v1/messages`, { body: '{"model":"fake-reset-before"}', headers }))
    t.equal(res.status, 502)
    t.same(res.json(), { type: 'error', error: { type: 'api_error', message: 'the upstream could not be reached' }, request_id: res.headers['x-geofence-decision-id'] })
    t.match(await line(res), { action: 'allow', status: 502, upstream_error: 'the upstream could not be reached' })
  })

  t.test('no first byte in time: 504 in the dialect\'s shape', async (t) => {
    const res = await underFault(t, async () => send(`${gw.url}/openai/v1/chat/completions`, { body: '{"model":"fake-hang","messages":[]}', headers }))
    t.equal(res.status, 504)
    t.same(res.json(), { error: { message: 'the upstream did not answer in time', type: 'server_error', param: null, code: 'gateway_timeout' } })
    t.match(await line(res), { action: 'allow', status: 504, upstream_error: 'the upstream did not answer in time' })
  })

  t.test('a stream that stalls mid-way is cut after the idle timeout', async (t) => {
    const res = await underFault(t, async () => send(`${gw.url}/openai/v1/chat/completions`, { body: '{"model":"fake-stall","stream":true,"messages":[]}', headers }).then((r) => r, (e: Error) => e))
    t.ok(res instanceof Error, 'the client\'s stream is cut, not ended')
    t.match(await lineWhere((d) => d['model'] === 'fake-stall'), { action: 'allow', status: 200, cut: CUT })
  })

  t.test('a refused connection: 502', async (t) => {
    const res = await underFault(t, async () => send(`${gw.url}/refusing/v1/messages`, { body: '{"model":"claude-sonnet-4-5"}', headers }))
    t.equal(res.status, 502)
    t.same(res.json(), { type: 'error', error: { type: 'api_error', message: 'the upstream could not be reached' }, request_id: res.headers['x-geofence-decision-id'] })
    t.match(await line(res), { upstream: 'refusing', action: 'allow', status: 502, upstream_error: 'the upstream could not be reached' })
  })

  t.test('a name that does not resolve: 502, and nothing but the lookup was tried', async (t) => {
    const res = await underFault(t, async () => send(`${gw.url}/unresolvable/v1/chat/completions`, { body: '{"model":"gpt-4o","messages":[]}', headers }))
    t.equal(res.status, 502)
    t.same(res.json(), { error: { message: 'the upstream could not be reached', type: 'server_error', param: null, code: 'bad_gateway' } })
    t.match(await line(res), { upstream: 'unresolvable', action: 'allow', status: 502, upstream_error: 'the upstream could not be reached' })
    t.ok(lookedUp.includes('llm-provider.invalid'), 'the upstream\'s name was looked up')
  })

  t.test('afterwards', async (t) => {
    t.same(lookedUp.filter((h) => !h.endsWith('.invalid')), [], 'no other name was ever looked up: every connection was to loopback')
    t.same(warnings.map((w) => w.name), [], 'no warning (MaxListenersExceeded or other)')
    const lines = gw.decisions()
    t.equal(new Set(lines.map((l) => l['decision_id'])).size, lines.length, 'no request has two decision lines')
    // geofence replay reads every line of this log, upstream_error and cut included.
    const log = join(mkdtempSync(join(tmpdir(), 'geofence-faults-')), 'gateway.log')
    writeFileSync(log, gw.rawLogs())
    const report = await replay([log], gw.runtime)
    t.match(report, { unreadable: 0, decisions: lines.length, unchanged: lines.length })
    t.ok(lines.some((l) => l['upstream_error'] !== undefined) && lines.some((l) => l['cut'] !== undefined), 'the log holds both')
  })
})
