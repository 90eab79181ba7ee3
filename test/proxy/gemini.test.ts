// The official Google Gen AI SDK as the client, a fake Gemini API as the upstream: the model
// is read from the path (/v1beta/models/{model}:{action}).
import t from 'tap'
import { ApiError, GoogleGenAI } from '@google/genai'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { startTestGateway, writeConfig } from '../support/gateway.js'
import { send } from '../support/http.js'

const HONG_KONG = '203.198.0.1'
const UNITED_STATES = '8.8.8.8'

t.test('gemini dialect', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const sovereign = await startFakeUpstream()
  t.teardown(sovereign.close)
  const gw = await startTestGateway(`
server: { host: 127.0.0.1, port: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams:
  gemini: { url: "${upstream.url}", dialect: gemini, strip_client_credentials: true, headers: { x-goog-api-key: held-gemini-key } }
  sovereign-gemini: { url: "${sovereign.url}", dialect: gemini }
policy:
  default: block
  rules:
    - { name: pro-routed, upstreams: [gemini], models: ["gemini-2.5-pro"], deny: [CN], action: { route: { upstream: sovereign-gemini, model: gemma-3-27b } } }
    - { name: gemini-frontier, upstreams: [gemini], models: ["gemini-*"], deny: [HK, CN], action: block }
    - { name: sovereign, upstreams: [sovereign-gemini], deny: [], action: block }
`)
  t.teardown(gw.close)
  const ai = (ip: string): GoogleGenAI => new GoogleGenAI({ apiKey: 'client-key-never-forwarded', httpOptions: { baseUrl: `${gw.url}/gemini`, headers: { 'x-forwarded-for': ip } } })

  t.test('an allowed call returns what the upstream sent; the provider sees only the held key', async (t) => {
    const res = await ai(UNITED_STATES).models.generateContent({ model: 'gemini-2.5-flash', contents: 'hi' })
    t.equal(res.text, 'Hello from the fake upstream')
    const call = upstream.calls.at(-1)
    t.equal(call?.url, '/v1beta/models/gemini-2.5-flash:generateContent')
    t.equal(call?.headers['x-goog-api-key'], 'held-gemini-key')
    t.match(gw.decisions().at(-1), { action: 'allow', model: 'gemini-2.5-flash', rule: 'gemini-frontier', country: 'US' })
  })

  t.test('a stream (alt=sse) arrives chunk by chunk', async (t) => {
    let text = ''
    for await (const chunk of await ai(UNITED_STATES).models.generateContentStream({ model: 'gemini-2.5-flash', contents: 'hi' })) text += chunk.text ?? ''
    t.equal(text, 'Hello from the fake upstream')
    t.match(upstream.calls.at(-1)?.url, /^\/v1beta\/models\/gemini-2\.5-flash:streamGenerateContent\?alt=sse/)
  })

  t.test('a blocked call is the SDK\'s ApiError with status 451 and the message', async (t) => {
    const before = upstream.calls.length
    const err = await ai(HONG_KONG).models.generateContent({ model: 'gemini-2.5-flash', contents: 'hi' }).then(() => null, (e: unknown) => e)
    t.ok(err instanceof ApiError)
    t.equal((err as ApiError).status, 451)
    t.match((err as ApiError).message, /Model \\?"gemini-2\.5-flash\\?" is not available from HK: blocked by rule \\?"gemini-frontier\\?"/)
    t.equal(upstream.calls.length, before)
    const raw = await send(`${gw.url}/gemini/v1beta/models/gemini-2.5-flash:generateContent?key=k`, { body: '{}', headers: { 'content-type': 'application/json', 'x-forwarded-for': HONG_KONG } })
    t.same(raw.json(), { error: { code: 451, message: raw.json().error.message, status: 'FAILED_PRECONDITION' } })
  })

  t.test('a route rewrites the model in the path', async (t) => {
    const res = await ai('114.114.114.114').models.generateContent({ model: 'gemini-2.5-pro', contents: 'hi' })
    t.equal(res.modelVersion, 'gemma-3-27b')
    t.equal(sovereign.calls.at(-1)?.url, '/v1beta/models/gemma-3-27b:generateContent')
    t.match(gw.decisions().at(-1), { action: 'route', model: 'gemini-2.5-pro', routed_model: 'gemma-3-27b' })
  })

  t.test('?key= and ?access_token= are not sent on when the gateway holds the key; other parameters are kept', async (t) => {
    await send(`${gw.url}/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=client-key`, { body: '{"contents":[]}', headers: { 'content-type': 'application/json', 'x-forwarded-for': UNITED_STATES } })
    t.equal(upstream.calls.at(-1)?.url, '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse')
    // Google APIs take an OAuth (or Live ephemeral) token as ?access_token=: a credential too.
    await send(`${gw.url}/gemini/v1beta/models/gemini-2.5-flash:generateContent?access_token=ya29.client-token&alt=json`, { body: '{"contents":[]}', headers: { 'content-type': 'application/json', 'x-forwarded-for': UNITED_STATES } })
    t.equal(upstream.calls.at(-1)?.url, '/v1beta/models/gemini-2.5-flash:generateContent?alt=json')
  })

  t.test('cachedContents names the model in the body, as models/ID', async (t) => {
    const res = await send(`${gw.url}/gemini/v1beta/cachedContents`, { body: '{"model":"models/gemini-2.5-flash","contents":[]}', headers: { 'content-type': 'application/json', 'x-forwarded-for': HONG_KONG } })
    t.equal(res.status, 451)
    t.match(gw.decisions().at(-1), { rule: 'gemini-frontier', model: 'models/gemini-2.5-flash' })
  })

  t.test('batchEmbedContents: each item may name the model again, if it agrees with the path', async (t) => {
    const path = `${gw.url}/gemini/v1beta/models/gemini-embedding-001:batchEmbedContents`
    const agreeing = await send(path, { body: '{"requests":[{"model":"models/gemini-embedding-001","content":{}}]}', headers: { 'content-type': 'application/json', 'x-forwarded-for': UNITED_STATES } })
    t.equal(agreeing.status, 200)
    const other = await send(path, { body: '{"requests":[{"model":"models/gemini-2.5-pro","content":{}}]}', headers: { 'content-type': 'application/json', 'x-forwarded-for': UNITED_STATES } })
    t.equal(other.status, 400)
    t.equal(other.json().error.message, 'the path names model "gemini-embedding-001" and the body\'s "requests[0].model" names "models/gemini-2.5-pro"; a request names one model')
  })

  t.test('listing models names none: policy.default', async (t) => {
    const res = await send(`${gw.url}/gemini/v1beta/models`, { headers: { 'x-forwarded-for': UNITED_STATES } })
    t.equal(res.status, 451)
    t.match(gw.decisions().at(-1), { rule: null, model: null })
  })
})

t.test('explain reads a Gemini model as serve does (models/ID is matched as ID)', async (t) => {
  const { spawnSync } = await import('node:child_process')
  const file = writeConfig(`
upstreams: { gemini: { url: "http://127.0.0.1:1", dialect: gemini } }
policy: { rules: [ { name: gemini-frontier, models: ["gemini-*"], deny: [HK], action: block } ] }
`)
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'explain', '--config', file, '--ip', HONG_KONG, '--model', 'models/gemini-2.5-pro', '--json'], { encoding: 'utf8' })
  t.match(JSON.parse(r.stdout), { action: 'block', rule: 'gemini-frontier', model: 'models/gemini-2.5-pro' })
})
