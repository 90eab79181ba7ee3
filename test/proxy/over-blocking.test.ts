// Over-blocking is an outage: legitimate requests the official SDKs send must pass where the
// policy allows them, and be decided (never refused as unreadable) where the gateway cannot
// see the model: a fine-tuned model, a Responses call on a stored prompt, a Realtime
// transcription session, a form that leaves its model to the provider's default.
import { once } from 'node:events'
import type { IncomingMessage } from 'node:http'
import t from 'tap'
import OpenAI, { toFile } from 'openai'
import WebSocket from 'ws'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { baseConfig, startTestGateway } from '../support/gateway.js'
import { send } from '../support/http.js'

const MAINLAND_CHINA = '114.114.114.114'
const UNITED_KINGDOM = '81.2.69.142'
const FINE_TUNED = 'ft:gpt-4o-mini-2024-07-18:my-org::abc123'

t.test('legitimate OpenAI SDK calls', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(baseConfig(upstream.url))
  t.teardown(gw.close)
  const allowing = await startTestGateway(baseConfig(upstream.url).replace('unknown_location: block', 'unknown_location: block\n  unknown_model: allow'))
  t.teardown(allowing.close)
  const client = (ip: string, base = gw.url): OpenAI => new OpenAI({ apiKey: 'sk-test', baseURL: `${base}/openai/v1`, maxRetries: 0, defaultHeaders: { 'x-forwarded-for': ip } })

  t.test('a fine-tuned model is matched as its base model', async (t) => {
    const res = await client(UNITED_KINGDOM).chat.completions.create({ model: FINE_TUNED, messages: [{ role: 'user', content: 'hi' }] })
    t.equal(res.choices[0]?.message.content, 'Hello from the fake upstream')
    t.equal(JSON.parse(upstream.calls.at(-1)?.body.toString() ?? '{}').model, FINE_TUNED, 'forwarded as written')
    t.match(gw.decisions().at(-1), { action: 'allow', rule: 'openai-frontier', model: FINE_TUNED, canonical_model: 'gpt-4o-mini-2024-07-18' })
    const before = upstream.calls.length
    const err = await client(MAINLAND_CHINA).chat.completions.create({ model: FINE_TUNED, messages: [] }).then(() => null, (e: unknown) => e)
    t.equal((err as { status?: number }).status, 451, 'and the base model\'s rule refuses it where it refuses the base')
    t.equal(upstream.calls.length, before)
    t.match(gw.decisions().at(-1), { action: 'block', rule: 'openai-frontier', reason: /country CN is in the deny list/ })
  })

  t.test('responses.create on a stored prompt, without a model: policy.unknown_model, not a 400', async (t) => {
    const call = async (c: OpenAI): Promise<unknown> => c.responses.create({ prompt: { id: 'pmpt_abc123', version: '2' }, input: 'hi' })
    const before = upstream.calls.length
    const err = await call(client(UNITED_KINGDOM)).then(() => null, (e: unknown) => e)
    t.equal((err as { status?: number }).status, 451)
    t.equal(upstream.calls.length, before, 'never reaches the upstream')
    t.match(gw.decisions().at(-1), { action: 'block', rule: null, model: null, reason: 'the model cannot be seen (a Responses call without "model" uses its stored prompt\'s model, which the gateway does not see): policy.unknown_model is block' })

    await call(client(UNITED_KINGDOM, allowing.url))
    t.equal(upstream.calls.at(-1)?.url, '/v1/responses', 'forwarded where policy.unknown_model allows')
    t.same(JSON.parse(upstream.calls.at(-1)?.body.toString() ?? '{}'), { prompt: { id: 'pmpt_abc123', version: '2' }, input: 'hi' })
    t.match(allowing.decisions().at(-1), { action: 'allow', reason: /policy\.unknown_model is allow/ })

    // A model beside the prompt is decided as usual; no model and no prompt is still a 400.
    await client(UNITED_KINGDOM).responses.create({ model: 'gpt-5', prompt: { id: 'pmpt_abc123' }, input: 'hi' })
    t.match(gw.decisions().at(-1), { action: 'allow', rule: 'openai-frontier', model: 'gpt-5' })
    const res = await send(`${gw.url}/openai/v1/responses`, { body: '{"input":"hi"}', headers: { 'content-type': 'application/json', 'x-forwarded-for': UNITED_KINGDOM } })
    t.equal(res.status, 400)
    t.match(gw.decisions().at(-1), { status: 400, reason: 'the request body has no "model"' })
  })

  t.test('a Realtime transcription session (?intent=transcription): policy.unknown_model with a reason', async (t) => {
    // The openai SDK's OpenAIRealtimeWS opens ?model= or ?call_id= only; a transcription session
    // is opened as OpenAI documents it, wss://.../v1/realtime?intent=transcription (`ws` here).
    const connect = (base: string): WebSocket => new WebSocket(`${base.replace('http', 'ws')}/openai/v1/realtime?intent=transcription`, { headers: { 'x-forwarded-for': UNITED_KINGDOM, authorization: 'Bearer sk-test' } })
    const refused = connect(gw.url)
    const [, res] = await once(refused, 'unexpected-response') as [unknown, IncomingMessage]
    res.resume()
    refused.on('error', () => {})
    refused.terminate()
    t.equal(res.statusCode, 451)
    t.match(gw.decisions().at(-1), { action: 'block', rule: null, reason: /a Realtime transcription session \(\?intent=transcription\) names its model in a message after the connection opens, which the gateway does not read\): policy\.unknown_model is block/ })

    const ws = connect(allowing.url)
    const [first] = await once(ws, 'message') as [Buffer]
    t.match(JSON.parse(first.toString()), { type: 'session.created' })
    t.equal(upstream.calls.at(-1)?.url, '/v1/realtime?intent=transcription')
    ws.close()
  })
})

t.test('forms without "model": the documented default is decided; another server\'s default is policy.unknown_model', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(baseConfig(upstream.url, {
    rules: `    - { name: images, upstreams: [openai], models: ["gpt-image-*", "dall-e-*"], deny: [group:restricted], action: block }
    - { name: video, upstreams: [openai], models: ["sora-*"], deny: [group:restricted], action: block }`,
  }).replace('upstreams:\n', `upstreams:\n  local: { url: "${upstream.url}", dialect: openai-compatible }\n`))
  t.teardown(gw.close)
  const client = (ip: string, mount = 'openai'): OpenAI => new OpenAI({ apiKey: 'sk-test', baseURL: `${gw.url}/${mount}/v1`, maxRetries: 0, defaultHeaders: { 'x-forwarded-for': ip } })
  const png = async (): Promise<Awaited<ReturnType<typeof toFile>>> => toFile(Buffer.from('\x89PNG\r\n\x1a\nfake'), 'a.png', { type: 'image/png' })
  const formHasModel = (): boolean => /name="model"/.test(upstream.calls.at(-1)?.body.toString('latin1') ?? '')

  // images.edit: OpenAI documents gpt-image-1.5 as the default; createVariation: dall-e-2 only; videos: sora-2.
  const cases: Array<{ name: string, call: (c: OpenAI) => Promise<unknown>, model: string, rule: string, path: string }> = [
    { name: 'images.edit', call: async (c) => c.images.edit({ image: await png(), prompt: 'a hat' }), model: 'gpt-image-1.5', rule: 'images', path: '/v1/images/edits' },
    { name: 'images.createVariation', call: async (c) => c.images.createVariation({ image: await png() }), model: 'dall-e-2', rule: 'images', path: '/v1/images/variations' },
    { name: 'videos.create', call: async (c) => c.videos.create({ prompt: 'a boat' }), model: 'sora-2', rule: 'video', path: '/v1/videos' },
  ]
  for (const c of cases) {
    await c.call(client(UNITED_KINGDOM))
    t.equal(upstream.calls.at(-1)?.url, c.path, `${c.name}: forwarded`)
    t.notOk(formHasModel(), `${c.name}: the form goes on as sent, without a model field`)
    t.match(gw.decisions().at(-1), { action: 'allow', rule: c.rule, model: c.model, canonical_model: c.model }, `${c.name}: decided as ${c.model}`)
    const before = upstream.calls.length
    const err = await c.call(client(MAINLAND_CHINA)).then(() => null, (e: unknown) => e)
    t.equal((err as { status?: number }).status, 451, `${c.name}: refused where ${c.model} is`)
    t.equal(upstream.calls.length, before)
    t.match(gw.decisions().at(-1), { action: 'block', rule: c.rule, model: c.model, reason: /country CN is in the deny list/ })
  }

  // A form that names its model is decided by it, as before.
  await client(UNITED_KINGDOM).images.edit({ image: await png(), prompt: 'a hat', model: 'dall-e-2' })
  t.ok(formHasModel())
  t.match(gw.decisions().at(-1), { action: 'allow', model: 'dall-e-2' })

  // An OpenAI-compatible server picks its own default: that model cannot be seen.
  const before = upstream.calls.length
  const err = await client(UNITED_KINGDOM, 'local').images.edit({ image: await png(), prompt: 'a hat' }).then(() => null, (e: unknown) => e)
  t.equal((err as { status?: number }).status, 451)
  t.equal(upstream.calls.length, before)
  t.match(gw.decisions().at(-1), { action: 'block', rule: null, model: null, reason: /a form without "model" runs the server's default model, which the gateway does not see\): policy\.unknown_model is block/ })

  // Audio takes no default: a transcription without its model is still a 400 with a decision line.
  const form = '--b\r\ncontent-disposition: form-data; name="file"; filename="a.wav"\r\ncontent-type: audio/wav\r\n\r\nRIFF\r\n--b--\r\n'
  const res = await send(`${gw.url}/openai/v1/audio/transcriptions`, { body: form, headers: { 'content-type': 'multipart/form-data; boundary=b', 'x-forwarded-for': UNITED_KINGDOM } })
  t.equal(res.status, 400)
  t.match(gw.decisions().at(-1), { action: 'block', status: 400, reason: 'the multipart body has no "model" field' })
})
