// The egress proxy: every outbound connection (forwarded calls, streams, WebSocket tunnels,
// identity key fetches) goes through a real forward proxy (proxy-chain) with CONNECT when one
// is configured or set in the environment, except the hosts no_proxy names and upstreams with
// `proxy: none`; proxy credentials reach the proxy alone; a proxy that refuses or is down is a
// 502 in the dialect's shape that says so.
import { writeFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import WebSocket from 'ws'
import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { parseConfig } from '../../src/config/load.js'
import { ConfigError } from '../../src/errors.js'
import { proxyFor } from '../../src/proxy/egress.js'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { startForwardProxy } from '../support/forward-proxy.js'
import { startTestGateway, writeConfig } from '../support/gateway.js'
import { LOOPBACK_SAN, makeCa } from '../support/pki.js'
import { json, send } from '../support/http.js'
import { issuerYaml, keyServer, signingKey } from '../support/key-server.js'

const UNITED_STATES = '8.8.8.8'
const POLICY = `
client_ip: { trusted_proxies: [127.0.0.1/32] }
policy:
  default: block
  rules:
    - { name: everyone, deny: [], action: block }
`
const message = (model = 'claude-sonnet-4-5'): ReturnType<typeof json> => json({ model, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] })
const fromUs = { 'x-forwarded-for': UNITED_STATES }

/** A port nothing listens on. */
async function closedPort (): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

t.test('egress.proxy: calls, streams and WebSockets go through the proxy; no_proxy and proxy: none go direct', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const proxy = await startForwardProxy()
  t.teardown(proxy.close)
  const port = new URL(upstream.url).port
  const gw = await startTestGateway(`
server: { host: 127.0.0.1, port: 0 }
egress:
  proxy: "${proxy.url}"
  no_proxy: [localhost]
upstreams:
  anthropic: { url: "${upstream.url}", dialect: anthropic }
  openai: { url: "${upstream.url}", dialect: openai }
  nearby: { url: "http://localhost:${port}", dialect: anthropic }
  sovereign: { url: "${upstream.url}/sovereign", dialect: openai-compatible, proxy: none }
${POLICY}`)
  t.teardown(gw.close)

  t.test('an allowed call reaches the upstream through a CONNECT tunnel, and the proxy is no caller', async (t) => {
    const before = proxy.calls.length
    const res = await send(`${gw.url}/anthropic/v1/messages`, { ...message(), headers: { ...message().headers, ...fromUs, 'proxy-authorization': 'Basic Y2xpZW50OnNlY3JldA==' } })
    t.equal(res.status, 200)
    t.match(proxy.calls.slice(before), [{ hostname: '127.0.0.1', port: Number(port), isHttp: false, authorization: false }], 'one tunnel, without the client\'s proxy credentials')
    const call = upstream.calls.at(-1)
    t.equal(call?.headers['proxy-authorization'], undefined, 'no proxy credentials reach the upstream')
    t.equal(call?.headers['x-forwarded-for'], undefined)
    t.match(gw.decisions().at(-1), { action: 'allow', client_ip: UNITED_STATES, ip_source: 'x-forwarded-for', country: 'US', status: 200 })
  })

  t.test('SDK calls and their SSE streams go through the proxy, event by event', async (t) => {
    const anthropic = new Anthropic({ apiKey: 'sk-ant', baseURL: `${gw.url}/anthropic`, maxRetries: 0, defaultHeaders: fromUs })
    const stream = anthropic.messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] })
    t.equal(await stream.finalText(), 'Hello from the fake upstream')
    const openai = new OpenAI({ apiKey: 'sk-oa', baseURL: `${gw.url}/openai/v1`, maxRetries: 0, defaultHeaders: fromUs })
    let text = ''
    for await (const chunk of await openai.chat.completions.create({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'hi' }] })) text += chunk.choices[0]?.delta.content ?? ''
    t.equal(text, 'Hello from the fake upstream')
    t.match(upstream.calls.slice(-2), [{ url: '/v1/messages' }, { url: '/v1/chat/completions' }])
    t.ok(proxy.calls.length > 0 && proxy.calls.every((c) => !c.isHttp), 'on pooled connections, each a CONNECT tunnel')
  })

  t.test('a host no_proxy names, and an upstream with proxy: none, are reached directly', async (t) => {
    const before = proxy.calls.length
    const near = await send(`${gw.url}/nearby/v1/messages`, { ...message(), headers: { ...message().headers, ...fromUs } })
    t.equal(near.status, 200)
    t.equal(upstream.calls.at(-1)?.headers.host, `localhost:${port}`)
    const sovereign = await send(`${gw.url}/sovereign/v1/chat/completions`, { ...json({ model: 'local-small', messages: [] }), headers: { 'content-type': 'application/json', ...fromUs } })
    t.equal(sovereign.status, 200)
    t.equal(upstream.calls.at(-1)?.url, '/sovereign/v1/chat/completions')
    t.same(proxy.calls.slice(before), [], 'the proxy saw neither')
  })

  t.test('a Realtime WebSocket is tunnelled through the proxy too', async (t) => {
    const before = proxy.calls.length
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/openai/v1/realtime?model=gpt-realtime`, { headers: fromUs })
    const first = await new Promise<Record<string, any>>((resolve, reject) => {
      ws.once('message', (d) => { resolve(JSON.parse(d.toString()) as Record<string, any>) })
      ws.once('error', reject)
    })
    t.match(first, { type: 'session.created', session: { model: 'gpt-realtime' } })
    ws.close()
    t.match(proxy.calls.slice(before), [{ hostname: '127.0.0.1', port: Number(port), isHttp: false }])
    t.match(gw.decisions().at(-1), { status: 101, action: 'allow' })
  })

  t.test('the start-up line says where each upstream\'s connections go, without credentials', async (t) => {
    const listening = gw.logs().find((l) => l['msg'] === 'listening')
    t.same(listening?.['egress'], {
      anthropic: `via ${proxy.url} (egress.proxy)`,
      openai: `via ${proxy.url} (egress.proxy)`,
      nearby: 'direct',
      sovereign: 'direct',
    })
  })
})

t.test('a proxy that asks for credentials gets them from the URL or proxy_auth; without them, a 502 that says so', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const proxy = await startForwardProxy({ user: 'gateway', password: 'pr0xy:s3cret' })
  t.teardown(proxy.close)
  const authority = proxy.url.slice('http://'.length)
  const secret = join(writeConfig('').replace(/config\.yaml$/, ''), 'proxy-auth')
  writeFileSync(secret, 'gateway:pr0xy:s3cret\n')
  const gw = await startTestGateway(`
server: { host: 127.0.0.1, port: 0 }
egress: { proxy: "http://gateway:${encodeURIComponent('pr0xy:s3cret')}@${authority}" }
upstreams:
  anthropic: { url: "${upstream.url}", dialect: anthropic }
${POLICY}`)
  t.teardown(gw.close)
  const fromFile = await startTestGateway(`
server: { host: 127.0.0.1, port: 0 }
egress: { proxy: "${proxy.url}", proxy_auth: "file:${secret}" }
upstreams:
  anthropic: { url: "${upstream.url}", dialect: anthropic }
${POLICY}`)
  t.teardown(fromFile.close)
  const without = await startTestGateway(`
server: { host: 127.0.0.1, port: 0 }
egress: { proxy: "${proxy.url}" }
upstreams:
  anthropic: { url: "${upstream.url}", dialect: anthropic }
  openai: { url: "${upstream.url}", dialect: openai }
${POLICY}`)
  t.teardown(without.close)

  for (const [name, g] of [['userinfo in egress.proxy', gw], ['egress.proxy_auth: file:', fromFile]] as const) {
    const before = proxy.calls.length
    const res = await send(`${g.url}/anthropic/v1/messages`, { ...message(), headers: { ...message().headers, ...fromUs } })
    t.equal(res.status, 200, `${name}: allowed through`)
    t.match(proxy.calls.slice(before), [{ username: 'gateway', authorization: true }], `${name}: the proxy got the credentials`)
    t.equal(upstream.calls.at(-1)?.headers['proxy-authorization'], undefined, `${name}: the upstream did not`)
    t.notMatch(g.rawLogs(), /pr0xy|s3cret|Z2F0ZXdheTpwcjB4eTpzM2NyZXQ/, `${name}: the credentials are in no log line`)
  }

  const calls = upstream.calls.length
  const refused = await send(`${without.url}/anthropic/v1/messages`, { ...message(), headers: { ...message().headers, ...fromUs } })
  t.equal(refused.status, 502)
  t.same(refused.json(), { type: 'error', error: { type: 'api_error', message: 'the egress proxy refused the tunnel to the upstream (status 407: its credentials are missing or wrong)' }, request_id: refused.headers['x-geofence-decision-id'] })
  const oa = await send(`${without.url}/openai/v1/chat/completions`, { ...json({ model: 'gpt-4o', messages: [] }), headers: { 'content-type': 'application/json', ...fromUs } })
  t.equal(oa.status, 502)
  t.match(oa.json(), { error: { type: 'server_error', code: 'bad_gateway', message: /egress proxy refused the tunnel .*407/ } })
  t.equal(upstream.calls.length, calls, 'nothing reached the upstream')
  t.match(without.decisions().at(-1), { action: 'allow', status: 502 })
})

t.test('HTTPS_PROXY credentials are percent-decoded as curl decodes them; proxy_auth from ${ENV} is taken as written; neither reaches a log', async (t) => {
  const ca = makeCa('Bank Root CA')
  const cert = ca.issue('upstream', { subject: '/O=Bank/CN=llm-upstream', san: LOOPBACK_SAN })
  const upstream = await startFakeUpstream({ tls: { key: cert.key, cert: cert.cert } })
  t.teardown(upstream.close)
  // The password has an @ and a : (which a URL must percent-encode) and a non-ASCII letter.
  const password = 'p@ss:wörd'
  const proxy = await startForwardProxy({ user: 'gate way', password })
  t.teardown(proxy.close)
  const literal = await startForwardProxy({ user: 'gateway', password: 'p%40ss' })
  t.teardown(literal.close)
  const yaml = (egress = ''): string => `
server: { host: 127.0.0.1, port: 0 }
${egress}
upstreams:
  anthropic: { url: "${upstream.url}", dialect: anthropic, tls: { ca: "file:${ca.certFile}" } }
${POLICY}`
  const saved = { ...process.env }
  t.teardown(() => { process.env = saved })
  const authority = (url: string): string => url.slice('http://'.length)

  // What curl sends for this URL is checked in the unit rows below; here the proxy must accept it.
  process.env = { ...saved, HTTPS_PROXY: `http://gate%20way:p%40ss%3Aw%C3%B6rd@${authority(proxy.url)}` }
  const fromUrl = await startTestGateway(yaml(), { reload: false })
  t.teardown(fromUrl.close)
  process.env = { ...saved, HTTPS_PROXY: literal.url, PROXY_AUTH: 'gateway:p%40ss' }
  const fromEnv = await startTestGateway(yaml('egress: { proxy_auth: "${PROXY_AUTH}" }'), { reload: false })
  t.teardown(fromEnv.close)
  process.env = saved

  for (const [name, gw, p, user] of [['HTTPS_PROXY with percent-encoded userinfo', fromUrl, proxy, 'gate way'], ['proxy_auth: "${PROXY_AUTH}"', fromEnv, literal, 'gateway']] as const) {
    const before = p.calls.length
    const res = await send(`${gw.url}/anthropic/v1/messages`, { ...message('claude-sonnet-5-5'), headers: { ...message().headers, ...fromUs } })
    t.equal(res.status, 200, `${name}: the proxy accepted the credentials, and the call reached the HTTPS upstream`)
    t.match(p.calls.slice(before), [{ username: user, authorization: true, isHttp: false }], `${name}: one CONNECT, with the credentials`)
    t.equal(upstream.calls.at(-1)?.headers['proxy-authorization'], undefined, `${name}: the upstream did not get them`)
    const logs = gw.rawLogs()
    t.match(logs, /"egress":\{"anthropic":"via http:\/\/127\.0\.0\.1:\d+ \(HTTPS_PROXY\)"\}/, `${name}: the start-up line names the proxy`)
    for (const secret of ['p@ss', 'p%40ss', 'wörd', 'w%C3%B6rd', Buffer.from(`${user}:${password}`).toString('base64'), Buffer.from('gateway:p%40ss').toString('base64')]) {
      t.notOk(logs.includes(secret), `${name}: ${JSON.stringify(secret)} is in no log line`)
    }
  }

  // The Proxy-Authorization each URL gives, byte for byte what curl 7.88 sent for it to a listener.
  const sent = (url: string): string | null => {
    const c = parseConfig('egress.yaml', Buffer.from('upstreams: { a: { url: "https://x.example", dialect: anthropic } }\npolicy: { rules: [] }\n'), { HTTPS_PROXY: url })
    const value = c.egress.https?.authorization
    return value === null || value === undefined ? null : Buffer.from(value.replace(/^Basic /, ''), 'base64').toString('hex')
  }
  const hex = (s: string, encoding: BufferEncoding = 'latin1'): string => Buffer.from(s, encoding).toString('hex')
  const rows: Array<[string, string]> = [
    ['http://gateway:p%40ss@proxy:3128', hex('gateway:p@ss')],
    ['http://us%41er:p%3Ass@proxy:3128', hex('usAer:p:ss')],
    ['http://u:p%E9x@proxy:3128', hex('u:p\u00e9x')], // one byte 0xE9, not UTF-8: curl sends the byte
    ['http://u:%C3%A9@proxy:3128', hex('u:é', 'utf8')],
    ['http://u:p%zz%4@proxy:3128', hex('u:p%zz%4')], // a % that starts no escape is itself
    ['http://u:p+q@proxy:3128', hex('u:p+q')], // + is not a space in a URL's userinfo
    ['http://u@proxy:3128', hex('u:')], // a user alone is sent with an empty password
  ]
  for (const [url, expected] of rows) t.equal(sent(url), expected, url.replace(/@.*/, '@...'))
  t.throws(() => sent('http://u:a%00b@proxy:3128'), { message: /HTTPS_PROXY \(from the environment\): its credentials hold %00/ }, '%00 is refused, as curl refuses it')
})

t.test('a proxy that cannot be reached is a 502 in the dialect\'s shape; a slow one a 504; the upstream timeouts still hold', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const proxy = await startForwardProxy()
  t.teardown(proxy.close)
  // A proxy that accepts connections and never answers CONNECT.
  const silent = net.createServer(() => {}).listen(0, '127.0.0.1')
  await new Promise((resolve) => silent.once('listening', resolve))
  t.teardown(() => { silent.close() })
  const down = await startTestGateway(`
server: { host: 127.0.0.1, port: 0 }
egress: { proxy: "http://127.0.0.1:${await closedPort()}" }
upstreams:
  anthropic: { url: "${upstream.url}", dialect: anthropic }
  gemini: { url: "${upstream.url}", dialect: gemini }
${POLICY}`)
  t.teardown(down.close)
  const slow = await startTestGateway(`
server: { host: 127.0.0.1, port: 0 }
egress: { proxy: "http://127.0.0.1:${(silent.address() as net.AddressInfo).port}" }
upstreams:
  anthropic: { url: "${upstream.url}", dialect: anthropic, timeouts: { connect: 300ms } }
${POLICY}`)
  t.teardown(slow.close)
  const through = await startTestGateway(`
server: { host: 127.0.0.1, port: 0 }
egress: { proxy: "${proxy.url}" }
upstreams:
  anthropic: { url: "${upstream.url}", dialect: anthropic, timeouts: { first_byte: 300ms } }
${POLICY}`)
  t.teardown(through.close)

  const res = await send(`${down.url}/anthropic/v1/messages`, { ...message(), headers: { ...message().headers, ...fromUs } })
  t.equal(res.status, 502)
  t.same(res.json().error, { type: 'api_error', message: 'the egress proxy could not be reached' })
  const gemini = await send(`${down.url}/gemini/v1beta/models/gemini-2.5-flash:generateContent`, { ...json({ contents: [] }), headers: { 'content-type': 'application/json', ...fromUs } })
  t.equal(gemini.status, 502)
  t.same(gemini.json(), { error: { code: 502, message: 'the egress proxy could not be reached', status: 'UNAVAILABLE' } })
  t.match(down.decisions().at(-1), { status: 502 })

  const started = Date.now()
  const timedOut = await send(`${slow.url}/anthropic/v1/messages`, { ...message(), headers: { ...message().headers, ...fromUs } })
  t.equal(timedOut.status, 504)
  t.equal(timedOut.json().error.message, 'the egress proxy did not open a tunnel to the upstream in time')
  t.ok(Date.now() - started < 3000, 'within the upstream\'s connect timeout')
  t.match(slow.decisions().at(-1), { status: 504, upstream_error: 'the egress proxy did not open a tunnel to the upstream in time' }, 'the decision line says the gateway answered for the upstream')

  const hang = await send(`${through.url}/anthropic/v1/messages`, { ...message('fake-hang'), headers: { ...message().headers, ...fromUs } })
  t.equal(hang.status, 504, 'first_byte still applies through the tunnel')
  t.equal(hang.json().error.message, 'the upstream did not answer in time')
})

t.test('a reload keeps the warm tunnels when the way out is unchanged, and takes a new proxy at once', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const first = await startForwardProxy()
  t.teardown(first.close)
  const second = await startForwardProxy()
  t.teardown(second.close)
  const yaml = (proxy: string, rule: string): string => `
server: { host: 127.0.0.1, port: 0 }
egress: { proxy: "${proxy}" }
upstreams:
  anthropic: { url: "${upstream.url}", dialect: anthropic }
client_ip: { trusted_proxies: [127.0.0.1/32] }
policy:
  rules:
    - { name: ${rule}, deny: [], action: block }
`
  const file = writeConfig(yaml(first.url, 'before'))
  const gw = await startTestGateway('', { file, reload: false })
  t.teardown(gw.close)
  const call = async (): Promise<number> => (await send(`${gw.url}/anthropic/v1/messages`, { ...message(), headers: { ...message().headers, ...fromUs } })).status
  t.equal(await call(), 200)
  t.equal(first.calls.length, 1)
  writeFileSync(file, yaml(first.url, 'after'))
  t.match(await gw.reload(), { ok: true, changed: true })
  t.equal(await call(), 200)
  t.match(gw.decisions().at(-1), { rule: 'after' })
  t.equal(first.calls.length, 1, 'the policy changed, the way out did not: the tunnel was reused')
  writeFileSync(file, yaml(second.url, 'after'))
  t.match(await gw.reload(), { ok: true })
  t.equal(await call(), 200)
  t.equal(second.calls.length, 1, 'the new proxy carries the next call')
  t.equal(first.calls.length, 1)
})

t.test('identity keys are fetched through the egress proxy', async (t) => {
  const key = await signingKey('key-1')
  const idp = await keyServer(t, [key])
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const proxy = await startForwardProxy()
  t.teardown(proxy.close)
  const gw = await startTestGateway(`
server: { host: 127.0.0.1, port: 0 }
egress: { proxy: "${proxy.url}" }
identity:
  issuers:
${issuerYaml(idp)}
upstreams:
  anthropic: { url: "${upstream.url}", dialect: anthropic }
${POLICY}`)
  t.teardown(gw.close)
  const res = await send(`${gw.url}/anthropic/v1/messages`, { ...message(), headers: { ...message().headers, ...fromUs, 'x-geofence-identity': await idp.token({ ctry: 'US' }) } })
  t.equal(res.status, 200)
  const keyPort = Number(new URL(idp.issuer).port)
  t.ok(proxy.calls.filter((c) => c.port === keyPort).length >= 2, 'discovery and the key set came through tunnels')
  t.ok(idp.jwksFetches >= 1)
})

t.test('without egress.proxy, the environment as curl reads it', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const proxy = await startForwardProxy()
  t.teardown(proxy.close)
  const port = new URL(upstream.url).port
  const yaml = `
server: { host: 127.0.0.1, port: 0 }
upstreams:
  anthropic: { url: "${upstream.url}", dialect: anthropic }
  nearby: { url: "http://localhost:${port}", dialect: anthropic }
${POLICY}`
  const saved = { ...process.env }
  t.teardown(() => { process.env = saved })
  const call = async (url: string): Promise<number> => (await send(url, { ...message(), headers: { ...message().headers, ...fromUs } })).status

  process.env = { ...saved, http_proxy: proxy.url, NO_PROXY: 'localhost' }
  const gw = await startTestGateway(yaml)
  t.teardown(gw.close)
  let before = proxy.calls.length
  t.equal(await call(`${gw.url}/anthropic/v1/messages`), 200)
  t.match(proxy.calls.slice(before), [{ hostname: '127.0.0.1', isHttp: false }], 'http_proxy carries http:// upstreams')
  before = proxy.calls.length
  t.equal(await call(`${gw.url}/nearby/v1/messages`), 200)
  t.same(proxy.calls.slice(before), [], 'NO_PROXY=localhost goes direct')

  process.env = { ...saved, HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url }
  const upper = await startTestGateway(yaml)
  t.teardown(upper.close)
  before = proxy.calls.length
  t.equal(await call(`${upper.url}/anthropic/v1/messages`), 200)
  t.same(proxy.calls.slice(before), [], 'HTTP_PROXY in upper case is not read (as curl: a CGI request can set it); HTTPS_PROXY is for https://')
})

t.test('no_proxy: names and their subdomains, .suffixes, addresses and CIDRs, as curl matches them', async (t) => {
  const config = parseConfig('egress.yaml', Buffer.from(`
egress:
  proxy: http://proxy.bank.internal:3128
  no_proxy: [.bank.internal, llm.example.com, "10.0.0.0/8", "fd00::/8", "*.corp.example", "api.vendor.example:8443"]
upstreams: { a: { url: "https://x.example", dialect: anthropic } }
policy: { rules: [] }
`), {})
  const via = (url: string): string => {
    const u = new URL(url)
    return proxyFor(config.egress, { protocol: u.protocol, hostname: u.hostname, port: Number(u.port) || 443 })?.label ?? 'direct'
  }
  const rows: Array<[string, string]> = [
    ['https://llm.bank.internal', 'direct'],
    ['https://bank.internal', 'direct'],
    ['https://notbank.internal', 'http://proxy.bank.internal:3128'],
    ['https://llm.example.com', 'direct'],
    ['https://eu.llm.example.com', 'direct'],
    ['https://example.com', 'http://proxy.bank.internal:3128'],
    ['https://10.20.0.5', 'direct'],
    ['https://11.0.0.1', 'http://proxy.bank.internal:3128'],
    ['https://[fd00::5]', 'direct'],
    ['https://corp.example', 'direct'],
    ['https://api.vendor.example:8443', 'direct'],
    ['https://api.vendor.example', 'http://proxy.bank.internal:3128'],
    ['https://api.anthropic.com', 'http://proxy.bank.internal:3128'],
  ]
  for (const [url, expected] of rows) t.equal(via(url), expected, url)
})

t.test('the egress section is checked at load, each problem with its line and column', async (t) => {
  const problems = (yaml: string, env: NodeJS.ProcessEnv = {}): string[] => {
    try {
      parseConfig('egress.yaml', Buffer.from(yaml), env)
      return []
    } catch (err) {
      return (err as ConfigError).problems.map((p) => `${p.line ?? '-'}:${p.col ?? '-'} ${p.message}`)
    }
  }
  const base = 'upstreams: { a: { url: "https://x.example", dialect: anthropic } }\npolicy: { rules: [] }\n'
  t.same(problems(`egress:\n  proxy: socks5://proxy:1080\n${base}`), ['2:3 a socks5 proxy is not supported: the gateway tunnels through HTTP proxies with CONNECT (http:// or https://)'])
  t.same(problems(`egress:\n  proxy: http://u:p@proxy:3128\n  proxy_auth: "u:p"\n${base}`), ['3:3 the credentials are in egress.proxy already: give them once'])
  t.same(problems(`egress:\n  proxy: http://proxy:3128\n  no_proxy: [ok.example, "bad host!"]\n${base}`), ['3:26 "bad host!" is not a host name, a .domain suffix, an address or a CIDR (write e.g. .bank.internal, llm.bank.internal, 10.0.0.0/8)'])
  t.same(problems(`egress:\n  proxy: http://proxy:3128\n  proxy_auth: "no-colon"\n${base}`), ['3:3 must be user:password (written, "${ENV}" or "file:PATH"), on one line'])
  t.same(problems(`upstreams: { a: { url: "https://x.example", dialect: anthropic, proxy: direct } }\npolicy: { rules: [] }\n`), ['1:65 must be one of: none'])
  t.same(problems(base, { HTTPS_PROXY: 'socks5h://user:hunter2@proxy:1080' }), ['1:1 HTTPS_PROXY (from the environment): a socks5h proxy is not supported: the gateway tunnels through HTTP proxies with CONNECT (http:// or https://)'], 'an unusable proxy in the environment stops the start, and its password is not repeated')
  const fromEnv = parseConfig('egress.yaml', Buffer.from(base), { HTTPS_PROXY: 'proxy.bank:3128', no_proxy: 'llm.bank' }).egress
  t.match(fromEnv, { source: 'environment', https: { label: 'http://proxy.bank:3128', from: 'HTTPS_PROXY' }, http: null, noProxy: { names: [{ name: 'llm.bank' }] } })
  t.equal(parseConfig('egress.yaml', Buffer.from(base), { ALL_PROXY: 'http://proxy.bank' }).egress.http?.label, 'http://proxy.bank:1080', 'ALL_PROXY for both; curl\'s default port 1080')
  t.equal(parseConfig('egress.yaml', Buffer.from(`egress: { proxy: none }\n${base}`), { HTTPS_PROXY: 'http://proxy.bank:3128' }).egress.https, null, 'egress.proxy: none ignores the environment')
})
