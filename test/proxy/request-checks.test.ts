// What the gateway refuses to guess about, and what it forwards exactly as it checked it.
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib'
import http from 'node:http'
import t from 'tap'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { baseConfig, startTestGateway } from '../support/gateway.js'
import { send } from '../support/http.js'

const HONG_KONG = '203.198.0.1'
const UNITED_STATES = '8.8.8.8'

t.test('request checks', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(baseConfig(upstream.url))
  t.teardown(gw.close)
  const post = async (path: string, body: string | Buffer, headers: Record<string, string> = {}): ReturnType<typeof send> =>
    send(`${gw.url}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-forwarded-for': UNITED_STATES, ...headers } })

  t.test('a body that is not JSON gets a 400 in the Anthropic shape', async (t) => {
    const before = upstream.calls.length
    const res = await post('/anthropic/v1/messages', 'model=claude-sonnet-4-5')
    t.equal(res.status, 400)
    t.same(res.json(), {
      type: 'error',
      error: { type: 'invalid_request_error', message: 'the request body is not valid JSON in UTF-8' },
      request_id: res.headers['x-geofence-decision-id'],
    })
    t.equal(upstream.calls.length, before)
    t.match(gw.decisions().at(-1), { action: 'block', status: 400, model: null, reason: 'the request body is not valid JSON in UTF-8' })
  })

  t.test('no model, a non-string model, an empty model, a non-object body: 400', async (t) => {
    for (const [body, message] of [
      ['{"messages":[]}', 'the request body has no "model"'],
      ['{"model":["claude-sonnet-4-5"]}', '"model" must be a non-empty string'],
      ['{"model":null}', '"model" must be a non-empty string'],
      ['{"model":""}', '"model" must be a non-empty string'],
      [JSON.stringify({ model: 'claude-'.repeat(40) }), '"model" is not a model id (over 256 characters, or control characters)'],
      ['{"model":"claude-sonnet-4-5\\n"}', '"model" is not a model id (over 256 characters, or control characters)'],
      ['["claude-sonnet-4-5"]', 'the request body must be a JSON object'],
      ['', 'the request has no body; a JSON body with a "model" is required'],
    ] as const) {
      const res = await post('/openai/v1/chat/completions', body)
      t.equal(res.status, 400, body)
      t.same(res.json(), { error: { message, type: 'invalid_request_error', param: null, code: null } }, body)
    }
  })

  t.test('invalid UTF-8 is refused, not repaired', async (t) => {
    const res = await post('/anthropic/v1/messages', Buffer.concat([Buffer.from('{"model":"claude-'), Buffer.from([0xff]), Buffer.from('"}')]))
    t.equal(res.status, 400)
  })

  t.test('a body is read as the UTF-8 it is: any script passes as sent; a BOM, an overlong form, a surrogate are refused', async (t) => {
    // A prompt in Chinese and a model id with a non-ASCII character, as raw UTF-8 bytes.
    const prompt = Buffer.from(JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 1, messages: [{ role: 'user', content: '香港的天氣怎麼樣？ ſ K é' }] }))
    const before = upstream.calls.length
    const ok = await post('/anthropic/v1/messages', prompt)
    t.equal(ok.status, 200)
    t.equal(upstream.calls.length, before + 1)
    t.ok(upstream.calls.at(-1)?.body.equals(prompt), 'forwarded byte for byte')
    const blocked = await post('/anthropic/v1/messages', Buffer.from('{"model":"claude-sonnet-4-5","max_tokens":1,"messages":[{"role":"user","content":"香港"}]}'), { 'x-forwarded-for': HONG_KONG })
    t.equal(blocked.status, 451)
    const named = await post('/openai/v1/chat/completions', Buffer.from('{"model":"gpt-4o-é","messages":[]}'))
    t.equal(named.status, 200)
    t.match(gw.decisions().at(-1), { model: 'gpt-4o-é' }, 'a model is logged as the UTF-8 it was written in')
    for (const [name, bytes] of [
      ['a byte order mark', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"model":"claude-sonnet-4-5"}')])],
      ['an overlong form of "/"', Buffer.concat([Buffer.from('{"model":"claude-sonnet-4-5","x":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')])],
      ['a UTF-16 surrogate encoded in UTF-8', Buffer.concat([Buffer.from('{"model":"claude-sonnet-4-5","x":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')])],
      ['a byte above 0x7f outside a string', Buffer.from('{"model":"claude-sonnet-4-5","x":\u00e9}', 'utf8')],
    ] as const) {
      const res = await post('/anthropic/v1/messages', bytes)
      t.equal(res.status, 400, name)
      t.equal(res.json().error.message, 'the request body is not valid JSON in UTF-8', name)
    }
  })

  t.test('the model is read whatever the Content-Type says, or when there is none', async (t) => {
    const body = JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 1, messages: [] })
    for (const type of [undefined, 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const headers: Record<string, string> = { 'x-forwarded-for': HONG_KONG }
      if (type !== undefined) headers['content-type'] = type
      const res = await send(`${gw.url}/anthropic/v1/messages`, { method: 'POST', body, headers })
      t.equal(res.status, 451, `Content-Type ${String(type)}`)
    }
  })

  t.test('a body over server.body_limit gets a 413 request_too_large', async (t) => {
    const before = upstream.calls.length
    const big = JSON.stringify({ model: 'claude-sonnet-4-5', pad: 'x'.repeat(1024 * 1024) })
    const res = await post('/anthropic/v1/messages', big)
    t.equal(res.status, 413)
    t.equal(res.json().error.type, 'request_too_large')
    t.equal(upstream.calls.length, before)
  })

  t.test('a compressed body is decided on what it decodes to, and sent as it was decoded', async (t) => {
    const json = JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 1, messages: [] })
    for (const [coding, encode] of [['gzip', gzipSync], ['deflate', deflateSync], ['br', brotliCompressSync]] as const) {
      const packed = encode(Buffer.from(json))
      const blocked = await post('/anthropic/v1/messages', packed, { 'content-encoding': coding, 'x-forwarded-for': HONG_KONG })
      t.equal(blocked.status, 451, `${coding}: a blocked model inside is found`)
      const allowed = await post('/anthropic/v1/messages', packed, { 'content-encoding': coding })
      t.equal(allowed.status, 200, `${coding}: allowed`)
      const call = upstream.calls.at(-1)
      t.equal(call?.body.toString(), json, `${coding}: the decoded bytes are forwarded, the ones that were checked`)
      t.equal(call?.headers['content-encoding'], undefined, `${coding}: without a Content-Encoding`)
    }
    const twice = gzipSync(brotliCompressSync(Buffer.from(json)))
    t.equal((await post('/anthropic/v1/messages', twice, { 'content-encoding': 'br, gzip', 'x-forwarded-for': HONG_KONG })).status, 451, 'stacked codings are undone in reverse order')
  })

  t.test('an encoding the gateway does not decode gets a 415; a body that does not decode, a 400; a bomb, a 413', async (t) => {
    const res = await post('/openai/v1/chat/completions', Buffer.from('{"model":"gpt-4o"}'), { 'content-encoding': 'zstd' })
    t.equal(res.status, 415)
    t.equal(res.json().error.code, 'unsupported_content_encoding')
    const bad = await post('/openai/v1/chat/completions', Buffer.from('not gzip at all'), { 'content-encoding': 'gzip' })
    t.equal(bad.status, 400)
    t.match(bad.json().error.message, /does not decode as gzip/)
    const bomb = gzipSync(Buffer.concat([Buffer.from('{"model":"gpt-4o","pad":"'), Buffer.alloc(3 * 1024 * 1024, 0x61), Buffer.from('"}')]))
    t.ok(bomb.length < 64 * 1024, 'a few KiB on the wire')
    const big = await post('/openai/v1/chat/completions', bomb, { 'content-encoding': 'gzip' })
    t.equal(big.status, 413, 'expands past body_limit (1 MiB here)')
  })

  t.test('paths servers read differently are refused; trailing slash and case are still checked', async (t) => {
    const body = JSON.stringify({ model: 'claude-sonnet-4-5' })
    for (const path of ['/anthropic/v1//messages', '/anthropic/v1/./messages', '/anthropic/v1/x/../messages', '/anthropic/v1%2Fmessages', '/anthropic/v1/messages%00', '/anthropic/v1\\messages']) {
      const res = await post(path, body, { 'x-forwarded-for': HONG_KONG })
      t.equal(res.status, 400, path)
      t.match(res.json().error.message, /the request path is refused/, path)
    }
    for (const path of ['/anthropic/v1/messages/', '/anthropic/V1/Messages']) {
      const res = await post(path, body, { 'x-forwarded-for': HONG_KONG })
      t.equal(res.status, 451, path)
    }
  })

  t.test('the upstream receives the exact bytes checked, the path and the query string', async (t) => {
    const body = Buffer.from('{ "model" :"claude-sonnet-4-5",\n  "max_tokens": 1, "messages": [], "note": "\\u00e9 caf\u00e9" }  \n')
    const res = await post('/anthropic/v1/messages?beta=true&x=%2F', body, { forwarded: `for=${UNITED_STATES}`, 'x-real-ip': '10.0.0.1' })
    t.equal(res.status, 200)
    const call = upstream.calls.at(-1)
    t.equal(call?.url, '/v1/messages?beta=true&x=%2F')
    t.ok(call?.body.equals(body), 'byte for byte')
    t.equal(call?.headers['content-length'], String(body.length))
    for (const h of ['x-forwarded-for', 'forwarded', 'x-real-ip']) t.equal(call?.headers[h], undefined, `${h} is not sent on`)
  })

  t.test('a chunked request body is read whole and forwarded whole', async (t) => {
    const res = await new Promise<{ status: number }>((resolve, reject) => {
      const req = http.request(`${gw.url}/anthropic/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': UNITED_STATES } }, (r) => { r.resume(); r.on('end', () => { resolve({ status: r.statusCode ?? 0 }) }) })
      req.on('error', reject)
      req.write('{"model":"claude-')
      setTimeout(() => { req.end('sonnet-4-5","max_tokens":1,"messages":[]}') }, 20)
    })
    t.equal(res.status, 200)
    t.equal(upstream.calls.at(-1)?.body.toString(), '{"model":"claude-sonnet-4-5","max_tokens":1,"messages":[]}')
  })

  t.test('an endpoint that names no model falls under policy.default', async (t) => {
    const res = await send(`${gw.url}/anthropic/v1/models`, { headers: { 'x-forwarded-for': UNITED_STATES } })
    t.equal(res.status, 451)
    t.match(gw.decisions().at(-1), { action: 'block', rule: null, model: null, reason: /names no model: policy.default is block/ })
  })

  t.test('every response carries the decision id, 404 included', async (t) => {
    const res = await send(`${gw.url}/nowhere/v1/messages`)
    t.equal(res.status, 404)
    t.match(res.headers['x-geofence-decision-id'], /^[0-9a-f-]{36}$/)
    t.equal(res.json().error.decision_id, res.headers['x-geofence-decision-id'])
    t.match(gw.decisions().at(-1), { upstream: null, action: 'block', status: 404 })
  })
})

t.test('policy.default allow lets model-less endpoints through; unknown_location allow lets unlocated callers through', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const yaml = baseConfig(upstream.url).replace('default: block', 'default: allow').replace('unknown_location: block', 'unknown_location: allow')
  const gw = await startTestGateway(yaml)
  t.teardown(gw.close)
  const models = await send(`${gw.url}/anthropic/v1/models?limit=5`, { headers: { 'x-forwarded-for': HONG_KONG } })
  t.equal(models.status, 200)
  t.equal(upstream.calls.at(-1)?.url, '/v1/models?limit=5')
  const local = await send(`${gw.url}/anthropic/v1/messages`, { method: 'POST', body: '{"model":"claude-sonnet-4-5"}', headers: { 'content-type': 'application/json' } })
  t.equal(local.status, 200, 'a loopback caller (unknown location) passes under unknown_location: allow')
  t.match(gw.decisions().at(-1), { country: null, action: 'allow', reason: /unknown_location is allow/ })
})

t.test('an unreachable upstream is a 502 in the dialect shape', async (t) => {
  const upstream = await startFakeUpstream()
  const deadUrl = upstream.url
  await upstream.close()
  const gw = await startTestGateway(baseConfig(deadUrl))
  t.teardown(gw.close)
  const res = await send(`${gw.url}/anthropic/v1/messages`, { method: 'POST', body: '{"model":"claude-sonnet-4-5"}', headers: { 'content-type': 'application/json', 'x-forwarded-for': UNITED_STATES } })
  t.equal(res.status, 502)
  t.same(res.json(), { type: 'error', error: { type: 'api_error', message: 'the upstream could not be reached' }, request_id: res.headers['x-geofence-decision-id'] })
  t.match(gw.decisions().at(-1), { action: 'allow', status: 502 })
  const oa = await send(`${gw.url}/openai/v1/chat/completions`, { method: 'POST', body: '{"model":"gpt-4o"}', headers: { 'content-type': 'application/json', 'x-forwarded-for': UNITED_STATES } })
  t.equal(oa.status, 502)
  t.same(oa.json(), { error: { message: 'the upstream could not be reached', type: 'server_error', param: null, code: 'bad_gateway' } })
})
