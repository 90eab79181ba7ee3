// Parser differentials: the same bytes read by the gateway and by the parsers upstreams are
// built on. For every trick, through a real gateway in front of a fake upstream, either
//   - the upstream received a body that every other parser reads alike, and the models they
//     read in it are exactly the models the gateway decided (its decision line lists them); or
//   - nothing reached the upstream, and the decision line says why.
// And from Hong Kong, where the `denied-*` models are blocked, no body in which any parser
// reads a denied model ever reaches the upstream.
import { brotliCompressSync, deflateRawSync, deflateSync, gunzipSync, gzipSync, inflateRawSync, inflateSync } from 'node:zlib'
import OpenAI, { toFile } from 'openai'
import t, { type Test } from 'tap'
import { MODEL_FIELDS } from '../../src/proxy/model-fields.js'
import type { RouteFamily } from '../../src/dialects/types.js'
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js'
import { readAll, sorted } from '../support/form-parsers.js'
import { startTestGateway, type TestGateway } from '../support/gateway.js'
import { send, type Response } from '../support/http.js'
import { JSON_READERS, readModels, type ReadModels } from '../support/json-readers.js'

const HONG_KONG = '203.198.0.1'
const UNITED_STATES = '8.8.8.8'
const DENIED = /denied-/

async function start (t: Test): Promise<{ gw: TestGateway, upstream: FakeUpstream }> {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(`
server: { host: 127.0.0.1, port: 0, body_limit: 1mb }
client_ip: { trusted_proxies: [127.0.0.1/32, "::1/128"] }
upstreams:
  anthropic: { url: "${upstream.url}", dialect: anthropic }
  openai: { url: "${upstream.url}", dialect: openai }
  gemini: { url: "${upstream.url}", dialect: gemini }
  # Every Bedrock id is vendor.model: the rows' plain names are mapped to themselves.
  bedrock: { url: "${upstream.url}", dialect: bedrock, model_aliases: { ok-model: ok-model, denied-model: denied-model } }
policy:
  default: block
  unknown_location: block
  rules:
    - { name: denied-in-hk, models: ["denied-*"], deny: [HK], action: block }
    - { name: everything-else, deny: [], action: block }
`)
  t.teardown(gw.close)
  return { gw, upstream }
}

/** The decision line of a response, once written. */
async function lineOf (gw: TestGateway, res: Response): Promise<Record<string, unknown> | undefined> {
  const id = res.headers['x-geofence-decision-id']
  for (let i = 0; i < 50; i++) {
    const line = gw.decisions().find((d) => d['decision_id'] === id)
    if (line !== undefined) return line
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return undefined
}

/** The models a decision line says were decided. */
function decided (line: Record<string, unknown> | undefined): string[] {
  const batch = line?.['batch_models'] as string[] | undefined
  return [...new Set(batch ?? (typeof line?.['model'] === 'string' ? [line['model']] : []))].sort()
}

const distinctSorted = (xs: readonly string[]): string[] => [...new Set(xs)].sort()

// ---------------------------------------------------------------------------------------------
// JSON: JSON.parse, a first-key-wins reader and Go's encoding/json on the same bytes.

interface JsonRow {
  name: string
  path: string
  body: string
  headers?: Record<string, string>
  /** The body's own model field; null where the path names the model (`pathModel`). */
  own: string | null
  pathModel?: string
  family: RouteFamily
  batch?: true
  /** What the gateway does for a caller in the US, where every model is allowed. */
  expect: 'forwarded' | 'refused'
}

const chat = (extra: string): string => `{"model":"ok-model","messages":[]${extra}}`
const CHAT = { path: '/openai/v1/chat/completions', own: 'model', family: 'openai' } as const
const RESPONSES = { path: '/openai/v1/responses', own: 'model', family: 'openai' } as const
const MESSAGES = { path: '/anthropic/v1/messages', own: 'model', family: 'anthropic' } as const
const BATCH = { path: '/anthropic/v1/messages/batches', own: 'model', family: 'anthropic', batch: true } as const
const GEMINI = (action: string): Pick<JsonRow, 'path' | 'own' | 'pathModel' | 'family'> => ({ path: `/gemini/v1beta/models/ok-model:${action}`, own: null, pathModel: 'ok-model', family: 'gemini' })
const ASYNC = { path: '/bedrock/async-invoke', own: 'modelId', family: 'bedrock' } as const

const JSON_ROWS: JsonRow[] = [
  { name: 'a plain request', ...CHAT, body: chat(''), expect: 'forwarded' },
  { name: 'MODEL after model (Go reads the last that folds)', ...CHAT, body: '{"model":"ok-model","MODEL":"denied-model"}', expect: 'refused' },
  { name: 'MODEL before model', ...CHAT, body: '{"MODEL":"denied-model","model":"ok-model"}', expect: 'refused' },
  { name: 'mOdel in mixed case', ...CHAT, body: '{"model":"ok-model","mOdel":"denied-model"}', expect: 'refused' },
  { name: 'only a Model key', ...CHAT, body: '{"Model":"denied-model"}', expect: 'refused' },
  { name: 'the Kelvin sign in fallbacks (Go folds it to k)', ...CHAT, body: chat(',"fallbac\u212As":["denied-model"]'), expect: 'refused' },
  { name: 'the long s in fallbacks (Go folds it to s)', ...CHAT, body: chat(',"fallback\u017f":["denied-model"]'), expect: 'refused' },
  { name: 'a dotless i in modelId (Go does not fold it)', ...ASYNC, body: '{"modelId":"ok-model","model\u0131d":"denied-model","modelInput":{}}', expect: 'forwarded' },
  { name: 'modelID beside modelId', ...ASYNC, body: '{"modelId":"ok-model","modelID":"denied-model","modelInput":{}}', expect: 'refused' },
  { name: 'duplicate model keys, denied last', ...CHAT, body: '{"model":"ok-model","model":"denied-model"}', expect: 'refused' },
  { name: 'duplicate model keys, denied first', ...CHAT, body: '{"model":"denied-model","model":"ok-model"}', expect: 'refused' },
  { name: 'duplicate keys through an escape', ...CHAT, body: '{"model":"ok-model","mod\\u0065l":"denied-model"}', expect: 'refused' },
  { name: 'a repeated key in an object no model is read from', ...CHAT, body: chat(',"metadata":{"a":"1","a":"2"}'), expect: 'refused' },
  { name: 'case twins in a tool schema, where no model is read', ...CHAT, body: chat(',"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"Model":{},"model":{}}}}}]'), expect: 'forwarded' },
  { name: 'a second JSON value after the first (Go\'s Decoder reads the first)', ...CHAT, body: '{"model":"ok-model"} {"model":"denied-model"}', expect: 'refused' },
  { name: 'LiteLLM fallbacks, as ids', ...CHAT, body: chat(',"fallbacks":["denied-model","ok-2"]'), expect: 'forwarded' },
  { name: 'LiteLLM fallbacks, as objects', ...CHAT, body: chat(',"fallbacks":[{"model":"denied-model","messages":[]}]'), expect: 'forwarded' },
  { name: 'fallbacks as a lone string', ...CHAT, body: chat(',"fallbacks":"denied-model"'), expect: 'refused' },
  { name: 'OpenRouter models', ...CHAT, body: chat(',"models":["denied-model"]'), expect: 'forwarded' },
  { name: 'a moderation model', ...CHAT, body: chat(',"moderation":{"model":"denied-model"}'), expect: 'forwarded' },
  { name: 'a moderation model with a case twin', ...CHAT, body: chat(',"moderation":{"model":"ok-model","Model":"denied-model"}'), expect: 'refused' },
  { name: 'an image_generation tool naming its model', ...RESPONSES, body: '{"model":"ok-model","input":"hi","tools":[{"type":"image_generation","model":"denied-model"}]}', expect: 'forwarded' },
  { name: 'an image_generation tool without a model runs gpt-image-1', ...RESPONSES, body: '{"model":"ok-model","input":"hi","tools":[{"type":"image_generation"}]}', expect: 'forwarded' },
  { name: 'an image_generation tool with a MODEL key', ...RESPONSES, body: '{"model":"ok-model","input":"hi","tools":[{"type":"image_generation","MODEL":"denied-model"}]}', expect: 'refused' },
  { name: 'a tool with type and TYPE', ...RESPONSES, body: '{"model":"ok-model","input":"hi","tools":[{"type":"function","TYPE":"image_generation","name":"f"}]}', expect: 'refused' },
  { name: 'a duplicate model inside a tool', ...RESPONSES, body: '{"model":"ok-model","tools":[{"type":"image_generation","model":"ok-model","model":"denied-model"}]}', expect: 'refused' },
  { name: 'tools added in an input item', ...RESPONSES, body: '{"model":"ok-model","input":[{"type":"additional_tools","role":"developer","tools":[{"type":"image_generation","model":"denied-model"}]}]}', expect: 'forwarded' },
  { name: 'a Realtime session\'s transcription model', path: '/openai/v1/realtime/sessions', own: 'model', family: 'openai', body: '{"model":"ok-model","input_audio_transcription":{"model":"denied-model"}}', expect: 'forwarded' },
  { name: 'Anthropic fallbacks', ...MESSAGES, body: '{"model":"ok-model","max_tokens":1,"messages":[],"fallbacks":[{"model":"denied-model"}]}', expect: 'forwarded' },
  { name: 'Anthropic fallbacks: "default" (the server chooses: unknown_model)', ...MESSAGES, body: '{"model":"ok-model","max_tokens":1,"messages":[],"fallbacks":"default"}', expect: 'refused' },
  { name: 'an advisor tool', ...MESSAGES, body: '{"model":"ok-model","max_tokens":1,"messages":[],"tools":[{"type":"advisor_20260301","name":"advisor","model":"denied-model"}]}', expect: 'forwarded' },
  { name: 'a tool added mid-conversation', ...MESSAGES, body: '{"model":"ok-model","max_tokens":1,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_addition","tool":{"type":"tool_definition","definition":{"type":"advisor_20260301","name":"advisor","model":"denied-model"}}}]}]}', expect: 'forwarded' },
  { name: 'Fallbacks beside fallbacks', ...MESSAGES, body: '{"model":"ok-model","max_tokens":1,"messages":[],"fallbacks":[],"Fallbacks":[{"model":"denied-model"}]}', expect: 'refused' },
  { name: 'a batch item with MODEL', ...BATCH, body: '{"requests":[{"custom_id":"a","params":{"model":"ok-model","MODEL":"denied-model","max_tokens":1,"messages":[]}}]}', expect: 'refused' },
  { name: 'a batch item with fallbacks', ...BATCH, body: '{"requests":[{"custom_id":"a","params":{"model":"ok-model","max_tokens":1,"messages":[],"fallbacks":[{"model":"denied-model"}]}}]}', expect: 'forwarded' },
  { name: 'a batch with Requests beside requests', ...BATCH, body: '{"requests":[{"custom_id":"a","params":{"model":"ok-model"}}],"Requests":[{"custom_id":"b","params":{"model":"denied-model"}}]}', expect: 'refused' },
  { name: 'a batch item with Params beside params', ...BATCH, body: '{"requests":[{"custom_id":"a","params":{"model":"ok-model"},"PARAMS":{"model":"denied-model"}}]}', expect: 'refused' },
  { name: 'Gemini: a body naming the path\'s model', ...GEMINI('generateContent'), body: '{"model":"models/ok-model","contents":[]}', expect: 'forwarded' },
  { name: 'Gemini: a Model key in the body', ...GEMINI('generateContent'), body: '{"Model":"models/denied-model","contents":[]}', expect: 'refused' },
  { name: 'Gemini batchGenerateContent: an inlined request naming another model', ...GEMINI('batchGenerateContent'), body: '{"batch":{"model":"models/ok-model","inputConfig":{"requests":{"requests":[{"request":{"model":"models/denied-model","contents":[]}}]}}}}', expect: 'refused' },
  { name: 'Gemini batchGenerateContent: the batch naming another model', ...GEMINI('batchGenerateContent'), body: '{"batch":{"model":"models/denied-model","inputConfig":{"requests":{"requests":[]}}}}', expect: 'refused' },
  { name: 'Gemini batchGenerateContent: all agreeing', ...GEMINI('batchGenerateContent'), body: '{"batch":{"model":"models/ok-model","inputConfig":{"requests":{"requests":[{"request":{"model":"models/ok-model","contents":[]}}]}}}}', expect: 'forwarded' },
  { name: 'Gemini countTokens: generateContentRequest naming another model', ...GEMINI('countTokens'), body: '{"generateContentRequest":{"model":"models/denied-model","contents":[]}}', expect: 'refused' },
  { name: 'Gemini batchEmbedContents: an item with MODEL', ...GEMINI('batchEmbedContents'), body: '{"requests":[{"model":"models/ok-model","MODEL":"models/denied-model","content":{}}]}', expect: 'refused' },
  { name: 'JSON declared as a form', ...CHAT, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: chat(''), expect: 'forwarded' },
  { name: 'JSON declared as text in UTF-16', ...CHAT, headers: { 'content-type': 'text/plain; charset=utf-16' }, body: chat(''), expect: 'forwarded' },
  { name: 'JSON without a Content-Type', ...CHAT, headers: {}, body: chat(''), expect: 'forwarded' },
]

/** Every reader's models in `text`, or null where the reader cannot read it. */
function readings (row: JsonRow, text: string): Array<{ reader: string, read: ReadModels | null }> {
  return JSON_READERS.map((reader) => ({ reader: reader.name, read: readModels(reader, text, row.own, MODEL_FIELDS[row.family], row.batch === true) }))
}

/** The models a reading runs, the path's included; null when the readings disagree or one cannot read. */
function agreed (row: JsonRow, all: Array<{ read: ReadModels | null }>): string[] | null {
  const keys = all.map(({ read }) => read === null ? null : JSON.stringify([distinctSorted(read.models), distinctSorted(read.agreeing)]))
  if (keys.some((k) => k === null || k !== keys[0])) return null
  const first = all[0]?.read
  if (first === null || first === undefined) return null
  const own = row.pathModel ?? first.models[0]
  // A field naming the request's model again must agree with it, or servers differ on which runs.
  if (first.agreeing.some((m) => m.replace(/^models\//, '') !== own)) return null
  return distinctSorted([...(row.pathModel === undefined ? [] : [row.pathModel]), ...first.models])
}

t.test(`JSON: ${JSON_ROWS.length} tricks, read by JSON.parse, a first-key-wins reader and Go's encoding/json`, async (t) => {
  const { gw, upstream } = await start(t)
  for (const row of JSON_ROWS) {
    const original = readings(row, row.body)
    const models = agreed(row, original)
    for (const ip of [UNITED_STATES, HONG_KONG]) {
      const before = upstream.calls.length
      const headers = row.headers ?? { 'content-type': 'application/json' }
      const res = await send(`${gw.url}${row.path}`, { method: 'POST', body: row.body, headers: { ...headers, 'x-forwarded-for': ip } })
      const line = await lineOf(gw, res)
      const calls = upstream.calls.slice(before)
      const what = `${row.name} (from ${ip === HONG_KONG ? 'HK' : 'US'})`
      if (calls.length === 0) {
        t.ok(res.status >= 400 && res.status < 500, `${what}: refused (${res.status})`)
        t.match(line, { action: 'block', reason: /./ }, `${what}: the decision line says why: ${String(line?.['reason'])}`)
        if (ip === UNITED_STATES) t.equal('refused', row.expect, `${what}: refused, as expected`)
        continue
      }
      t.equal(calls.length, 1, `${what}: one upstream call`)
      const call = calls[0]
      if (call === undefined) continue
      t.not(models, null, `${what}: forwarded only where every parser reads the same models`)
      t.equal(call.body.toString(), row.body, `${what}: the upstream got the bytes that were read`)
      t.equal(call.headers['content-type'], 'application/json', `${what}: as the type they were read as`)
      const received = agreed(row, readings(row, call.body.toString()))
      t.same(received, models, `${what}: every parser reads the models the gateway read in what the upstream got`)
      t.same(decided(line), received, `${what}: the decision line lists every model: ${JSON.stringify(received)}`)
      if (ip === HONG_KONG) t.notOk(received?.some((m) => DENIED.test(m)), `${what}: no denied model reaches the upstream from HK`)
      if (ip === UNITED_STATES) t.equal('forwarded', row.expect, `${what}: forwarded, as expected`)
    }
    // From HK, any reading of any parser that runs a denied model must have been stopped.
    if (original.some(({ read }) => read !== null && [...read.models, ...read.agreeing].some((m) => DENIED.test(m)))) {
      t.ok(true, `${row.name}: a parser reads a denied model, and nothing reached the upstream from HK`)
    }
  }
})

t.test('a request naming more than one model is not routed: a would-be route blocks it, saying why', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(`
server: { host: 127.0.0.1, port: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams:
  openai: { url: "${upstream.url}", dialect: openai }
  sovereign: { url: "${upstream.url}/sovereign", dialect: openai-compatible }
policy:
  default: block
  rules:
    - { name: routed, upstreams: [openai], models: ["gpt-*"], deny: [HK], action: { route: { upstream: sovereign, model: local-model } } }
    - { name: everything-else, deny: [], action: block }
`)
  t.teardown(gw.close)
  const post = async (body: string): Promise<Response> => send(`${gw.url}/openai/v1/chat/completions`, { body, headers: { 'content-type': 'application/json', 'x-forwarded-for': HONG_KONG } })
  const before = upstream.calls.length
  const one = await post('{"model":"gpt-4o","messages":[]}')
  t.equal(one.status, 200, 'one model: routed')
  t.same(JSON.parse(upstream.calls.at(-1)?.body.toString() ?? '{}'), { model: 'local-model', messages: [] })
  for (const extra of [',"fallbacks":["gpt-4o"]', ',"fallbacks":["other-model"]', ',"moderation":{"model":"gpt-4o"}']) {
    const res = await post(`{"model":"gpt-4o","messages":[]${extra}}`)
    t.equal(res.status, 451, `${extra}: blocked, not routed`)
    t.match(await lineOf(gw, res), { action: 'block', rule: 'routed', reason: /a request that names a model in more than one place is not routed, so it is blocked/ })
  }
  t.equal(upstream.calls.length, before + 1, 'only the routable request reached an upstream')
})

// ---------------------------------------------------------------------------------------------
// multipart/form-data: @fastify/busboy, busboy, formidable and undici's formData().

interface FormRow {
  name: string
  body: string | Buffer
  contentType?: string
  headers?: Record<string, string>
  expect: 'forwarded' | 'refused'
}

const B = 'multipart/form-data; boundary=b'
const form = (...parts: string[]): string => `${parts.map((p) => `--b\r\n${p}\r\n`).join('')}--b--\r\n`
const field = (name: string, value: string, headers = ''): string => `Content-Disposition: form-data; name="${name}"\r\n${headers}\r\n${value}`
const AUDIO = 'Content-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\nRIFF\u0000\u0001 fake audio'

const FORM_ROWS: FormRow[] = [
  { name: 'an SDK-like form', body: form(field('model', 'ok-model'), AUDIO, field('language', 'en')), expect: 'forwarded' },
  { name: 'two Content-Disposition headers in one part', body: form('Content-Disposition: form-data; name="model"\r\nContent-Disposition: form-data; name="prompt"\r\n\r\ndenied-model', field('model', 'ok-model'), AUDIO), expect: 'refused' },
  { name: 'a name*= parameter', body: form('Content-Disposition: form-data; name="prompt"; name*=utf-8\'\'model\r\n\r\ndenied-model', field('model', 'ok-model'), AUDIO), expect: 'refused' },
  { name: 'Content-Disposition: attachment', body: form('Content-Disposition: attachment; name="model"\r\n\r\ndenied-model', field('model', 'ok-model'), AUDIO), expect: 'refused' },
  { name: 'a repeated boundary parameter', contentType: 'multipart/form-data; boundary=b; boundary=c', body: `--c\r\n${field('model', 'denied-model')}\r\n--c--\r\n--b\r\n${field('model', 'ok-model')}\r\n--b--\r\n`, expect: 'refused' },
  { name: 'a backslash escape in a quoted name', body: form('Content-Disposition: form-data; name="mo\\"del"\r\n\r\ndenied-model', field('model', 'ok-model'), AUDIO), expect: 'refused' },
  { name: 'a name ending in a backslash', body: form('Content-Disposition: form-data; name="x\\"; name="model"\r\n\r\ndenied-model', field('model', 'ok-model')), expect: 'refused' },
  { name: 'a Content-Transfer-Encoding', body: form(field('model', Buffer.from('denied-model').toString('base64'), 'Content-Transfer-Encoding: base64\r\n'), AUDIO), expect: 'refused' },
  { name: 'fields past a parser\'s count limit', body: form(...Array.from({ length: 120 }, (_, i) => field(`f${i}`, 'x')), field('model', 'denied-model')), expect: 'refused' },
  { name: 'two model fields', body: form(field('model', 'ok-model'), field('model', 'denied-model')), expect: 'refused' },
  { name: 'a Model field beside model (ASP.NET binds ignoring case)', body: form(field('model', 'ok-model'), field('Model', 'denied-model')), expect: 'refused' },
  { name: 'the model as a file with an empty name', body: form('Content-Disposition: form-data; name="model"; filename=""\r\n\r\ndenied-model', AUDIO), expect: 'refused' },
  { name: 'a model field typed application/octet-stream (one parser takes it for a file)', body: form(field('model', 'ok-model', 'Content-Type: application/octet-stream\r\n'), AUDIO), expect: 'forwarded' },
  { name: 'a preamble', body: `preamble\r\n${form(field('model', 'ok-model'), AUDIO)}`, expect: 'refused' },
  { name: 'a part after the closing boundary', body: `${form(field('model', 'ok-model'))}--b\r\n${field('model', 'denied-model')}\r\n--b--\r\n`, expect: 'refused' },
  { name: 'bare LF line ends', body: `--b\nContent-Disposition: form-data; name="model"\n\ndenied-model\n--b--\n`, expect: 'refused' },
  { name: 'padding after a delimiter', body: `--b  \r\n${field('model', 'ok-model')}\r\n--b--\r\n`, expect: 'refused' },
  { name: 'the delimiter inside a part, followed by other text', body: form(field('prompt', 'x\r\n--bz'), field('model', 'ok-model')), expect: 'refused' },
  { name: 'a folded header', body: form('Content-Disposition: form-data;\r\n name="model"\r\n\r\nok-model'), expect: 'refused' },
  { name: 'a duplicated name parameter', body: form('Content-Disposition: form-data; name="model"; name="prompt"\r\n\r\ndenied-model', field('model', 'ok-model')), expect: 'refused' },
  { name: 'a quoted boundary', contentType: 'multipart/form-data; boundary="b"', body: form(field('model', 'ok-model'), AUDIO), expect: 'forwarded' },
  { name: 'headers in upper case, a name unquoted', body: form('CONTENT-DISPOSITION: FORM-DATA; NAME=model\r\n\r\nok-model', AUDIO), expect: 'forwarded' },
  { name: 'another part header (not sent on)', body: form(field('model', 'ok-model', 'X-Note: ignored\r\n'), AUDIO), expect: 'forwarded' },
  { name: '.NET\'s filename*= repeating filename=', body: form(field('model', 'ok-model'), 'Content-Disposition: form-data; name=file; filename=a.wav; filename*=utf-8\'\'a.wav\r\nContent-Type: audio/wav\r\n\r\nRIFF'), expect: 'forwarded' },
  { name: 'a filename*= naming another file', body: form(field('model', 'ok-model'), 'Content-Disposition: form-data; name=file; filename=a.wav; filename*=utf-8\'\'b.mp3\r\n\r\nRIFF'), expect: 'refused' },
  { name: 'a name with %22, which undici decodes to a quote and others do not', body: form(field('model', 'ok-model'), field('prompt%22', 'x'), AUDIO), expect: 'refused' },
  { name: 'a file name with %0A', body: form(field('model', 'ok-model'), 'Content-Disposition: form-data; name="file"; filename="a%0A.wav"\r\n\r\nRIFF'), expect: 'refused' },
  { name: 'a file name in UTF-8', body: form(field('model', 'ok-model'), 'Content-Disposition: form-data; name="file"; filename="r\u00e9union.wav"\r\nContent-Type: audio/wav\r\n\r\nRIFF'), expect: 'forwarded' },
  { name: 'an empty file', body: form(field('model', 'ok-model'), 'Content-Disposition: form-data; name="file"; filename=""\r\nContent-Type: application/octet-stream\r\n\r\n'), expect: 'forwarded' },
  { name: 'a gzip form', headers: { 'content-encoding': 'gzip' }, body: gzipSync(form(field('model', 'ok-model'), AUDIO)), expect: 'forwarded' },
]

t.test(`multipart: ${FORM_ROWS.length} tricks, read by @fastify/busboy, busboy, formidable and undici`, async (t) => {
  const { gw, upstream } = await start(t)
  for (const row of FORM_ROWS) {
    const type = row.contentType ?? B
    const raw = Buffer.from(row.body)
    const plain = row.headers?.['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw
    const original = await readAll(plain, type)
    const modelsRead = original.map((o) => o.reading?.fields.filter(([n]) => n === 'model').map(([, v]) => v) ?? [])
    t.comment(`${row.name}: ${original.map((o) => `${o.parser} ${o.error === undefined ? JSON.stringify(modelsRead[original.indexOf(o)]) : 'error'}`).join('; ')}`)
    for (const ip of [UNITED_STATES, HONG_KONG]) {
      const before = upstream.calls.length
      const res = await send(`${gw.url}/openai/v1/audio/transcriptions`, { method: 'POST', body: raw, headers: { 'content-type': type, ...row.headers, 'x-forwarded-for': ip } })
      const line = await lineOf(gw, res)
      const calls = upstream.calls.slice(before)
      const what = `${row.name} (from ${ip === HONG_KONG ? 'HK' : 'US'})`
      if (calls.length === 0) {
        t.ok(res.status >= 400 && res.status < 500, `${what}: refused (${res.status})`)
        t.match(line, { action: 'block', reason: /./ }, `${what}: the decision line says why: ${String(line?.['reason'])}`)
        if (ip === UNITED_STATES) t.equal('refused', row.expect, `${what}: refused, as expected`)
        continue
      }
      const call = calls[0]
      if (call === undefined) continue
      const sentType = String(call.headers['content-type'])
      t.match(sentType, /^multipart\/form-data; boundary=geofence-[0-9a-f]{32}$/, `${what}: a fresh boundary`)
      t.equal(call.headers['content-encoding'], undefined, `${what}: not compressed again`)
      const upstreamReadings = await readAll(call.body, sentType)
      const first = upstreamReadings[0]?.reading
      for (const r of upstreamReadings) {
        t.equal(r.error, undefined, `${what}: ${r.parser} reads the forwarded form`)
        if (r.reading !== undefined && first !== undefined) t.same(sorted(r.reading), sorted(first), `${what}: ${r.parser} reads what @fastify/busboy reads`)
      }
      const models = first?.fields.filter(([n]) => n === 'model').map(([, v]) => v) ?? []
      t.same(models, [line?.['model']], `${what}: the one model every parser reads is the one decided`)
      if (ip === HONG_KONG) t.notOk(models.some((m) => DENIED.test(m)), `${what}: no denied model reaches the upstream`)
      if (ip === UNITED_STATES) t.equal('forwarded', row.expect, `${what}: forwarded, as expected`)
    }
  }
})

t.test('the official openai SDK\'s audio.transcriptions.create passes, and its form reads alike upstream', async (t) => {
  const { gw, upstream } = await start(t)
  const audio = Buffer.concat([Buffer.from('RIFF'), Buffer.from([0, 1, 2, 0x0d, 0x0a, 0x2d, 0x2d]), Buffer.from('WAVE fake audio')])
  const client = new OpenAI({ apiKey: 'sk-test', baseURL: `${gw.url}/openai/v1`, maxRetries: 0, defaultHeaders: { 'x-forwarded-for': UNITED_STATES } })
  const res = await client.audio.transcriptions.create({ file: await toFile(audio, 'a.wav', { type: 'audio/wav' }), model: 'ok-model', language: 'en', timestamp_granularities: ['word', 'segment'], response_format: 'verbose_json' })
  t.equal(res.text, 'hello from the fake upstream')
  const call = upstream.calls.at(-1)
  if (call === undefined) throw new Error('no upstream call')
  const readingsUp = await readAll(call.body, String(call.headers['content-type']))
  for (const r of readingsUp) {
    t.equal(r.error, undefined, `${r.parser} reads the forwarded form`)
    t.same(r.reading === undefined ? null : sorted(r.reading), sorted({
      fields: [['model', 'ok-model'], ['language', 'en'], ['timestamp_granularities[]', 'word'], ['timestamp_granularities[]', 'segment'], ['response_format', 'verbose_json']],
      files: [['file', 'a.wav', audio]],
    }), `${r.parser}: the SDK's fields and file, exactly`)
  }
  t.match(gw.decisions().at(-1), { action: 'allow', model: 'ok-model' })
})

// ---------------------------------------------------------------------------------------------
// Content-Encoding: the gateway's decoding is what the upstream gets; it never decodes again.

interface CodingRow {
  name: string
  coding: string
  body: Buffer
  expect: 'forwarded' | 'refused'
}

const JSON_BODY = '{"model":"ok-model","messages":[]}'
const CODING_ROWS: CodingRow[] = [
  { name: 'gzip', coding: 'gzip', body: gzipSync(JSON_BODY), expect: 'forwarded' },
  { name: 'deflate as zlib (RFC 9110), which raw inflate cannot read', coding: 'deflate', body: deflateSync(JSON_BODY), expect: 'forwarded' },
  { name: 'raw deflate labelled deflate, which zlib cannot read', coding: 'deflate', body: deflateRawSync(JSON_BODY), expect: 'refused' },
  { name: 'br', coding: 'br', body: brotliCompressSync(JSON_BODY), expect: 'forwarded' },
  { name: 'gzip in two members (some decoders read only the first)', coding: 'gzip', body: Buffer.concat([gzipSync('{"model":"ok-model",'), gzipSync('"messages":[]}')]), expect: 'forwarded' },
  { name: 'gzip then br', coding: 'gzip, br', body: brotliCompressSync(gzipSync(JSON_BODY)), expect: 'forwarded' },
  { name: 'gzip labelled x-gzip', coding: 'x-gzip', body: gzipSync(JSON_BODY), expect: 'forwarded' },
]

/** How zlib-family decoders read a deflate body: as zlib, and as raw deflate. */
function deflateReadings (body: Buffer): string[] {
  return [inflateSync, inflateRawSync].map((decode) => { try { return decode(body).toString() } catch { return 'error' } })
}

t.test(`Content-Encoding: ${CODING_ROWS.length} codings, forwarded as the gateway decoded them`, async (t) => {
  const { gw, upstream } = await start(t)
  for (const row of CODING_ROWS) {
    if (row.coding === 'deflate') t.comment(`${row.name}: zlib / raw read ${JSON.stringify(deflateReadings(row.body))}`)
    const before = upstream.calls.length
    const res = await send(`${gw.url}/openai/v1/chat/completions`, { method: 'POST', body: row.body, headers: { 'content-type': 'application/json', 'content-encoding': row.coding, 'x-forwarded-for': UNITED_STATES } })
    const line = await lineOf(gw, res)
    const call = upstream.calls.slice(before)[0]
    if (call === undefined) {
      t.equal('refused', row.expect, `${row.name}: refused (${res.status}): ${String(line?.['reason'])}`)
      t.match(line, { action: 'block', reason: /does not decode/ })
      continue
    }
    t.equal('forwarded', row.expect, `${row.name}: forwarded`)
    t.equal(call.headers['content-encoding'], undefined, `${row.name}: without a Content-Encoding, so the upstream decodes nothing`)
    t.equal(call.body.toString(), JSON_BODY, `${row.name}: the bytes the gateway decoded and read`)
    t.same(decided(line), ['ok-model'])
  }
  const raw = deflateReadings(deflateRawSync(JSON_BODY))
  t.same(raw, ['error', JSON_BODY], 'raw deflate: zlib cannot read it, raw inflate can: the two readings differ, so the gateway sends its own')
})
