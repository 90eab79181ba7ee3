// Stage models, on its own: every model a request names, its canonical id, where a route
// would rewrite it (or why it cannot), and the bodies that are refused instead of read.
import { gzipSync } from 'node:zlib'
import t from 'tap'
import { readModels } from '../../src/pipeline/models.js'
import { UNITED_STATES, begun, refusalStatus, testRuntime } from '../support/runtime.js'

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v))

t.test('what each request names, row by row', async (t) => {
  const runtime = await testRuntime()
  const rows: Array<{ name: string, method?: string, url: string, body?: Buffer, headers?: Record<string, string>, want: Record<string, unknown> }> = [
    { name: 'a JSON body', url: '/anthropic/v1/messages', body: json({ model: 'claude-sonnet-4-5', max_tokens: 1 }), want: { models: [{ written: 'claude-sonnet-4-5', canonical: 'claude-sonnet-4-5' }], rewrite: { kind: 'member' }, batch: false } },
    { name: 'a gzip body is read decoded', url: '/anthropic/v1/messages', body: gzipSync(json({ model: 'claude-opus-4-1' })), headers: { 'content-encoding': 'gzip' }, want: { models: [{ written: 'claude-opus-4-1' }], decoded: true, body: json({ model: 'claude-opus-4-1' }), contentType: 'application/json' } },
    { name: 'a batch names each distinct model once', url: '/anthropic/v1/messages/batches', body: json({ requests: [{ custom_id: 'a', params: { model: 'claude-haiku-4-5' } }, { custom_id: 'b', params: { model: 'claude-haiku-4-5' } }, { custom_id: 'c', params: { model: 'claude-opus-4-1' } }] }), want: { models: [{ written: 'claude-haiku-4-5' }, { written: 'claude-opus-4-1' }], batch: true, rewrite: { kind: 'refused', why: 'a batch' } } },
    { name: 'a path model (Gemini)', url: '/gemini/v1beta/models/gemini-2.5-pro:generateContent', body: json({ contents: [] }), want: { models: [{ written: 'gemini-2.5-pro', canonical: 'gemini-2.5-pro' }], rewrite: { kind: 'path', suffix: ':generateContent' } } },
    { name: 'a body agreeing with the path cannot be routed', url: '/gemini/v1beta/models/gemini-2.5-pro:generateContent', body: json({ model: 'models/gemini-2.5-pro' }), want: { rewrite: { kind: 'refused', why: 'a request naming its model in both path and body' } } },
    { name: 'a Bedrock profile id is canonical', url: '/bedrock/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse', body: json({ messages: [] }), want: { models: [{ written: 'us.anthropic.claude-sonnet-4-20250514-v1:0', canonical: 'claude-sonnet-4-20250514' }] } },
    { name: 'an Azure deployment through model_aliases', url: '/azure/openai/deployments/prod-4o/chat/completions', body: json({ messages: [] }), want: { models: [{ written: 'prod-4o', canonical: 'gpt-4o', raw: 'gpt-4o' }] } },
    { name: 'an unmapped Azure deployment cannot be seen', url: '/azure/openai/deployments/other/chat/completions', body: json({}), want: { models: [{ written: 'other', canonical: null, unseen: /model_aliases/ }] } },
    { name: 'fallbacks and tools name models too: every one is decided, none rewritten', url: '/anthropic/v1/messages', body: json({ model: 'claude-haiku-4-5', fallbacks: [{ model: 'claude-opus-4-1' }], tools: [{ type: 'advisor_20260301', name: 'advisor', model: 'claude-sonnet-4-5' }] }), want: { models: [{ written: 'claude-haiku-4-5' }, { written: 'claude-opus-4-1' }, { written: 'claude-sonnet-4-5' }], batch: true, rewrite: { kind: 'refused', why: 'a request that names a model in more than one place' } } },
    { name: 'the same model named twice is one model, still not rewritten', url: '/openai/v1/chat/completions', body: json({ model: 'gpt-5', fallbacks: ['gpt-5'] }), want: { models: [{ written: 'gpt-5' }], batch: false, rewrite: { kind: 'refused' } } },
    { name: 'an image_generation tool without a model runs gpt-image-1', url: '/openai/v1/responses', body: json({ model: 'gpt-5', tools: [{ type: 'image_generation' }] }), want: { models: [{ written: 'gpt-5' }, { written: 'gpt-image-1' }] } },
    { name: 'fallbacks "default" is a model the gateway cannot see', url: '/anthropic/v1/messages', body: json({ model: 'claude-haiku-4-5', fallbacks: 'default' }), want: { models: [{ written: 'claude-haiku-4-5' }, { written: 'default', canonical: null, unseen: /server chooses/ }] } },
    { name: 'a multipart form is re-encoded under a new boundary', url: '/openai/v1/audio/transcriptions', headers: { 'content-type': 'multipart/form-data; boundary=b' }, body: Buffer.from('--b\r\ncontent-disposition: form-data; name=model\r\n\r\nwhisper-1\r\n--b--\r\n'), want: { models: [{ written: 'whisper-1' }], contentType: /^multipart\/form-data; boundary=geofence-/, body: /Content-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n/ } },
    { name: 'a model-less endpoint', method: 'GET', url: '/anthropic/v1/models', want: { models: [], rewrite: { kind: 'refused' } } },
    { name: 'an endpoint whose model cannot be seen', url: '/openai/v1/batches', body: json({ input_file_id: 'f' }), want: { models: [], unseen: /uploaded/ } },
    { name: 'the Realtime query', method: 'GET', url: '/openai/v1/realtime?model=gpt-realtime', want: { models: [{ written: 'gpt-realtime' }], rewrite: { kind: 'query', param: 'model' } } },
    { name: 'a Realtime call without ?model=', method: 'GET', url: '/openai/v1/realtime?call_id=rtc_1', want: { models: [], unseen: /./ } },
  ]
  for (const row of rows) {
    const { state, head } = begun(runtime, row.method ?? 'POST', row.url, UNITED_STATES, row.headers)
    const endpoint = state.endpoint
    if (endpoint === null) throw new Error(`${row.url} is mounted`)
    t.match(await readModels({ endpoint, method: head.method, headers: head.headers, body: row.body }), row.want, row.name)
  }
})

t.test('bodies that cannot be read with certainty are refused, row by row', async (t) => {
  const runtime = await testRuntime()
  const rows: Array<[string, string, Buffer | undefined, Record<string, string>, number]> = [
    ['no body', '/anthropic/v1/messages', undefined, {}, 400],
    ['not JSON', '/anthropic/v1/messages', Buffer.from('model=claude'), {}, 400],
    ['two model keys', '/anthropic/v1/messages', Buffer.from('{"model":"claude-haiku-4-5","model":"claude-opus-4-1"}'), {}, 400],
    ['a model that is not a string', '/anthropic/v1/messages', json({ model: 7 }), {}, 400],
    ['a model with a control character', '/anthropic/v1/messages', json({ model: 'claude\u0000' }), {}, 400],
    ['an encoding the gateway does not decode', '/anthropic/v1/messages', json({ model: 'claude-opus-4-1' }), { 'content-encoding': 'zstd' }, 415],
    ['a gzip body that does not decode', '/anthropic/v1/messages', Buffer.from('not gzip'), { 'content-encoding': 'gzip' }, 400],
    ['path and body disagree', '/gemini/v1beta/models/gemini-2.5-flash:generateContent', json({ model: 'models/gemini-2.5-pro' }), {}, 400],
    ['two ?model=', '/openai/v1/realtime?model=gpt-4o-mini&model=gpt-realtime', undefined, {}, 400],
    ['an empty batch', '/anthropic/v1/messages/batches', json({ requests: [] }), {}, 400],
    ['a key that Go folds to model', '/openai/v1/chat/completions', Buffer.from('{"model":"gpt-5","MODEL":"gpt-4o"}'), {}, 400],
    ['a repeated key nested deeper than a stack goes', '/openai/v1/chat/completions', Buffer.from(`{"model":"gpt-5","a":${'['.repeat(100000)}{"b":1,"b":2}${']'.repeat(100000)}}`), {}, 400],
    ['a repeated key anywhere', '/openai/v1/chat/completions', Buffer.from('{"model":"gpt-5","metadata":{"a":"1","a":"2"}}'), {}, 400],
    ['a tool model that is not a string', '/openai/v1/responses', json({ model: 'gpt-5', tools: [{ type: 'image_generation', model: 7 }] }), {}, 400],
    ['a Gemini batch naming another model', '/gemini/v1beta/models/gemini-2.5-flash:batchGenerateContent', json({ batch: { model: 'models/gemini-2.5-pro' } }), {}, 400],
    ['a multipart part with a Content-Transfer-Encoding', '/openai/v1/audio/transcriptions', Buffer.from('--b\r\ncontent-disposition: form-data; name=model\r\ncontent-transfer-encoding: 8bit\r\n\r\nwhisper-1\r\n--b--\r\n'), { 'content-type': 'multipart/form-data; boundary=b' }, 400],
  ]
  for (const [name, url, body, headers, status] of rows) {
    const method = url.includes('realtime') ? 'GET' : 'POST'
    const { state, head } = begun(runtime, method, url, UNITED_STATES, headers)
    const endpoint = state.endpoint
    if (endpoint === null) throw new Error(`${url} is mounted`)
    t.equal(await refusalStatus(async () => readModels({ endpoint, method, headers: head.headers, body })), status, name)
  }
})
