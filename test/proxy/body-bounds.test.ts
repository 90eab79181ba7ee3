// The bounds on what one request body may cost, through real sockets: a compressed body is
// stopped while it decodes, at its endpoint's limit or at server.max_expansion_ratio; a batch
// past server.batch_max_items is refused; a large body is read in a worker thread with every
// check a small one gets; past server.max_concurrent_large_bodies a large body is refused at
// once (503, Retry-After); and an unmounted path answers its 404 without reading the body.
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import net from 'node:net'
import { gzipSync } from 'node:zlib'
import t, { type Test } from 'tap'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { startTestGateway, type TestGateway } from '../support/gateway.js'
import { send } from '../support/http.js'

const MiB = 1024 * 1024
const FROM = { 'content-type': 'application/json', 'x-forwarded-for': '8.8.8.8' }
const gz = { ...FROM, 'content-encoding': 'gzip' }

const message = (content: string, model = 'claude-sonnet-4-5'): string =>
  JSON.stringify({ model, max_tokens: 1, messages: [{ role: 'user', content }] })
const batch = (items: number, content = 'hi'): string =>
  JSON.stringify({ requests: Array.from({ length: items }, (_, i) => ({ custom_id: `r${i}`, params: JSON.parse(message(content)) as unknown })) })

async function gateway (t: Test, server: string): Promise<{ gw: TestGateway, calls: () => number }> {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(`
server: { host: 127.0.0.1, port: 0, ${server} }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams:
  anthropic: { url: "${upstream.url}", dialect: anthropic }
policy: { rules: [ { name: r, deny: [CN], action: block } ] }
`)
  t.teardown(gw.close)
  return { gw, calls: () => upstream.calls.length }
}

/** The decision line of the answer `res` (by its decision id). */
function line (gw: TestGateway, res: { headers: Record<string, unknown> }): Record<string, unknown> | undefined {
  return gw.decisions().find((d) => d['decision_id'] === res.headers['x-geofence-decision-id'])
}

t.test('a compressed body is stopped at the expansion ratio past 1 MiB, and at its endpoint\'s limit', async (t) => {
  const { gw, calls } = await gateway(t, 'body_limit: 4mb, batch_body_limit: 6mb, max_expansion_ratio: 20')

  // 3 MiB of one letter: a few kilobytes of gzip, well past 20 times that.
  const bomb = gzipSync(message('A'.repeat(3 * MiB)))
  let res = await send(`${gw.url}/anthropic/v1/messages`, { body: bomb, headers: gz })
  t.equal(res.status, 413)
  t.equal(res.json().error.type, 'request_too_large', 'in the Anthropic shape')
  t.match(res.json().error.message, /server\.max_expansion_ratio \(20\)/)
  t.match(line(gw, res), { status: 413, action: 'block', reason: /max_expansion_ratio/ }, 'a decision line that names the bound')

  // Under 1 MiB decoded, a high ratio costs nothing and is allowed (an SDK's repetitive prompt).
  res = await send(`${gw.url}/anthropic/v1/messages`, { body: gzipSync(message('A'.repeat(900 * 1024))), headers: gz })
  t.equal(res.status, 200, 'a small body decodes whatever its ratio')

  // A large body of ordinary ratio is decoded, read in a worker thread and forwarded decoded.
  const before = calls()
  const prompt = randomBytes(2 * MiB).toString('base64')
  res = await send(`${gw.url}/anthropic/v1/messages`, { body: gzipSync(message(prompt)), headers: gz })
  t.equal(res.status, 200, 'a 2.7 MiB body of ratio 1.3 is allowed')
  t.equal(calls(), before + 1)
  t.match(line(gw, res), { action: 'allow', model: 'claude-sonnet-4-5' })

  // The limits, with the ratio out of the way: past body_limit, past batch_body_limit.
  const { gw: wide } = await gateway(t, 'body_limit: 2mb, batch_body_limit: 4mb, max_expansion_ratio: 100000')
  res = await send(`${wide.url}/anthropic/v1/messages`, { body: bomb, headers: gz })
  t.equal(res.status, 413)
  t.match(line(wide, res), { status: 413, reason: /decoded request body is larger than server\.body_limit/ })
  res = await send(`${wide.url}/anthropic/v1/messages/batches`, { body: gzipSync(batch(1, 'A'.repeat(5 * MiB))), headers: gz })
  t.equal(res.status, 413)
  t.match(line(wide, res), { status: 413, reason: /decoded request body is larger than server\.batch_body_limit/ })
})

t.test('a batch of more items than server.batch_max_items is refused, small or large', async (t) => {
  const { gw } = await gateway(t, 'batch_max_items: 3')
  let res = await send(`${gw.url}/anthropic/v1/messages/batches`, { body: batch(3), headers: FROM })
  t.match(line(gw, res), { action: 'allow' }, 'three items pass')
  res = await send(`${gw.url}/anthropic/v1/messages/batches`, { body: batch(4), headers: FROM })
  t.equal(res.status, 413)
  t.match(res.json().error.message, /the batch has 4 requests, more than server\.batch_max_items \(3\)/)
  t.match(line(gw, res), { status: 413, reason: /batch_max_items/ })
  // Past 1 MiB the batch is read in a worker thread: the same bound holds there.
  res = await send(`${gw.url}/anthropic/v1/messages/batches`, { body: batch(4, 'x'.repeat(MiB / 2)), headers: FROM })
  t.equal(res.status, 413)
  t.match(line(gw, res), { status: 413, reason: /batch_max_items/ })
})

t.test('a large body gets every check a small one gets, in the worker thread', async (t) => {
  const { gw } = await gateway(t, '')
  const pad = 'x'.repeat(2 * MiB)
  const cases: Array<[string, string, RegExp]> = [
    ['a repeated "model" key', `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"${pad}"}],"model":"gpt-4o"}`, /more than one "model" key/],
    ['a key that folds to "model"', `{"model":"claude-sonnet-4-5","MODEL":"gpt-4o","messages":[{"role":"user","content":"${pad}"}]}`, /key "MODEL"/],
    ['not JSON', `{"model":"claude-sonnet-4-5","messages":"${pad}`, /not valid JSON/],
  ]
  for (const [name, body, why] of cases) {
    const res = await send(`${gw.url}/anthropic/v1/messages`, { body, headers: FROM })
    t.equal(res.status, 400, name)
    t.match(line(gw, res), { status: 400, reason: why }, name)
  }
  // A batch whose items disagree is decided on every item: one refused model blocks it.
  const items = JSON.parse(batch(2, pad)) as { requests: Array<{ params: { model: string } }> }
  items.requests[1]!.params.model = ''
  const res = await send(`${gw.url}/anthropic/v1/messages/batches`, { body: JSON.stringify(items), headers: FROM })
  t.equal(res.status, 400)
  t.match(line(gw, res), { reason: /requests\[1\]\.params: "model" must be a non-empty string/ })
})

/** A request whose head and first `sent` bytes of a `length`-byte body are written, and the rest held. */
async function held (url: string, path: string, length: number | 'chunked', sent: number): Promise<{ socket: net.Socket, answer: Promise<string>, finish: () => void }> {
  const { hostname, port } = new URL(url)
  const socket = net.connect(Number(port), hostname)
  await once(socket, 'connect')
  let text = ''
  socket.on('data', (c: Buffer) => { text += c.toString('latin1') })
  const answer = new Promise<string>((resolve) => {
    socket.on('data', () => { if (text.includes('\r\n\r\n')) resolve(text) })
    socket.on('close', () => { resolve(text) })
  })
  const framing = length === 'chunked' ? 'transfer-encoding: chunked' : `content-length: ${length}`
  socket.write(`POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-forwarded-for: 8.8.8.8\r\n${framing}\r\n\r\n`)
  const body = message('y'.repeat(Math.max(0, (length === 'chunked' ? 2 * MiB : length) - message('').length)))
  const chunk = (b: string): string => (length === 'chunked' ? `${b.length.toString(16)}\r\n${b}\r\n` : b)
  socket.write(chunk(body.slice(0, sent)))
  return { socket, answer, finish: () => { socket.write(chunk(body.slice(sent)) + (length === 'chunked' ? '0\r\n\r\n' : '')) } }
}

t.test('past server.max_concurrent_large_bodies a large body is refused at once: 503, Retry-After, a decision line', async (t) => {
  const { gw } = await gateway(t, 'max_concurrent_large_bodies: 2, body_timeout: 20s')
  const path = '/anthropic/v1/messages'
  // Two large bodies under way, each holding a slot: one by its Content-Length, one as its chunks pass 1 MiB.
  const a = await held(gw.url, path, 3 * MiB, 1000)
  const b = await held(gw.url, path, 'chunked', 1.5 * MiB)
  t.teardown(() => { a.socket.destroy(); b.socket.destroy() })
  await new Promise((resolve) => setTimeout(resolve, 200))

  const started = Date.now()
  const refused = await send(`${gw.url}${path}`, { body: message('z'.repeat(2 * MiB)), headers: FROM })
  t.equal(refused.status, 503)
  t.equal(refused.headers['retry-after'], '1')
  t.equal(refused.json().error.type, 'overloaded_error', 'in the Anthropic shape')
  t.match(line(gw, refused), { status: 503, reason: /server\.max_concurrent_large_bodies \(2\)/ })
  t.ok(Date.now() - started < 5_000, 'refused at once, not queued')

  // A chunked one is cut as it crosses 1 MiB.
  const c = await held(gw.url, path, 'chunked', 1.5 * MiB)
  t.teardown(() => { c.socket.destroy() })
  t.match(await c.answer, /^HTTP\/1\.1 503/)

  // A small body is not held up by them.
  const small = await send(`${gw.url}${path}`, { body: message('hello'), headers: FROM })
  t.equal(small.status, 200)

  // The two finish and are decided; their slots are free again.
  a.finish()
  b.finish()
  t.match(await a.answer, /^HTTP\/1\.1 200/)
  t.match(await b.answer, /^HTTP\/1\.1 200/)
  const again = await send(`${gw.url}${path}`, { body: message('z'.repeat(2 * MiB)), headers: FROM })
  t.equal(again.status, 200, 'a slot is free once a large body has been decided')
})

t.test('an unmounted path answers 404 without reading the body, and closes the connection', async (t) => {
  const { gw } = await gateway(t, '')
  const { hostname, port } = new URL(gw.url)
  const socket = net.connect(Number(port), hostname)
  t.teardown(() => { socket.destroy() })
  await once(socket, 'connect')
  // The head says 64 MiB follow; not one byte of them is sent.
  socket.write('POST /nowhere/v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 67108864\r\n\r\n')
  let text = ''
  socket.on('data', (c: Buffer) => { text += c.toString('latin1') })
  await once(socket, 'end')
  t.match(text, /^HTTP\/1\.1 404/, 'answered before any of the body was sent')
  t.match(text, /\r\nconnection: close\r\n/i, 'and the connection is closed rather than the body read to be thrown away')
  t.match(text, /no upstream is mounted at \/nowhere\/v1\/messages/)
  const id = /x-geofence-decision-id: (\S+)/i.exec(text)?.[1]
  t.match(gw.decisions().find((d) => d['decision_id'] === id), { status: 404 }, 'with its decision line')
  t.equal(socket.bytesWritten < 1024, true, 'the client wrote only the head')
})
