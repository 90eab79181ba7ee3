// Held credentials: the gateway injects the provider key and strips whatever the client sent;
// optional client tokens identify applications (and can be used in rules).
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { fixtureDir } from '../support/fixtures.js'
import { startTestGateway } from '../support/gateway.js'
import { send } from '../support/http.js'

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex')
const PAYMENTS_TOKEN = 'gw-token-payments-7c1d0a'
const RESEARCH_TOKEN = 'gw-token-research-99ab21'
const HELD_ANTHROPIC = 'sk-ant-held-by-gateway-3f2e'
const HELD_OPENAI = 'sk-proj-held-by-gateway-8d1c'

t.test('held credentials and client tokens', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const dir = fixtureDir()
  const keyFile = join(dir, 'openai-authorization')
  writeFileSync(keyFile, `Bearer ${HELD_OPENAI}\n`)
  process.env['TEST_HELD_ANTHROPIC_KEY'] = HELD_ANTHROPIC
  const gw = await startTestGateway(`
server: { host: 127.0.0.1, port: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32] }
clients:
  payments-app: { token_sha256: ${sha256(PAYMENTS_TOKEN)} }
  research-app: { token_sha256: ${sha256(RESEARCH_TOKEN)} }
upstreams:
  anthropic:
    url: "${upstream.url}"
    dialect: anthropic
    strip_client_credentials: true
    headers: { x-api-key: "\${TEST_HELD_ANTHROPIC_KEY}" }
  openai:
    url: "${upstream.url}"
    dialect: openai
    strip_client_credentials: true
    headers: { authorization: "file:${keyFile}" }
policy:
  default: block
  rules:
    - { name: opus-for-research-only, models: ["claude-opus-*"], clients: [research-app], deny: [], action: block }
    - { name: no-opus, models: ["claude-opus-*"], allow: [], action: block }
    - { name: everything-else, deny: [CN, HK], action: block }
`)
  t.teardown(gw.close)

  t.test('the SDKs use the gateway token; the provider sees only the held key', async (t) => {
    const anthropic = new Anthropic({ apiKey: PAYMENTS_TOKEN, baseURL: `${gw.url}/anthropic`, maxRetries: 0, defaultHeaders: { 'x-forwarded-for': '8.8.8.8', cookie: 'session=abc' } })
    await anthropic.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] })
    const a = upstream.calls.at(-1)
    t.equal(a?.headers['x-api-key'], HELD_ANTHROPIC, 'injected from ${ENV}')
    t.equal(a?.headers.authorization, undefined, 'the client token is not sent on')
    t.equal(a?.headers.cookie, undefined, 'client cookies are stripped')
    t.ok(a?.headers['anthropic-version'], 'non-credential headers pass')
    const openai = new OpenAI({ apiKey: PAYMENTS_TOKEN, baseURL: `${gw.url}/openai/v1`, maxRetries: 0, defaultHeaders: { 'x-forwarded-for': '8.8.8.8' } })
    await openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] })
    t.equal(upstream.calls.at(-1)?.headers.authorization, `Bearer ${HELD_OPENAI}`, 'injected from a file: path')
    t.match(gw.decisions().at(-1), { client: 'payments-app', action: 'allow' })
  })

  t.test('an unknown or missing token is a 401 in the dialect shape, before anything else', async (t) => {
    const before = upstream.calls.length
    const anthropic = new Anthropic({ apiKey: 'sk-ant-some-real-provider-key', baseURL: `${gw.url}/anthropic`, maxRetries: 0 })
    const err = await anthropic.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 5, messages: [] }).then(() => null, (e: unknown) => e)
    t.ok(err instanceof Anthropic.AuthenticationError, 'the SDK raises AuthenticationError')
    const res = await send(`${gw.url}/openai/v1/chat/completions`, { body: '{"model":"gpt-4o"}', headers: { 'content-type': 'application/json' } })
    t.equal(res.status, 401)
    t.same(res.json(), { error: { message: 'a client token the gateway knows is required (Authorization: Bearer, x-api-key or api-key)', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } })
    t.equal(upstream.calls.length, before)
    t.match(gw.decisions().at(-1), { action: 'block', status: 401, reason: /client token/ })
    t.notOk(gw.rawLogs().includes('sk-ant-some-real-provider-key'), 'the rejected key is not logged')
  })

  t.test('rules can name clients', async (t) => {
    const ask = async (token: string): Promise<number> => (await send(`${gw.url}/anthropic/v1/messages`, { body: '{"model":"claude-opus-4-1"}', headers: { 'content-type': 'application/json', 'x-api-key': token, 'x-forwarded-for': '8.8.8.8' } })).status
    t.equal(await ask(RESEARCH_TOKEN), 200)
    t.match(gw.decisions().at(-1), { client: 'research-app', rule: 'opus-for-research-only' })
    t.equal(await ask(PAYMENTS_TOKEN), 451)
    t.match(gw.decisions().at(-1), { client: 'payments-app', rule: 'no-opus' })
  })

  t.test('no held key or client token appears in any log line', async (t) => {
    const logs = gw.rawLogs()
    for (const secret of [HELD_ANTHROPIC, HELD_OPENAI, PAYMENTS_TOKEN, RESEARCH_TOKEN]) t.notOk(logs.includes(secret), secret.slice(0, 10))
  })
})

t.test('config errors for credentials name the key, never the value', async (t) => {
  const err = await startTestGateway(`
upstreams:
  a: { url: "http://127.0.0.1:1", dialect: openai, headers: { authorization: "file:/nonexistent/key", host: evil } }
clients:
  x: { token_sha256: not-a-hash }
policy: { rules: [ { name: r, clients: [nobody], deny: [], action: block } ] }
`).then(() => null, (e: unknown) => e as Error)
  t.match(err?.message, /upstreams\.a\.headers\.authorization: cannot read \/nonexistent\/key: ENOENT/)
  t.match(err?.message, /upstreams\.a\.headers\.host: "host" cannot be injected/)
  t.match(err?.message, /clients\.x\.token_sha256: must be the sha256 of the token/)
  t.match(err?.message, /policy\.rules\[0\]\.clients\[0\]: unknown client "nobody"/)
})

t.test('logging.client_ip: truncated and hashed', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const config = (logging: string): string => `
server: { host: 127.0.0.1, port: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams: { anthropic: { url: "${upstream.url}", dialect: anthropic } }
policy: { rules: [ { name: r, deny: [CN], action: block } ] }
logging: ${logging}
`
  const truncated = await startTestGateway(config('{ client_ip: truncated }'))
  t.teardown(truncated.close)
  const hashed = await startTestGateway(config('{ client_ip: hashed, client_ip_key: "a-secret-key-of-32-characters!!" }'))
  t.teardown(hashed.close)
  const go = async (url: string, ip: string): Promise<void> => { await send(`${url}/anthropic/v1/messages`, { body: '{"model":"m"}', headers: { 'x-forwarded-for': ip } }) }
  await go(truncated.url, '203.198.0.77')
  await go(truncated.url, '2a02:6b8:abcd:1234::1')
  t.match(truncated.decisions().map((d) => d['client_ip']), ['203.198.0.0/24', '2a02:6b8:abcd::/48'])
  t.notOk(truncated.rawLogs().includes('203.198.0.77'))
  await go(hashed.url, '203.198.0.77')
  await go(hashed.url, '203.198.0.77')
  await go(hashed.url, '8.8.8.8')
  const ips = hashed.decisions().map((d) => d['client_ip'])
  t.match(ips[0], /^hmac:[0-9a-f]{32}$/)
  t.equal(ips[0], ips[1], 'stable: one caller\'s lines can be joined')
  t.not(ips[0], ips[2])
  t.notOk(hashed.rawLogs().includes('203.198.0.77'))
  t.match(hashed.decisions()[0], { country: 'HK' }, 'the location is still logged')
  const missingKey = await startTestGateway(config('{ client_ip: hashed }')).then(() => null, (e: unknown) => e as Error)
  t.match(missingKey?.message, /logging\.client_ip_key: client_ip: hashed needs a secret key/)
})
