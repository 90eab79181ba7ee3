// Nothing the gateway's parsers would drop or cut is read as if it were whole: a head padded
// past Node's header-line count is read in full, a head too large for the server is a 431, a
// head or body that stops arriving is a 408; each in the dialect's shape, with a decision line
// that says the gateway cut it.
import net from 'node:net'
import t from 'tap'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { baseConfig, startTestGateway } from '../support/gateway.js'

async function exchange (port: number, bytes: string, opts: { end?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => { socket.write(bytes) })
    let answer = ''
    socket.on('data', (c: Buffer) => { answer += c.toString('latin1') })
    socket.on('close', () => { resolve(answer) })
    socket.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'ECONNRESET') resolve(answer); else reject(e) })
    if (opts.end === true) socket.end()
  })
}

t.test('padding, oversized heads and stalls', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(baseConfig(upstream.url).replace('body_limit: 1mb', 'body_limit: 1mb, body_timeout: 1s'))
  t.teardown(gw.close)
  const port = Number(new URL(gw.url).port)
  const body = JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 1, messages: [] })

  t.test('a trusted proxy\'s header after 2,100 padding lines is still read', async (t) => {
    // The client plants its own Forwarded first; the trusted proxy appends X-Forwarded-For last.
    const padding = Array.from({ length: 2100 }, (_, i) => `x${i}: 1\r\n`).join('')
    const before = upstream.calls.length
    const answer = await exchange(port, `POST /anthropic/v1/messages HTTP/1.1\r\nHost: x\r\nForwarded: for=8.8.8.8\r\n${padding}Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\nX-Forwarded-For: 203.198.0.1\r\n\r\n${body}`)
    t.match(answer, /^HTTP\/1\.1 451 /, 'the two headers disagree: the location is unknown, and it is blocked')
    t.equal(upstream.calls.length, before)
    t.match(gw.decisions().at(-1), { action: 'block', location_reason: /different callers|disagree|cannot/ })
  })

  t.test('a head larger than the server reads is a 431 in the dialect\'s shape', async (t) => {
    const big = `x-pad: ${'a'.repeat(20_000)}\r\n`
    const answer = await exchange(port, `POST /anthropic/v1/messages HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 8.8.8.8\r\n${big}Content-Length: ${body.length}\r\n\r\n${body}`)
    t.match(answer, /^HTTP\/1\.1 431 /)
    t.match(answer, /"type":"invalid_request_error","message":"the request head is larger than the gateway reads \(16 KiB\)"/)
    const id = /x-geofence-decision-id: ([0-9a-f-]{36})/.exec(answer)?.[1]
    t.match(gw.decisions().find((l) => l['decision_id'] === id), { upstream: 'anthropic', path: '/anthropic/v1/messages', status: 431, action: 'block', cut: /the gateway cut the request/ })
  })

  t.test('a head that stops arriving is a 408 (its upstream unknown: Node keeps no part of an unfinished head)', async (t) => {
    const answer = await exchange(port, 'POST /openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 8.8.8.8\r\n')
    t.match(answer, /^HTTP\/1\.1 408 /)
    t.match(answer, /"type":"request_timeout"/, 'the generic shape')
    t.match(gw.decisions().at(-1), { upstream: null, status: 408, action: 'block', cut: /did not arrive/ })
  })

  t.test('a body that stops arriving is a 408, on the request\'s own decision line', async (t) => {
    const before = gw.decisions().length
    const answer = await exchange(port, 'POST /anthropic/v1/messages HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 8.8.8.8\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"model":')
    t.match(answer, /^HTTP\/1\.1 408 /)
    await new Promise((resolve) => setTimeout(resolve, 100))
    const lines = gw.decisions().slice(before)
    t.equal(lines.length, 1, 'one request, one line')
    t.match(lines[0], { upstream: 'anthropic', method: 'POST', path: '/anthropic/v1/messages', status: 408, cut: /did not arrive/ })
  })
})
