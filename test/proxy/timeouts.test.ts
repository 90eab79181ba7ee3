// Timeouts: first byte (504 in the dialect's shape), idle stream (cut), request body (408);
// and a saturated event loop answers 503 instead of queueing.
import net from 'node:net'
import t from 'tap'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { startTestGateway } from '../support/gateway.js'
import { send } from '../support/http.js'

t.test('upstream timeouts', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  // The overload guard is off here, so that a loaded machine cannot turn a timeout into a 503;
  // the last test has a gateway of its own with the guard on.
  const gw = await startTestGateway(`
server: { host: 127.0.0.1, port: 0, body_timeout: 300ms, max_event_loop_delay: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams:
  anthropic: { url: "${upstream.url}", dialect: anthropic, timeouts: { connect: 1s, first_byte: 300ms, idle: 300ms } }
  openai: { url: "${upstream.url}", dialect: openai, timeouts: { first_byte: 300ms } }
policy: { rules: [ { name: r, deny: [CN], action: block } ] }
`)
  t.teardown(gw.close)
  const headers = { 'content-type': 'application/json', 'x-forwarded-for': '8.8.8.8' }

  t.test('no first byte in time: 504 in the dialect shape', async (t) => {
    const started = Date.now()
    const res = await send(`${gw.url}/anthropic/v1/messages`, { body: '{"model":"fake-hang"}', headers })
    t.equal(res.status, 504)
    t.same(res.json(), { type: 'error', error: { type: 'timeout_error', message: 'the upstream did not answer in time' }, request_id: res.headers['x-geofence-decision-id'] })
    t.ok(Date.now() - started < 5000, 'answered after the first-byte timeout, not the default five minutes')
    const oa = await send(`${gw.url}/openai/v1/chat/completions`, { body: '{"model":"fake-hang"}', headers })
    t.equal(oa.status, 504)
    t.equal(oa.json().error.code, 'gateway_timeout')
    t.match(gw.decisions().at(-1), { action: 'allow', status: 504 })
  })

  t.test('a stream that goes idle is cut', async (t) => {
    const res = await send(`${gw.url}/anthropic/v1/messages`, { body: '{"model":"fake-stall","stream":true}', headers }).then((r) => r, (e: Error) => e)
    // Headers and the first event were sent; the cut shows as an aborted response.
    if (res instanceof Error) t.match(res.message, /aborted|socket hang up|terminated/)
    else t.match(res.body, /event: ping/)
    await new Promise((resolve) => setTimeout(resolve, 100))
    t.match(gw.decisions().find((l) => l['model'] === 'fake-stall'), { action: 'allow', cut: 'the upstream response was cut before its end' }, 'the decision is still logged, with the cut')
  })

  t.test('a client that stops sending its body gets a 408', async (t) => {
    const { port } = new URL(gw.url)
    const socket = net.connect(Number(port), '127.0.0.1')
    socket.write('POST /anthropic/v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"model":')
    let text = ''
    socket.on('data', (d: Buffer) => { text += d.toString() })
    await new Promise((resolve) => socket.on('close', resolve))
    t.match(text, /^HTTP\/1\.1 408/)
  })

  t.test('a saturated event loop answers 503 in the dialect shape', async (t) => {
    const gw = await startTestGateway(`
server: { host: 127.0.0.1, port: 0, max_event_loop_delay: 100ms }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams:
  anthropic: { url: "${upstream.url}", dialect: anthropic }
policy: { rules: [ { name: r, deny: [CN], action: block } ] }
`)
    t.teardown(gw.close)
    // Saturate the loop for a while, as sustained CPU-bound work would, then ask while it lasts.
    const busyUntil = Date.now() + 1_200
    while (Date.now() < busyUntil) {
      const sliceEnd = Date.now() + 150
      while (Date.now() < sliceEnd) { /* busy */ }
      await new Promise((resolve) => setImmediate(resolve))
    }
    const res = await send(`${gw.url}/anthropic/v1/messages`, { body: '{"model":"claude-sonnet-4-5"}', headers })
    t.equal(res.status, 503)
    t.equal(res.json().error.type, 'overloaded_error')
    t.match(gw.decisions().at(-1), { status: 503, action: 'block', reason: /overloaded/ })
  })
})
