// Attempts to reach a denied model from a denied location (Hong Kong, through the trusted
// proxy) by every trick other gateways fell for. Each one must be refused, never reach the
// upstream, and leave a decision line that says why.
import http from 'node:http'
import net from 'node:net'
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib'
import t, { type Test } from 'tap'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { baseConfig, startTestGateway } from '../support/gateway.js'

const HK = '203.198.0.1'
const BEDROCK_SONNET = 'anthropic.claude-sonnet-4-20250514-v1:0'
const US = '8.8.8.8'
const claude = (extra = ''): string => `{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[]${extra}}`

interface Attempt {
  name: string
  method?: string
  path?: string
  headers?: Record<string, string>
  body?: string | Buffer
  /** Raw request text, for what a normal client cannot send. */
  raw?: string
}

const json = { 'content-type': 'application/json' }
const fromHK = { ...json, 'x-forwarded-for': HK }
const ATTEMPTS: Attempt[] = [
  { name: 'plain request from Hong Kong', headers: fromHK, body: claude() },
  { name: 'model in upper case', headers: fromHK, body: claude().replace('claude-sonnet-4-5', 'CLAUDE-SONNET-4-5') },
  { name: 'model in mixed case', headers: fromHK, body: claude().replace('claude-sonnet-4-5', 'Claude-Sonnet-4-5') },
  { name: 'model spelled with a unicode escape', headers: fromHK, body: claude().replace('claude-sonnet-4-5', 'claude\\u002dsonnet-4-5') },
  { name: 'key spelled with a unicode escape', headers: fromHK, body: '{"mod\\u0065l":"claude-sonnet-4-5"}' },
  { name: 'duplicate model keys, allowed one last', headers: fromHK, body: '{"model":"claude-sonnet-4-5","model":"gpt-4o-mini"}' },
  { name: 'duplicate model keys, allowed one first', headers: fromHK, body: '{"model":"gpt-4o-mini","model":"claude-sonnet-4-5"}' },
  { name: 'duplicate keys through an escape', headers: fromHK, body: '{"model":"x","mod\\u0065l":"claude-sonnet-4-5"}' },
  { name: 'model as an array', headers: fromHK, body: '{"model":["claude-sonnet-4-5"]}' },
  { name: 'model as an object', headers: fromHK, body: '{"model":{"id":"claude-sonnet-4-5"}}' },
  { name: 'model nested only', headers: fromHK, body: '{"params":{"model":"claude-sonnet-4-5"}}' },
  { name: 'model with a trailing newline', headers: fromHK, body: '{"model":"claude-sonnet-4-5\\n"}' },
  { name: 'model with a NUL', headers: fromHK, body: '{"model":"claude-sonnet-4-5\\u0000"}' },
  { name: 'byte order mark before the JSON', headers: fromHK, body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(claude())]) },
  { name: 'invalid UTF-8 in the body', headers: fromHK, body: Buffer.concat([Buffer.from(claude(',"x":"')), Buffer.from([0xc3]), Buffer.from('"}')]) },
  { name: 'no Content-Type', headers: { 'x-forwarded-for': HK }, body: claude() },
  { name: 'Content-Type text/plain', headers: { 'content-type': 'text/plain', 'x-forwarded-for': HK }, body: claude() },
  { name: 'Content-Type form-urlencoded', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': HK }, body: claude() },
  { name: 'multipart body with the model in a field', headers: { 'content-type': 'multipart/form-data; boundary=b', 'x-forwarded-for': HK }, body: '--b\r\ncontent-disposition: form-data; name="model"\r\n\r\nclaude-sonnet-4-5\r\n--b--\r\n' },
  { name: 'gzip body', headers: { ...fromHK, 'content-encoding': 'gzip' }, body: gzipSync(claude()) },
  { name: 'deflate body', headers: { ...fromHK, 'content-encoding': 'deflate' }, body: deflateSync(claude()) },
  { name: 'brotli body', headers: { ...fromHK, 'content-encoding': 'br' }, body: brotliCompressSync(claude()) },
  { name: 'gzip body labelled identity', headers: { ...fromHK, 'content-encoding': 'identity' }, body: gzipSync(claude()) },
  { name: 'an encoding the gateway does not decode', headers: { ...fromHK, 'content-encoding': 'zstd' }, body: claude() },
  { name: 'double slash in the path', path: '/anthropic/v1//messages', headers: fromHK, body: claude() },
  { name: 'dot segment in the path', path: '/anthropic/v1/./messages', headers: fromHK, body: claude() },
  { name: 'dot-dot segment in the path', path: '/anthropic/v1/models/../messages', headers: fromHK, body: claude() },
  { name: 'encoded slash in the path', path: '/anthropic/v1%2Fmessages', headers: fromHK, body: claude() },
  { name: 'encoded letter in the path', path: '/anthropic/v1/m%65ssages', headers: fromHK, body: claude() },
  { name: 'double-encoded path', path: '/anthropic/v1%252Fmessages', headers: fromHK, body: claude() },
  { name: 'backslash in the path', path: '/anthropic/v1\\messages', headers: fromHK, body: claude() },
  { name: 'trailing slash', path: '/anthropic/v1/messages/', headers: fromHK, body: claude() },
  { name: 'upper-case path', path: '/anthropic/V1/MESSAGES', headers: fromHK, body: claude() },
  { name: 'a path no dialect knows (catch-all)', path: '/anthropic/v1/generate', headers: fromHK, body: claude() },
  { name: 'the legacy Text Completions endpoint', path: '/anthropic/v1/complete', headers: fromHK, body: claude() },
  { name: 'Anthropic\'s OpenAI-compatible endpoint', path: '/anthropic/v1/chat/completions', headers: fromHK, body: claude() },
  { name: 'a listed path one segment deeper', path: '/anthropic/v1/messages/count_tokens/x', headers: fromHK, body: claude() },
  { name: 'batches endpoint', path: '/anthropic/v1/messages/batches', headers: fromHK, body: `{"requests":[{"custom_id":"a","params":${claude()}}]}` },
  { name: 'a batch hiding Claude behind an allowed model', path: '/anthropic/v1/messages/batches', headers: fromHK, body: `{"requests":[{"custom_id":"a","params":{"model":"gpt-4o-mini"}},{"custom_id":"b","params":${claude()}}]}` },
  { name: 'a batch item with duplicate model keys', path: '/anthropic/v1/messages/batches', headers: fromHK, body: '{"requests":[{"custom_id":"a","params":{"model":"gpt-4o-mini","model":"claude-sonnet-4-5"}}]}' },
  { name: 'PUT to the messages endpoint', method: 'PUT', headers: fromHK, body: claude() },
  { name: 'PATCH to the messages endpoint', method: 'PATCH', headers: fromHK, body: claude() },
  { name: 'GET with a body', method: 'GET', headers: fromHK, body: claude() },
  { name: 'the upstream mounted under another case', path: '/Anthropic/v1/messages', headers: fromHK, body: claude() },
  { name: 'a second X-Forwarded-For naming the US (client-written, left)', headers: { ...json, 'x-forwarded-for': `${US}, ${HK}` }, body: claude() },
  { name: 'Forwarded naming the US beside X-Forwarded-For', headers: { ...fromHK, forwarded: `for=${US}` }, body: claude() },
  { name: 'X-Real-IP naming the US', headers: { ...fromHK, 'x-real-ip': US }, body: claude() },
  { name: 'a client country header', headers: { ...fromHK, 'cf-ipcountry': 'US', 'x-country': 'US' }, body: claude() },
  { name: 'an unparseable hop', headers: { ...json, 'x-forwarded-for': `${US}, unknown` }, body: claude() },
  { name: 'an IPv4-mapped Hong Kong address', headers: { ...json, 'x-forwarded-for': `::ffff:${HK}` }, body: claude() },
  { name: 'a Hong Kong address with a port', headers: { ...json, 'x-forwarded-for': `${HK}:443` }, body: claude() },
  { name: 'a client-supplied request id', headers: { ...fromHK, 'x-request-id': 'allow-me' }, body: claude() },
  { name: 'a model header', headers: { ...fromHK, 'x-model': 'gpt-4o-mini', 'anthropic-model': 'gpt-4o-mini' }, body: claude() },
  { name: 'a WebSocket upgrade', headers: { ...fromHK, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' } },
  { name: 'a Realtime WebSocket upgrade naming Claude', path: '/openai/v1/realtime?model=claude-sonnet-4-5', headers: { ...fromHK, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' } },
  { name: 'a Realtime upgrade naming two models', path: '/openai/v1/realtime?model=gpt-4o-mini&model=claude-sonnet-4-5', headers: { ...fromHK, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' } },
  { name: 'a Realtime upgrade with the model percent-encoded', path: '/openai/v1/realtime?model=%63laude-sonnet-4-5', headers: { ...fromHK, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' } },
  { name: 'an h2c upgrade', headers: { ...fromHK, connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAARAAAAAAAIAAAAA' }, body: claude() },
  // A declined offer is read again as plain HTTP/1.1 (app.ts readAgainWithoutOffer): still decided.
  { name: 'an h2c offer on a body-less Realtime GET naming Claude', method: 'GET', path: '/openai/v1/realtime?model=claude-sonnet-4-5', headers: { 'x-forwarded-for': HK, connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAARAAAAAAAIAAAAA' } },
  { name: 'Upgrade: h2c, websocket on a Realtime handshake naming Claude', method: 'GET', path: '/openai/v1/realtime?model=claude-sonnet-4-5', headers: { 'x-forwarded-for': HK, connection: 'Upgrade', upgrade: 'h2c, websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' } },
  { name: 'Upgrade: websocket, h2c on a Realtime handshake naming Claude', method: 'GET', path: '/openai/v1/realtime?model=claude-sonnet-4-5', headers: { 'x-forwarded-for': HK, connection: 'Upgrade', upgrade: 'websocket, h2c', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' } },
  { name: 'an h2c offer with a chunked body', raw: `POST /anthropic/v1/messages HTTP/1.1\r\nhost: x\r\nconnection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAARAAAAAAAIAAAAA\r\ncontent-type: application/json\r\nx-forwarded-for: ${HK}\r\ntransfer-encoding: chunked\r\n\r\n${claude().length.toString(16)}\r\n${claude()}\r\n0\r\n\r\n` },
  { name: 'an h2c offer with a second request pipelined behind its body', raw: `POST /anthropic/v1/messages HTTP/1.1\r\nhost: x\r\nconnection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAARAAAAAAAIAAAAA\r\ncontent-type: application/json\r\nx-forwarded-for: ${HK}\r\ncontent-length: ${claude().length}\r\n\r\n${claude()}POST /anthropic/v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-forwarded-for: ${HK}\r\ncontent-length: ${claude().length}\r\nconnection: close\r\n\r\n${claude()}` },
  { name: 'a request smuggled behind Transfer-Encoding and Content-Length', raw: `POST /anthropic/v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-forwarded-for: ${HK}\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n` },
  // Other dialects: the same Claude by its Bedrock, Vertex and Azure names.
  { name: 'Bedrock, the id percent-encoded as the SDK sends it', path: `/bedrock/model/${encodeURIComponent(BEDROCK_SONNET)}/converse`, headers: fromHK, body: '{"messages":[]}' },
  { name: 'Bedrock, the id double-encoded (%253A)', path: `/bedrock/model/${encodeURIComponent(encodeURIComponent(BEDROCK_SONNET))}/converse`, headers: fromHK, body: '{"messages":[]}' },
  { name: 'Bedrock, the id in upper case', path: `/bedrock/model/${BEDROCK_SONNET.toUpperCase()}/invoke`, headers: fromHK, body: '{}' },
  { name: 'Bedrock, letters of the id percent-encoded', path: '/bedrock/model/%61nthropic.%63laude-sonnet-4-20250514-v1:0/invoke', headers: fromHK, body: '{}' },
  { name: 'Bedrock, a geographic inference profile', path: `/bedrock/model/apac.${BEDROCK_SONNET}/converse-stream`, headers: fromHK, body: '{"messages":[]}' },
  { name: 'Bedrock, a foundation-model ARN', path: `/bedrock/model/${encodeURIComponent(`arn:aws:bedrock:ap-east-1::foundation-model/${BEDROCK_SONNET}`)}/invoke`, headers: fromHK, body: '{}' },
  { name: 'Bedrock, an unmapped application inference profile', path: `/bedrock/model/${encodeURIComponent('arn:aws:bedrock:ap-east-1:1:application-inference-profile/x1')}/invoke`, headers: fromHK, body: '{}' },
  { name: 'Bedrock, an allowed id in the path and Claude in the body', path: '/bedrock/model/amazon.nova-pro-v1:0/invoke', headers: fromHK, body: claude() },
  { name: 'Bedrock, an encoded slash outside the model id', path: `/bedrock/model/${BEDROCK_SONNET}%2Fconverse`, headers: fromHK, body: '{}' },
  { name: 'Bedrock, StartAsyncInvoke', path: '/bedrock/async-invoke', headers: fromHK, body: JSON.stringify({ modelId: BEDROCK_SONNET, modelInput: {} }) },
  { name: 'Vertex, Claude by its @date id, percent-encoded', path: '/vertex/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4%4020250514:rawPredict', headers: fromHK, body: '{"anthropic_version":"vertex-2023-10-16","messages":[]}' },
  { name: 'Vertex, count-tokens with Claude in the body', path: '/vertex/v1/projects/p/locations/us-east5/publishers/anthropic/models/count-tokens:rawPredict', headers: fromHK, body: claude() },
  { name: 'Vertex, the OpenAI-compatible endpoint', path: '/vertex/v1/projects/p/locations/global/endpoints/openapi/chat/completions', headers: fromHK, body: '{"model":"anthropic/claude-sonnet-4-5","messages":[]}' },
  { name: 'Vertex, a deployed endpoint that hides its model', path: '/vertex/v1/projects/p/locations/us-east5/endpoints/42:rawPredict', headers: fromHK, body: '{}' },
  { name: 'Azure, an unmapped deployment', path: '/azure/openai/deployments/claude-in-disguise/chat/completions?api-version=2024-10-21', headers: fromHK, body: '{"messages":[]}' },
  { name: 'Azure, a mapped deployment in another case', path: '/azure/openai/deployments/PROD-CLAUDE/chat/completions?api-version=2024-10-21', headers: fromHK, body: '{"messages":[]}' },
  { name: 'Gemini, a batch embedding naming Claude in an item', path: '/gemini/v1beta/models/text-embedding-004:batchEmbedContents', headers: fromHK, body: '{"requests":[{"model":"models/claude-sonnet-4-5","content":{}}]}' },
  { name: 'Gemini, Claude in the body of an allowed path', path: '/gemini/v1beta/models/gemma-3-27b:generateContent', headers: fromHK, body: claude() },
  { name: 'OpenAI batches (models in an uploaded file)', path: '/openai/v1/batches', headers: fromHK, body: '{"input_file_id":"file-1","endpoint":"/v1/chat/completions","completion_window":"24h"}' },
  // Models run from other fields than `model`, and keys other parsers read as `model`.
  { name: 'Claude as a LiteLLM fallback of an allowed model', path: '/openai/v1/chat/completions', headers: fromHK, body: '{"model":"x-allowed","messages":[],"fallbacks":["claude-sonnet-4-5"]}' },
  { name: 'Claude as an Anthropic fallback', headers: fromHK, body: '{"model":"x-allowed","max_tokens":8,"messages":[],"fallbacks":[{"model":"claude-sonnet-4-5"}]}' },
  { name: 'Claude as an advisor tool', headers: fromHK, body: '{"model":"x-allowed","max_tokens":8,"messages":[],"tools":[{"type":"advisor_20260301","name":"advisor","model":"claude-sonnet-4-5"}]}' },
  { name: 'Claude behind MODEL, which Go reads as model', path: '/openai/v1/chat/completions', headers: fromHK, body: '{"model":"x-allowed","MODEL":"claude-sonnet-4-5"}' },
  { name: 'Claude behind a Kelvin-sign key Go folds to fallbacks', path: '/openai/v1/chat/completions', headers: fromHK, body: '{"model":"x-allowed","fallbac\u212as":["claude-sonnet-4-5"]}' },
  { name: 'Claude in a part with a second Content-Disposition', path: '/openai/v1/audio/transcriptions', headers: { 'content-type': 'multipart/form-data; boundary=b', 'x-forwarded-for': HK }, body: '--b\r\ncontent-disposition: form-data; name="model"\r\ncontent-disposition: form-data; name="prompt"\r\n\r\nclaude-sonnet-4-5\r\n--b\r\ncontent-disposition: form-data; name="model"\r\n\r\nx-allowed\r\n--b--\r\n' },
  { name: 'Claude in a Gemini batch\'s inlined request', path: '/gemini/v1beta/models/gemma-3-27b:batchGenerateContent', headers: fromHK, body: '{"batch":{"model":"models/gemma-3-27b","inputConfig":{"requests":{"requests":[{"request":{"model":"models/claude-sonnet-4-5"}}]}}}}' },
  { name: 'an absolute-form request target', raw: `POST http://evil.example/anthropic/v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-forwarded-for: ${HK}\r\ncontent-length: ${claude().length}\r\n\r\n${claude()}` },
]

async function attempt (base: string, a: Attempt): Promise<{ status: number, id: string | undefined }> {
  const { port } = new URL(base)
  const raw = a.raw
  if (raw !== undefined) {
    return new Promise((resolve) => {
      const socket = net.connect(Number(port), '127.0.0.1')
      let text = ''
      socket.on('data', (d: Buffer) => { text += d.toString() })
      socket.on('close', () => {
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)
        resolve({ status, id: /x-geofence-decision-id: ([0-9a-f-]+)/i.exec(text)?.[1] })
      })
      socket.on('error', () => {})
      socket.end(raw)
    })
  }
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port: Number(port), path: a.path ?? '/anthropic/v1/messages', method: a.method ?? 'POST', headers: a.headers, agent: false }, (res) => {
      res.resume()
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, id: res.headers['x-geofence-decision-id'] as string | undefined }) })
    })
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve({ status: res.statusCode ?? 101, id: undefined }) })
    req.on('error', () => { resolve({ status: 0, id: undefined }) })
    req.end(a.body)
  })
}

async function run (t: Test, policyDefault: 'block' | 'allow', attempts: readonly Attempt[]): Promise<void> {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  // Every dialect in front of the same fake; Claude is denied on every upstream.
  const gw = await startTestGateway(baseConfig(upstream.url)
    .replace('default: block', `default: ${policyDefault}`)
    .replace('upstreams:\n', `upstreams:
  bedrock: { url: "${upstream.url}", dialect: bedrock }
  vertex: { url: "${upstream.url}", dialect: vertex }
  gemini: { url: "${upstream.url}", dialect: gemini }
  azure: { url: "${upstream.url}", dialect: azure-openai, model_aliases: { prod-claude: claude-sonnet-4-5 } }
`)
    .replace('      upstreams: [anthropic]\n      models: ["claude-*"]', '      models: ["claude-*"]'))
  t.teardown(gw.close)
  for (const a of attempts) {
    const before = upstream.calls.length
    const { status, id } = await attempt(gw.url, a)
    const reached = upstream.calls.slice(before).some((c) => /claude|messages|batches/i.test(c.body.toString()) || /claude|messages|batches|%2F/i.test(c.url))
    t.notOk(reached, `${a.name}: never reaches the upstream`)
    t.ok(status === 0 || (status >= 400 && status < 500), `${a.name}: refused (${status === 0 ? 'connection closed' : status})`)
    if (id !== undefined) {
      await new Promise((resolve) => setTimeout(resolve, 5))
      const line = gw.decisions().find((d) => d['decision_id'] === id)
      t.match(line, { action: 'block', reason: /./ }, `${a.name}: logged with a reason`)
    }
  }
}

t.test(`${ATTEMPTS.length} attempts to reach Claude from Hong Kong, policy.default block`, async (t) => {
  t.ok(ATTEMPTS.length >= 40)
  await run(t, 'block', ATTEMPTS)
})

t.test('the same tricks are refused even under policy.default allow', async (t) => {
  // A trick that only made the model unreadable would pass here: these are refused on their own
  // (an endpoint no dialect lists, another method on a listed one: policy.unknown_endpoint).
  await run(t, 'allow', ATTEMPTS)
})
