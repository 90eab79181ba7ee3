// Who is calling, end to end: the application forwards the end user's identity token (here
// through the official SDKs' default headers), the gateway verifies it against a loopback
// identity provider's keys, and a rule judges both the network address and the identity's
// jurisdiction. The token never leaves the gateway and never reaches a log.
import t from 'tap'
import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { SignJWT } from 'jose'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { startTestGateway } from '../support/gateway.js'
import { send } from '../support/http.js'
import { issuerYaml, keyServer, signingKey } from '../support/key-server.js'

const HONG_KONG = '203.198.0.1'
const UNITED_STATES = '8.8.8.8'
const RUSSIA = '95.173.136.70'

t.test('identity and network jurisdiction, through the gateway', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const idp = await keyServer(t, [await signingKey('key-1')])
  const gw = await startTestGateway(`
server: { host: 127.0.0.1, port: 0, body_limit: 1mb }
client_ip: { trusted_proxies: [127.0.0.1/32, ::1/128] }
logging: { client_ip: hashed, client_ip_key: "a-test-key-for-hmac" }
identity:
  header: x-geofence-identity
  required: true
  issuers:
${issuerYaml(idp)}
upstreams:
  anthropic: { url: "${upstream.url}", dialect: anthropic }
  openai: { url: "${upstream.url}", dialect: openai }
policy:
  default: block
  unknown_location: block
  jurisdiction: [network, identity]
  rules:
    - name: claude-not-for-hk-staff
      upstreams: [anthropic]
      models: ["claude-*"]
      deny: [HK, CN, MO, RU]
      action: block
    - name: openai-by-address-only
      upstreams: [openai]
      models: ["gpt-*"]
      deny: [HK, CN, MO, RU]
      jurisdiction: [network]
      action: block
`)
  t.teardown(gw.close)
  const message = (ip: string, token: string | null): Promise<unknown> => new Anthropic({
    apiKey: 'sk-ant-never-logged',
    baseURL: `${gw.url}/anthropic`,
    maxRetries: 0,
    defaultHeaders: { 'x-forwarded-for': ip, ...(token === null ? {} : { 'x-geofence-identity': token }) },
  }).messages.create({ model: 'claude-sonnet-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }).then((r) => r, (e: unknown) => e)
  const statusOf = (r: unknown): number => (r instanceof Anthropic.APIError ? r.status ?? 0 : 200)

  t.test('a caller passes only if every judged location passes', async (t) => {
    const rows: Array<[string, string, string, number, RegExp | null]> = [
      ['HK staff on a US address', 'HK', UNITED_STATES, 451, /identity country HK is in the deny list of rule claude-not-for-hk-staff/],
      ['US staff travelling in Hong Kong', 'US', HONG_KONG, 451, /country HK is in the deny list/],
      ['US staff in the US', 'US', UNITED_STATES, 200, null],
      ['a site code the issuer maps (HKG-IFC is HK)', 'HKG-IFC', UNITED_STATES, 451, /identity country HK/],
    ]
    for (const [name, ctry, ip, status, reason] of rows) {
      const before = upstream.calls.length
      const r = await message(ip, await idp.token({ ctry, sub: 'employee-42', legal_entity: 'bank-hk', jti: 'tok-1' }))
      t.equal(statusOf(r), status, name)
      const line = gw.decisions().at(-1)
      t.match(line, { identity_result: 'ok', identity: { issuer: idp.issuer, subject: /^hmac:[0-9a-f]{32}$/, country: ctry === 'HKG-IFC' ? 'HK' : ctry, entity: 'bank-hk', source_claim: 'ctry', jti: 'tok-1' } }, `${name}: the decision line names the identity, its subject hashed`)
      if (reason !== null) {
        t.match(line, { action: 'block', reason }, `${name}: the reason says which location failed`)
        t.equal(upstream.calls.length, before, `${name}: nothing reached the upstream`)
      } else {
        t.equal(upstream.calls.at(-1)?.headers['x-geofence-identity'], undefined, `${name}: the identity token is not forwarded`)
      }
    }
  })

  t.test('a rule that judges only the network lets HK staff on a US address through', async (t) => {
    const openai = new OpenAI({ apiKey: 'sk-never-logged', baseURL: `${gw.url}/openai/v1`, maxRetries: 0, defaultHeaders: { 'x-forwarded-for': UNITED_STATES, 'x-geofence-identity': await idp.token({ ctry: 'HK' }) } })
    const done = await openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] })
    t.ok(done.id, 'allowed')
    t.match(gw.decisions().at(-1), { action: 'allow', rule: 'openai-by-address-only', identity: { country: 'HK' } })
    const fromRussia = new OpenAI({ apiKey: 'sk-never-logged', baseURL: `${gw.url}/openai/v1`, maxRetries: 0, defaultHeaders: { 'x-forwarded-for': RUSSIA, 'x-geofence-identity': await idp.token({ ctry: 'US' }) } })
    const err = await fromRussia.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }).then(() => null, (e: unknown) => e)
    t.equal((err as InstanceType<typeof OpenAI.APIError>).status, 451)
  })

  t.test('tokens that do not verify are refused with a 401 in the dialect\'s shape, each with its decision line', async (t) => {
    const other = await signingKey('key-1')
    const now = Math.floor(Date.now() / 1000)
    const rows: Array<[string, () => Promise<string | null>, number, string]> = [
      ['no token', async () => null, 401, 'missing'],
      ['alg none', async () => `${Buffer.from(JSON.stringify({ alg: 'none', kid: 'key-1' })).toString('base64url')}.${Buffer.from(JSON.stringify({ iss: idp.issuer, aud: 'llm-geofence', sub: 'x', ctry: 'US', exp: now + 600 })).toString('base64url')}.`, 401, 'disallowed_algorithm'],
      ['HS256 with the public key as the secret', async () => new SignJWT({ iss: idp.issuer, aud: 'llm-geofence', sub: 'x', ctry: 'US', exp: now + 600 }).setProtectedHeader({ alg: 'HS256', kid: 'key-1' }).sign(new TextEncoder().encode(JSON.stringify(idp.keys[0]?.publicJwk))), 401, 'disallowed_algorithm'],
      ['expired', async () => idp.token({ ctry: 'US', exp: now - 3600 }), 401, 'expired'],
      ['not yet valid beyond the skew', async () => idp.token({ ctry: 'US', nbf: now + 3600 }), 401, 'not_yet_valid'],
      ['wrong issuer', async () => idp.token({ ctry: 'US', iss: 'https://login.example/other' }), 401, 'wrong_issuer'],
      ['wrong audience', async () => idp.token({ ctry: 'US', aud: 'another-api' }), 401, 'wrong_audience'],
      ['signed by a key of the same kid the issuer never published', async () => idp.token({ ctry: 'US' }, other), 401, 'bad_signature'],
      ['malformed', async () => 'not-a-jwt', 401, 'malformed'],
      ['a country that is no code', async () => idp.token({ ctry: 'Atlantis' }), 401, 'unusable_claim'],
    ]
    for (const [name, make, status, result] of rows) {
      const before = upstream.calls.length
      const token = await make()
      const r = await message(UNITED_STATES, token)
      t.equal(statusOf(r), status, name)
      t.match((r as InstanceType<typeof Anthropic.APIError>).error, { type: 'error', error: { type: 'authentication_error' } }, `${name}: Anthropic's shape`)
      t.equal(upstream.calls.length, before, `${name}: nothing reached the upstream`)
      t.match(gw.decisions().at(-1), { action: 'block', status, identity_result: result }, `${name}: decision line`)
      if (token !== null) t.notOk(gw.rawLogs().includes(token), `${name}: the token is in no log line`)
    }
    const twice = await send(`${gw.url}/anthropic/v1/messages`, {
      body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 8, messages: [] }),
      headers: { 'content-type': 'application/json', 'x-forwarded-for': UNITED_STATES, 'x-geofence-identity': [await idp.token({ ctry: 'US' }), await idp.token({ ctry: 'US' })] },
    })
    t.equal(twice.status, 401, 'two identity headers')
    t.match(gw.decisions().at(-1), { identity_result: 'duplicate' })
  })

  t.test('readiness waits for the issuers\' keys; metrics count tokens and key fetches', async (t) => {
    t.equal((await send(`${gw.adminUrl}/readyz`)).status, 200)
    const metrics = (await send(`${gw.adminUrl}/metrics`)).body
    t.match(metrics, /geofence_identity_tokens_total\{result="ok",issuer="http:\/\/127\.0\.0\.1:\d+"\} [1-9]/)
    t.match(metrics, /geofence_identity_tokens_total\{result="expired",issuer="http:\/\/127\.0\.0\.1:\d+"\} 1/)
    t.match(metrics, /geofence_identity_key_fetches_total\{issuer="http:\/\/127\.0\.0\.1:\d+",trigger="initial",result="ok"\} 1/)
    t.match(metrics, /geofence_identity_keys_last_fetch_timestamp_seconds\{issuer="[^"]+"\} \d/)
    t.notMatch(gw.rawLogs(), /sk-ant-never-logged|sk-never-logged|employee-42/, 'no key and no subject in any log line')
  })
})
