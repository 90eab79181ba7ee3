// The request target is parsed once, by the gateway, strictly: a fragment, a path or query that
// does not decode, a semicolon in the query, an encoded slash that makes dot segments, and a
// model in the query of an endpoint that reads it elsewhere are refused (400 in the dialect's
// shape, with a decision line); what is forwarded is built from the parsed parameters.
import t from 'tap'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { baseConfig, startTestGateway } from '../support/gateway.js'
import { send } from '../support/http.js'

const UNITED_STATES = '8.8.8.8'

t.test('the request target, trick by trick', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(baseConfig(upstream.url, { policy: '  unknown_model: allow' }).replace('upstreams:\n', `upstreams:
  gemini: { url: "${upstream.url}", dialect: gemini, strip_client_credentials: true, headers: { x-goog-api-key: held } }
  bedrock: { url: "${upstream.url}", dialect: bedrock }
`).replace('  rules:\n', `  rules:
    - { name: open, upstreams: [gemini, bedrock], deny: [], action: block }
`))
  t.teardown(gw.close)
  const claude = JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 1, messages: [] })
  const refused: Array<[string, string, RegExp]> = [
    ['a fragment', '/anthropic/v1/messages#/v1/other', /the request target is refused: it contains a fragment/],
    ['a fragment after the query', '/anthropic/v1/messages?beta=true#x', /fragment/],
    ['a path that does not decode', '/anthropic/v1/%ZZ', /the request path is refused: it contains a percent sign that is not a valid escape/],
    ['a mount that does not decode', '/anthrop%ZZic/v1/messages', /the request target cannot be read/],
    ['a query that does not decode', '/anthropic/v1/messages?x=%ZZ', /the request query is refused: a percent sign in it is not a valid escape/],
    ['a query name that does not decode', '/anthropic/v1/messages?%E0%A4%A=1', /not a valid escape/],
    ['a control character in the query', '/anthropic/v1/messages?x=%00', /the request query is refused: it contains control characters/],
    ['a semicolon in the query', '/anthropic/v1/messages?beta=true;model=claude-opus-4-1', /semicolon/],
    ['a model in the query of a body endpoint', '/anthropic/v1/messages?model=claude-opus-4-1', /the request query names a model/],
    ['...whatever its case', '/anthropic/v1/messages?MODEL=x', /the request query names a model/],
    ['...even encoded', '/anthropic/v1/messages?%6Dodel=x', /the request query names a model/],
    ['an encoded slash that makes dot segments in a Bedrock id', '/bedrock/model/x%2F..%2F..%2Fmodel%2Fanthropic.claude-opus-4-1-v1%3A0/invoke', /an encoded slash in it makes an empty or dot segment/],
  ]
  for (const [name, path, reason] of refused) {
    const before = upstream.calls.length
    const res = await send(`${gw.url}${path}`, { body: claude, headers: { 'content-type': 'application/json', 'x-forwarded-for': UNITED_STATES } })
    t.equal(res.status, 400, `${name}: 400`)
    t.equal(upstream.calls.length, before, `${name}: nothing reached the upstream`)
    const line = gw.decisions().find((l) => l['decision_id'] === res.headers['x-geofence-decision-id'])
    t.match(line, { action: 'block', status: 400, reason }, `${name}: a decision line with the reason`)
    if (path.startsWith('/anthropic/')) t.match(JSON.parse(res.body), { type: 'error', error: { type: 'invalid_request_error', message: reason } }, `${name}: Anthropic's shape`)
  }

  t.test('what is forwarded is built from the parsed query', async (t) => {
    const gemini = JSON.stringify({ contents: [{ parts: [{ text: 'hi' }] }] })
    for (const [query, forwarded] of [
      ['?key=client-key', ''],
      ['?%6Bey=client-key', ''],
      ['?alt=sse&key=client-key&x=a%20b', '?alt=sse&x=a%20b'],
      ['?alt=sse', '?alt=sse'],
    ] as const) {
      const res = await send(`${gw.url}/gemini/v1beta/models/gemini-2.5-flash:generateContent${query}`, { body: gemini, headers: { 'content-type': 'application/json', 'x-forwarded-for': UNITED_STATES } })
      t.equal(res.status, 200, query)
      t.equal(upstream.calls.at(-1)?.url, `/v1beta/models/gemini-2.5-flash:generateContent${forwarded}`, `${query}: forwarded as ${forwarded === '' ? 'no query' : forwarded}`)
      t.equal(upstream.calls.at(-1)?.headers['x-goog-api-key'], 'held')
    }
  })
})
