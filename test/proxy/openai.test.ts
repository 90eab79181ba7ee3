// The official OpenAI SDK as the client, a fake OpenAI API as the upstream.
import { randomBytes } from 'node:crypto'
import t from 'tap'
import OpenAI, { toFile } from 'openai'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { baseConfig, startTestGateway } from '../support/gateway.js'
import { json, send } from '../support/http.js'

const MAINLAND_CHINA = '114.114.114.114'
const UNITED_KINGDOM = '81.2.69.142'
const API_KEY = 'sk-proj-test-credential-abcdefghijklmnop'

t.test('openai dialect', async (t) => {
  const upstream = await startFakeUpstream({ streamGateMs: 5000 })
  t.teardown(upstream.close)
  const gw = await startTestGateway(baseConfig(upstream.url))
  t.teardown(gw.close)
  const client = (ip: string): OpenAI => new OpenAI({
    apiKey: API_KEY,
    baseURL: `${gw.url}/openai/v1`,
    maxRetries: 0,
    defaultHeaders: { 'x-forwarded-for': ip },
  })

  t.test('a caller in mainland China asking for gpt-4o gets a 451 with code unsupported_country_region_territory', async (t) => {
    const before = upstream.calls.length
    const err = await client(MAINLAND_CHINA).chat.completions.create({
      model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }],
    }).then(() => null, (e: unknown) => e)
    t.ok(err instanceof OpenAI.APIError, 'the SDK raises its APIError')
    const apiErr = err as InstanceType<typeof OpenAI.APIError>
    t.equal(apiErr.status, 451)
    t.equal(apiErr.code, 'unsupported_country_region_territory')
    t.equal(apiErr.type, 'permission_error')
    t.equal(upstream.calls.length, before, 'the upstream counted no call')
  })

  t.test('the exact OpenAI error body', async (t) => {
    const res = await send(`${gw.url}/openai/v1/chat/completions`, {
      ...json({ model: 'gpt-4o', messages: [] }),
      headers: { 'content-type': 'application/json', 'x-forwarded-for': MAINLAND_CHINA },
    })
    t.equal(res.status, 451)
    const id = res.headers['x-geofence-decision-id']
    t.same(res.json(), {
      error: {
        message: `Model "gpt-4o" is not available from CN: blocked by rule "openai-frontier" (country CN is in the deny list of rule openai-frontier). Decision id ${String(id)}.`,
        type: 'permission_error',
        param: null,
        code: 'unsupported_country_region_territory',
      },
    })
  })

  t.test('a caller in the UK gets the completion', async (t) => {
    const res = await client(UNITED_KINGDOM).chat.completions.create({
      model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }],
    })
    t.equal(res.choices[0]?.message.content, 'Hello from the fake upstream')
    t.match(gw.decisions().at(-1), { action: 'allow', rule: 'openai-frontier', country: 'GB', upstream: 'openai', model: 'gpt-4o' })
  })

  t.test('a streamed completion arrives chunk by chunk, before the upstream finishes', async (t) => {
    const stream = await client(UNITED_KINGDOM).chat.completions.create({
      model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], stream: true,
    })
    let text = ''
    let chunks = 0
    let lastSentWhenFirstArrived: number | null | undefined
    for await (const chunk of stream) {
      if (chunks++ === 0) {
        lastSentWhenFirstArrived = upstream.lastEventSentAt()
        upstream.releaseStream()
      }
      text += chunk.choices[0]?.delta.content ?? ''
    }
    t.equal(lastSentWhenFirstArrived, null, 'the first chunk arrived while the upstream held the rest')
    t.equal(chunks, 7, 'every chunk, none coalesced away')
    t.equal(text, 'Hello from the fake upstream')
  })

  t.test('embeddings, completions and responses are model endpoints too', async (t) => {
    for (const path of ['/v1/embeddings', '/v1/completions', '/v1/responses']) {
      const res = await send(`${gw.url}/openai${path}`, {
        body: JSON.stringify({ model: 'gpt-4.1', input: 'x' }),
        headers: { 'content-type': 'application/json', 'x-forwarded-for': MAINLAND_CHINA },
      })
      t.equal(res.status, 451, `${path} is blocked for CN`)
    }
  })
})

t.test('multipart endpoints: the model is the form\'s one "model" field', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(baseConfig(upstream.url, { rules: `    - name: audio
      upstreams: [openai]
      models: ["whisper-*", "gpt-4o-transcribe"]
      deny: [group:restricted]
      action: block` }).replace('body_limit: 1mb', 'body_limit: 8mb'))
  t.teardown(gw.close)
  const client = (ip: string): OpenAI => new OpenAI({ apiKey: API_KEY, baseURL: `${gw.url}/openai/v1`, maxRetries: 0, defaultHeaders: { 'x-forwarded-for': ip } })
  const audio = Buffer.from('RIFF....WAVEfmt fake audio bytes')

  const res = await client(UNITED_KINGDOM).audio.transcriptions.create({ file: await toFile(audio, 'a.wav'), model: 'whisper-1' })
  t.equal(res.text, 'hello from the fake upstream')
  const call = upstream.calls.at(-1)
  t.equal(call?.url, '/v1/audio/transcriptions')
  t.ok(call?.body.includes(audio), 'the file goes through unchanged')
  t.match(gw.decisions().at(-1), { action: 'allow', model: 'whisper-1', rule: 'audio' })

  // Past 1 MiB the form is read and re-encoded in a worker thread: the same checks, the same bytes.
  const large = randomBytes(3 * 1024 * 1024)
  const big = await client(UNITED_KINGDOM).audio.transcriptions.create({ file: await toFile(large, 'b.wav'), model: 'whisper-1' })
  t.equal(big.text, 'hello from the fake upstream')
  t.ok(upstream.calls.at(-1)?.body.includes(large), 'a 3 MiB file goes through unchanged')
  t.match(gw.decisions().at(-1), { action: 'allow', model: 'whisper-1' })

  const before = upstream.calls.length
  const err = await client(MAINLAND_CHINA).audio.transcriptions.create({ file: await toFile(audio, 'a.wav'), model: 'whisper-1' }).then(() => null, (e: unknown) => e)
  t.equal((err as { status?: number }).status, 451)
  t.equal(upstream.calls.length, before)

  const form = (parts: string[]): string => `${parts.map((p) => `--b\r\n${p}\r\n`).join('')}--b--\r\n`
  const field = (name: string, value: string): string => `content-disposition: form-data; name="${name}"\r\n\r\n${value}`
  for (const [body, type, message] of [
    [form([field('model', 'whisper-1'), field('model', 'gpt-4o-transcribe')]), 'multipart/form-data; boundary=b', /more than one "model" field/],
    [form([field('language', 'en')]), 'multipart/form-data; boundary=b', /no "model" field/],
    [form([`content-disposition: form-data; name="model"; filename="m.txt"\r\n\r\nwhisper-1`]), 'multipart/form-data; boundary=b', /must be a field, not a file/],
    ['{"model":"whisper-1"}', 'application/json', /takes multipart\/form-data/],
  ] as const) {
    const r = await send(`${gw.url}/openai/v1/audio/transcriptions`, { body, headers: { 'content-type': type, 'x-forwarded-for': UNITED_KINGDOM } })
    t.equal(r.status, 400, String(message))
    t.match(r.json().error.message, message)
  }
  t.equal(upstream.calls.length, before, 'nothing refused reached the upstream')
})
