// No client input reaches a 5xx, stalls the gateway or goes unlogged: fast-check generates
// request targets, headers and bodies (bounded runs, a fixed seed so a failure replays), each
// sent over a real socket; every answer is under 500 and has exactly one decision line.
import { gzipSync } from 'node:zlib'
import net from 'node:net'
import fc from 'fast-check'
import t from 'tap'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { baseConfig, startTestGateway } from '../support/gateway.js'

const MOUNTS = ['/anthropic', '/openai', '/gemini', '/bedrock', '/azure', '/nowhere', '']
const PIECES = ['v1', 'messages', 'chat', 'completions', 'models', 'batches', 'realtime', '%2F', '%2e%2e', '..', '.', '%ZZ', '%25', '%00', '\\', 'a%3Ab', 'gemini-2.5-pro:generateContent', 'model', 'anthropic.claude-opus-4-1-v1%3A0', 'invoke', 'deployments', 'x', '', '%E2%80%AE', '~', ';', '#f']
const QUERIES = ['', '?', '?model=gpt-4o', '?model=a&model=b', '?key=k', '?%6Bey=k', '?x=%ZZ', '?a;b', '?alt=sse', '?MODEL=x', '?x=%00', '?=&&=']
const BODIES: Array<fc.Arbitrary<Buffer>> = [
  fc.constant(Buffer.alloc(0)),
  fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)),
  fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
  fc.jsonValue({ maxDepth: 3 }).map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
  fc.record({ model: fc.oneof(fc.constantFrom('claude-sonnet-4-5', 'gpt-4o', 'MODEL', '', 'ft:gpt-4o:x::y'), fc.string({ maxLength: 40 }), fc.integer()), messages: fc.constant([]) }, { requiredKeys: [] }).map((v) => Buffer.from(JSON.stringify(v))),
  fc.constant(Buffer.from('{"model":"claude-haiku-4-5","model":"claude-opus-4-1"}')),
  fc.constant(Buffer.from('{"requests":[{"custom_id":"a","params":{"model":"claude-opus-4-1"}}]}')),
]

/** One raw request; the answer's status and decision id, or null when the connection closed without one. */
async function exchange (port: number, bytes: Buffer): Promise<{ status: number, id: string | null } | null> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => { socket.end(bytes) })
    let answer = ''
    const done = (): void => {
      const status = /^HTTP\/1\.1 (\d{3})/.exec(answer)
      resolve(status === null ? null : { status: Number(status[1]), id: /x-geofence-decision-id: ([0-9a-f-]{36})/i.exec(answer)?.[1] ?? null })
    }
    socket.setTimeout(10_000, () => { socket.destroy() })
    socket.on('data', (c: Buffer) => { answer += c.toString('latin1') })
    socket.on('close', done)
    socket.on('error', () => {})
  })
}

t.setTimeout(240_000)

t.test('generated requests: never a 5xx, always one decision line', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(baseConfig(upstream.url).replace('body_limit: 1mb', 'body_limit: 64kb, max_event_loop_delay: 0').replace('upstreams:\n', `upstreams:
  gemini: { url: "${upstream.url}", dialect: gemini }
  bedrock: { url: "${upstream.url}", dialect: bedrock }
  azure: { url: "${upstream.url}", dialect: azure-openai, model_aliases: { prod: gpt-4o } }
`))
  t.teardown(gw.close)
  const port = Number(new URL(gw.url).port)
  const request = fc.record({
    method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'),
    mount: fc.constantFrom(...MOUNTS),
    path: fc.array(fc.constantFrom(...PIECES), { maxLength: 6 }),
    query: fc.constantFrom(...QUERIES),
    headers: fc.array(fc.constantFrom(
      'X-Forwarded-For: 8.8.8.8', 'X-Forwarded-For: 203.198.0.1, 10.0.0.1', 'X-Forwarded-For: garbage', 'X-Forwarded-For: ::ffff:8.8.8.8',
      'Forwarded: for=8.8.8.8;x="', 'Forwarded: for="[2001:db8::1]:80"', 'Forwarded: for=unknown',
      'Content-Type: application/json', 'Content-Type: multipart/form-data; boundary=b', 'Content-Type: text/plain',
      'Content-Encoding: gzip', 'Content-Encoding: br', 'Content-Encoding: zstd', 'Content-Encoding: gzip, gzip',
      'Authorization: Bearer x', 'x-geofence-identity: a.b.c', 'Expect: 100-continue', 'Transfer-Encoding: chunked',
      'Upgrade: websocket', 'Connection: Upgrade', 'Upgrade: h2c',
    ), { maxLength: 6 }),
    body: fc.oneof(...BODIES),
    gzip: fc.boolean(),
  })
  let runs = 0
  await fc.assert(fc.asyncProperty(request, async (r) => {
    runs++
    const body = r.gzip ? gzipSync(r.body) : r.body
    const chunked = r.headers.includes('Transfer-Encoding: chunked')
    const framing = chunked ? '' : `Content-Length: ${body.length}\r\n`
    const payload = chunked ? Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]) : body
    const head = `${r.method} ${r.mount}/${r.path.join('/')}${r.query} HTTP/1.1\r\nHost: sidecar\r\n${r.headers.map((h) => `${h}\r\n`).join('')}${framing}Connection: close\r\n\r\n`
    const answer = await exchange(port, Buffer.concat([Buffer.from(head, 'latin1'), payload]))
    if (answer === null) return true // a connection the gateway may close (an upgrade it refused mid-way)
    if (answer.status >= 500) throw new Error(`${answer.status} for ${JSON.stringify(head)}`)
    if (answer.status !== 101 && answer.id === null) throw new Error(`no decision id for ${JSON.stringify(head)}`)
    if (answer.id !== null) {
      await new Promise((resolve) => setTimeout(resolve, 5))
      const lines = gw.decisions().filter((l) => l['decision_id'] === answer.id)
      if (lines.length !== 1) throw new Error(`${lines.length} decision lines for ${JSON.stringify(head)}`)
    }
    return true
  }), { numRuns: 400, seed: 20261130, endOnFailure: true })
  t.equal(runs >= 400, true, `${runs} generated requests`)
  const alive = await exchange(port, Buffer.from('GET /anthropic/v1/models HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 8.8.8.8\r\nConnection: close\r\n\r\n'))
  t.match(alive, { status: 451 }, 'the gateway still answers')
})
