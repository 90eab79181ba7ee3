// Who the caller is, over real sockets: forwarding headers are believed only from trusted
// peers, and a dual-stack listener's IPv4-mapped peers are seen as IPv4.
import { once } from 'node:events'
import net from 'node:net'
import t from 'tap'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { baseConfig, startTestGateway, type TestGateway } from '../support/gateway.js'
import { send } from '../support/http.js'

const HONG_KONG = '203.198.0.1'
const UNITED_STATES = '8.8.8.8'
const claude = JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 1, messages: [] })

async function ask (gw: TestGateway, headers: Record<string, string | string[]>, localAddress?: string, base = gw.url): Promise<Record<string, unknown>> {
  const res = await send(`${base}/anthropic/v1/messages`, {
    body: claude,
    headers: { 'content-type': 'application/json', ...headers },
    ...(localAddress === undefined ? {} : { localAddress }),
  })
  const id = res.headers['x-geofence-decision-id']
  const line = gw.decisions().find((d) => d['decision_id'] === id)
  if (line === undefined) throw new Error('no decision line')
  return line
}

t.test('client IP over real sockets', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(baseConfig(upstream.url, { trusted: ['127.0.0.1/32', '10.0.0.0/8'] }))
  t.teardown(gw.close)

  t.test('X-Forwarded-For is believed from a trusted peer (127.0.0.1)', async (t) => {
    t.match(await ask(gw, { 'x-forwarded-for': HONG_KONG }), { client_ip: HONG_KONG, ip_source: 'x-forwarded-for', country: 'HK', action: 'block', status: 451 })
    t.match(await ask(gw, { 'x-forwarded-for': UNITED_STATES }), { client_ip: UNITED_STATES, country: 'US', action: 'allow', status: 200 })
  })

  t.test('X-Forwarded-For is ignored from an untrusted peer (127.0.0.2)', async (t) => {
    const line = await ask(gw, { 'x-forwarded-for': UNITED_STATES }, '127.0.0.2')
    t.match(line, { client_ip: '127.0.0.2', ip_source: 'socket', country: null, location_source: 'none', location_reason: 'special-purpose address' })
    t.match(line, { action: 'block', status: 451, reason: /location is unknown/ }, 'a forged header does not buy a way in')
  })

  t.test('the chain is walked from the right, skipping trusted hops only', async (t) => {
    t.match(await ask(gw, { 'x-forwarded-for': `${UNITED_STATES}, ${HONG_KONG}, 10.1.2.3` }), { client_ip: HONG_KONG, country: 'HK' },
      'the leftmost entry (client-written) is not believed past an untrusted hop')
    t.match(await ask(gw, { 'x-forwarded-for': `${HONG_KONG}, 10.9.9.9, 10.1.2.3` }), { client_ip: HONG_KONG, country: 'HK' })
  })

  t.test('RFC 7239 Forwarded is read the same way', async (t) => {
    t.match(await ask(gw, { forwarded: `for=${HONG_KONG};proto=https` }), { client_ip: HONG_KONG, ip_source: 'forwarded', country: 'HK' })
    t.match(await ask(gw, { forwarded: 'for="[2a02:6b8::1]:4711", for=10.0.0.5' }), { client_ip: '2a02:6b8::1', country: 'RU' })
  })

  t.test('a malformed chain is an unknown location, not skipped', async (t) => {
    t.match(await ask(gw, { 'x-forwarded-for': `${UNITED_STATES}, not-an-ip` }), { client_ip: null, country: null, action: 'block', location_reason: /not an IP address/ })
    t.match(await ask(gw, { forwarded: 'for=unknown' }), { client_ip: null, action: 'block' })
    t.match(await ask(gw, { 'x-forwarded-for': `${UNITED_STATES},` }), { client_ip: null, action: 'block' })
  })

  t.test('a quote planted in Forwarded cannot swallow the trusted proxy\'s element', async (t) => {
    // The client (in Hong Kong) sends `Forwarded: for=8.8.8.8;x="`; its proxy (127.0.0.1, trusted)
    // adds the real caller on a second header line, which Node joins with ", ". Read loosely, the
    // proxy's `for="` closes the client's quoted-string, the rest of its element is skipped as
    // junk, and the caller is 8.8.8.8, in the US, where Claude is allowed.
    const callsBefore = upstream.calls.length
    const secondLine = await ask(gw, { forwarded: ['for=8.8.8.8;x="', `for="${HONG_KONG}:4711";proto=https`] })
    t.match(secondLine, { client_ip: null, ip_source: 'forwarded', country: null, location_source: 'none', action: 'block', status: 451 })
    t.match(secondLine, { location_reason: 'forwarded cannot be parsed (RFC 7239): a character that cannot follow an element at offset 22', reason: /location is unknown/ })
    const sameLine = await ask(gw, { forwarded: `for=8.8.8.8;x=", for=${HONG_KONG};proto=https` })
    t.match(sameLine, { client_ip: null, country: null, action: 'block', status: 451, location_reason: /unterminated quoted-string at offset 14/ })
    const withXff = await ask(gw, { forwarded: `for=8.8.8.8;x=", for=${UNITED_STATES}`, 'x-forwarded-for': UNITED_STATES })
    t.match(withXff, { client_ip: null, action: 'block', status: 451, location_reason: /unterminated quoted-string/ }, 'an agreeing X-Forwarded-For does not rescue it')
    t.equal(upstream.calls.length, callsBefore, 'nothing reached the upstream')
    t.match(await ask(gw, { forwarded: ['for=8.8.8.8;x="a,b"', `for="${HONG_KONG}:4711"`] }), { client_ip: HONG_KONG, country: 'HK', action: 'block' },
      'a well-formed quoted comma is a value: the proxy\'s element is the caller')
  })

  t.test('X-Forwarded-For and Forwarded that disagree make the caller unknown', async (t) => {
    t.match(await ask(gw, { 'x-forwarded-for': HONG_KONG, forwarded: `for=${UNITED_STATES}` }), { client_ip: null, action: 'block', location_reason: /name different callers/ })
    t.match(await ask(gw, { 'x-forwarded-for': UNITED_STATES, forwarded: `for=${UNITED_STATES}` }), { client_ip: UNITED_STATES, action: 'allow' })
  })
})

t.test('a dual-stack listener sees IPv4 peers as IPv4 (::ffff:127.0.0.1 -> 127.0.0.1)', async (t) => {
  // First, that this machine really reports the mapped form on a dual-stack socket.
  const probe = net.createServer()
  probe.listen(0, '::')
  await once(probe, 'listening')
  const peer = new Promise<string | undefined>((resolve) => probe.once('connection', (s) => { resolve(s.remoteAddress); s.destroy() }))
  net.connect((probe.address() as net.AddressInfo).port, '127.0.0.1').on('error', () => {})
  t.equal(await peer, '::ffff:127.0.0.1', 'the socket reports an IPv4-mapped IPv6 peer')
  probe.close()

  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(baseConfig(upstream.url, { host: '::', trusted: ['127.0.0.1/32'] }))
  t.teardown(gw.close)
  const port = new URL(gw.url.replace('[::]', '[::1]')).port
  const line = await ask(gw, { 'x-forwarded-for': HONG_KONG }, undefined, `http://127.0.0.1:${port}`)
  t.match(line, { client_ip: HONG_KONG, ip_source: 'x-forwarded-for', country: 'HK' }, 'the mapped peer matched the IPv4 trusted range')
  const direct = await ask(gw, {}, undefined, `http://127.0.0.1:${port}`)
  t.match(direct, { client_ip: '127.0.0.1', ip_source: 'socket' }, 'the peer itself is logged as IPv4')
  const v6 = await ask(gw, { 'x-forwarded-for': HONG_KONG }, undefined, `http://[::1]:${port}`)
  t.match(v6, { client_ip: '::1', ip_source: 'socket' }, '::1 is not in trusted_proxies here, so its header is ignored')
})
