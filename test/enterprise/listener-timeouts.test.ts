// Timeouts on the TLS listener behave as on the plain one: a head or body that stops arriving
// is a 408 in the dialect's shape with a decision line saying the gateway cut it, over
// HTTP/1.1 on TLS (raw TLS sockets) and over HTTP/2 (node:http2).
import http2 from 'node:http2'
import tls from 'node:tls'
import t from 'tap'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { startTestGateway } from '../support/gateway.js'
import { LOOPBACK_SAN, makeCa } from '../support/pki.js'

const ca = makeCa('Bank Root CA')
const cert = ca.issue('listener', { subject: '/O=Bank/CN=llm-geofence', san: LOOPBACK_SAN })

/** What an HTTP/1.1 client on TLS gets for `chunks`, each written `gapMs` after the last; the socket is left open. */
async function overTls (port: number, chunks: string[], gapMs = 0): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ port, host: '127.0.0.1', ca: ca.cert, servername: 'localhost', ALPNProtocols: ['http/1.1'] }, () => {
      let i = 0
      const next = (): void => {
        if (i >= chunks.length || socket.destroyed) return
        socket.write(chunks[i++] ?? '')
        setTimeout(next, gapMs)
      }
      next()
    })
    let answer = ''
    socket.on('data', (c: Buffer) => { answer += c.toString('latin1') })
    socket.on('close', () => { resolve(answer) })
    socket.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'ECONNRESET') resolve(answer); else reject(e) })
  })
}

t.test('the TLS listener', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(`
server:
  host: 127.0.0.1
  port: 0
  body_timeout: 600ms
  tls: { cert: "file:${cert.certFile}", key: "file:${cert.keyFile}" }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams:
  anthropic: { url: "${upstream.url}", dialect: anthropic }
  openai: { url: "${upstream.url}", dialect: openai }
policy:
  rules:
    - { name: others, models: ["*"], deny: [HK], action: block }
`)
  t.teardown(gw.close)
  const port = Number(new URL(gw.url).port)

  const claude = JSON.stringify({ model: 'claude-sonnet-5-5', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] })

  t.test('HTTP/1.1 on TLS: a body that stops arriving is a 408 in the dialect\'s shape, on the request\'s own decision line', async (t) => {
    const before = gw.decisions().length
    const answer = await overTls(port, ['POST /anthropic/v1/messages HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 8.8.8.8\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"model":'])
    t.match(answer, /^HTTP\/1\.1 408 /)
    t.match(answer, /"type":"error","error":\{"type":"timeout_error","message":"the request did not arrive within server\.body_timeout"\}/, 'Anthropic\'s shape')
    const lines = await decisionsAfter(before)
    t.equal(lines.length, 1, 'one request, one line')
    t.match(lines[0], { upstream: 'anthropic', path: '/anthropic/v1/messages', status: 408, action: 'block', cut: 'the gateway cut the request: the request did not arrive within server.body_timeout' })
    t.equal(upstream.calls.length, 0, 'nothing reached the upstream')
  })

  t.test('HTTP/1.1 on TLS: a head trickled a line at a time is cut at server.body_timeout, not when it ends', async (t) => {
    const before = gw.decisions().length
    // 40 header lines, one every 100 ms: each arrives well within any idle timeout, the whole never.
    const lines = ['POST /openai/v1/chat/completions HTTP/1.1\r\n', 'Host: x\r\n', ...Array.from({ length: 40 }, (_, i) => `x-slow-${i}: 1\r\n`)]
    const answer = await overTls(port, lines, 100)
    t.match(answer, /^HTTP\/1\.1 408 /)
    t.match(answer, /"type":"request_timeout"/, 'the generic shape: Node keeps no part of an unfinished head, so its upstream is unknown')
    const got = await decisionsAfter(before)
    t.equal(got.length, 1)
    t.match(got[0], { upstream: null, status: 408, action: 'block', cut: /the gateway cut the request: the request did not arrive/ })
  })

  t.test('HTTP/2: a body that stops arriving is a 408 on its stream, then RST_STREAM NO_ERROR; the connection serves on', async (t) => {
    const before = gw.decisions().length
    const session = http2.connect(gw.url, { ca: ca.cert })
    t.teardown(() => { session.close() })
    const stalled = session.request({ ':method': 'POST', ':path': '/anthropic/v1/messages', 'content-type': 'application/json', 'content-length': '100', 'x-forwarded-for': '8.8.8.8' })
    stalled.write('{"model":')
    const head = await new Promise<http2.IncomingHttpHeaders>((resolve) => stalled.once('response', resolve))
    let body = ''
    stalled.setEncoding('utf8')
    stalled.on('data', (c: string) => { body += c })
    await new Promise((resolve) => stalled.once('close', resolve))
    t.equal(head[':status'], 408)
    t.match(body, /"type":"timeout_error","message":"the request did not arrive within server\.body_timeout"/)
    t.equal(stalled.rstCode, http2.constants.NGHTTP2_NO_ERROR, 'the stream the client was still sending on is closed without error')
    const lines = await decisionsAfter(before)
    t.equal(lines.length, 1)
    t.match(lines[0], { upstream: 'anthropic', status: 408, cut: 'the gateway cut the request: the request did not arrive within server.body_timeout' })

    const next = session.request({ ':method': 'POST', ':path': '/anthropic/v1/messages', 'content-type': 'application/json', 'x-forwarded-for': '8.8.8.8' })
    next.end(claude)
    const nextHead = await new Promise<http2.IncomingHttpHeaders>((resolve) => next.once('response', resolve))
    next.resume()
    t.equal(nextHead[':status'], 200, 'another stream on the same connection is served')
  })

  /** The decision lines written since `before`, once the first is there. */
  async function decisionsAfter (before: number): Promise<Array<Record<string, unknown>>> {
    for (let i = 0; i < 40 && gw.decisions().length === before; i++) await new Promise((resolve) => setTimeout(resolve, 25))
    await new Promise((resolve) => setTimeout(resolve, 50))
    return gw.decisions().slice(before)
  }
})
