// Only a WebSocket is ever tunnelled. A plain request that offers another protocol (curl
// --http2 offers h2c on every cleartext request) is served as plain HTTP/1.1, its offer ignored
// and never forwarded; it is decided like any request.
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import t from 'tap'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { baseConfig, startTestGateway } from '../support/gateway.js'

/** One raw HTTP/1.1 exchange: the bytes as written, the answer (head and Content-Length body) as text. */
async function raw (port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => { socket.write(request) })
    let answer = ''
    socket.on('data', (c: Buffer) => {
      answer += c.toString('latin1')
      const end = answer.indexOf('\r\n\r\n')
      const length = /\r\ncontent-length: (\d+)/i.exec(answer)
      if (end !== -1 && length !== null && answer.length >= end + 4 + Number(length[1])) {
        socket.destroy()
        resolve(answer)
      }
    })
    socket.on('error', reject)
  })
}

t.test('an offer to switch to h2c is ignored, and the request decided as any other', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(baseConfig(upstream.url))
  t.teardown(gw.close)
  const port = Number(new URL(gw.url).port)
  const offer = (ip: string, model: string): string => {
    const body = JSON.stringify({ model, max_tokens: 1, messages: [] })
    return `POST /anthropic/v1/messages HTTP/1.1\r\nHost: sidecar\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Type: application/json\r\nX-Forwarded-For: ${ip}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  }
  const allowed = await raw(port, offer('8.8.8.8', 'claude-sonnet-4-5'))
  t.match(allowed, /^HTTP\/1\.1 200 OK\r\n/, 'answered over HTTP/1.1, no 101')
  t.match(allowed, /Hello from the fake upstream/)
  const call = upstream.calls.at(-1)
  t.equal(call?.headers['upgrade'], undefined, 'the offer is not forwarded')
  t.equal(call?.headers['http2-settings'], undefined)
  t.same(JSON.parse(String(call?.body)), { model: 'claude-sonnet-4-5', max_tokens: 1, messages: [] }, 'the body read and forwarded whole')
  t.match(gw.decisions().at(-1), { action: 'allow', status: 200, model: 'claude-sonnet-4-5' })

  const before = upstream.calls.length
  const blocked = await raw(port, offer('203.198.0.1', 'claude-sonnet-4-5'))
  t.match(blocked, /^HTTP\/1\.1 451 /)
  t.equal(upstream.calls.length, before, 'a blocked offer reaches nothing')
  t.match(gw.decisions().at(-1), { action: 'block', status: 451 })

  const curl = spawnSync('curl', ['--version'], { encoding: 'utf8' })
  if (curl.status === 0 && /HTTP2/.test(curl.stdout)) {
    // Not spawnSync: the gateway answering curl runs in this very process.
    const child = spawn('curl', ['-s', '--http2', '-o', '/dev/null', '-w', '%{http_code} %{http_version}', '-H', 'content-type: application/json', '-H', 'x-forwarded-for: 8.8.8.8', '--data', '{"model":"claude-sonnet-4-5","max_tokens":1,"messages":[]}', `${gw.url}/anthropic/v1/messages`], { stdio: ['ignore', 'pipe', 'inherit'], timeout: 20_000 })
    let out = ''
    child.stdout.on('data', (c: Buffer) => { out += String(c) })
    await once(child, 'close')
    t.equal(out, '200 1.1', 'curl --http2 on cleartext: its h2c offer is declined and it is served over HTTP/1.1')
  } else {
    t.comment('curl with HTTP/2 is not on this machine: the raw exchanges above stand alone')
  }
})
