// Stage plan, on its own: exactly what an allowed or routed request sends upstream (target,
// path, query, headers, body), built in one place for every transport.
import t from 'tap'
import { decide } from '../../src/pipeline/decision.js'
import { readModels } from '../../src/pipeline/models.js'
import { plan } from '../../src/pipeline/plan.js'
import { MAINLAND_CHINA, UNITED_STATES, begun, testRuntime } from '../support/runtime.js'
import type { Runtime } from '../../src/runtime.js'

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v))

async function planFor (runtime: Runtime, method: string, url: string, ip: string, headers: Record<string, string>, body?: Buffer): Promise<Awaited<ReturnType<typeof plan>>> {
  const { state, head } = begun(runtime, method, url, ip, headers)
  const endpoint = state.endpoint
  if (endpoint === null) throw new Error(`${url} is mounted`)
  const read = await readModels({ endpoint, method, headers: head.headers, body })
  const { decision } = decide({ runtime, upstream: endpoint.upstream, client: null, location: state.location, locationProblem: undefined }, endpoint, read)
  return plan({ runtime, endpoint, method, headers: head.headers, read, decision })
}

t.test('what is sent, row by row', async (t) => {
  const runtime = await testRuntime()
  const rows: Array<{ name: string, method?: string, url: string, ip?: string, headers?: Record<string, string>, body?: Buffer, want: Record<string, unknown>, body_is?: unknown }> = [
    {
      name: 'allowed: the path, query and body as sent, below the target URL',
      url: '/openai/v1/chat/completions?x=1',
      body: json({ model: 'gpt-5' }),
      want: { target: { name: 'openai' }, path: '/v1/chat/completions', query: '?x=1', url: 'http://127.0.0.1:1/base/v1/chat/completions?x=1', routedModel: null },
      body_is: { model: 'gpt-5' },
    },
    {
      name: 'routed: the JSON member rewritten, to the target',
      url: '/openai/v1/chat/completions',
      ip: MAINLAND_CHINA,
      body: json({ model: 'gpt-4o-mini', messages: [] }),
      want: { target: { name: 'sovereign' }, url: 'http://127.0.0.1:2/v1/chat/completions', routedModel: 'local-small' },
      body_is: { model: 'local-small', messages: [] },
    },
    {
      name: 'routed Realtime: the query parameter rewritten, the rest kept',
      method: 'GET',
      url: '/openai/v1/realtime?model=gpt-4o-mini&x=1',
      ip: MAINLAND_CHINA,
      want: { target: { name: 'sovereign' }, query: '?model=local-small&x=1', routedModel: 'local-small' },
    },
    {
      name: 'a held credential replaces the client\'s; cookies go too',
      url: '/sovereign/v1/chat/completions',
      headers: { authorization: 'Bearer client-key', cookie: 'a=b', 'x-api-key': 'k' },
      body: json({ model: 'local-small' }),
      want: { headers: { authorization: 'Bearer held-key', cookie: undefined, 'x-api-key': undefined } },
    },
    {
      name: 'hop-by-hop, forwarding and framing headers never go on',
      url: '/openai/v1/chat/completions',
      headers: { connection: 'keep-alive, x-secret-hop', 'x-secret-hop': '1', te: 'trailers', 'x-real-ip': '10.0.0.1', forwarded: 'for=10.0.0.1', host: 'gateway', 'content-length': '20', 'x-kept': 'yes' },
      body: json({ model: 'gpt-5' }),
      want: { headers: { connection: undefined, 'x-secret-hop': undefined, te: undefined, 'x-forwarded-for': undefined, 'x-real-ip': undefined, forwarded: undefined, host: undefined, 'content-length': undefined, 'x-kept': 'yes' } },
    },
    {
      name: 'a Gemini ?key= is dropped where the gateway holds the credential, even as the only parameter',
      url: '/gemini/v1beta/models/gemini-2.5-pro:generateContent?key=client-key',
      body: json({ contents: [] }),
      want: { query: '', url: 'http://127.0.0.1:3/v1beta/models/gemini-2.5-pro:generateContent' },
    },
    {
      name: '...and only it, among others',
      url: '/gemini/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse&key=client-key',
      body: json({ contents: [] }),
      want: { query: '?alt=sse' },
    },
  ]
  for (const row of rows) {
    const p = await planFor(runtime, row.method ?? 'POST', row.url, row.ip ?? UNITED_STATES, { 'content-type': 'application/json', ...row.headers }, row.body)
    t.match(p, row.want, row.name)
    for (const [name, value] of Object.entries((row.want['headers'] ?? {}) as Record<string, unknown>)) {
      if (value === undefined) t.notOk(name in p.headers, `${row.name}: no ${name}`)
    }
    if (row.body_is !== undefined) t.same(JSON.parse(String(p.body)), row.body_is, `${row.name}: body`)
  }
})

t.test('a body that came compressed is sent decoded, without its Content-Encoding, routed or not', async (t) => {
  const { gzipSync } = await import('node:zlib')
  const runtime = await testRuntime()
  const p = await planFor(runtime, 'POST', '/openai/v1/chat/completions', MAINLAND_CHINA, { 'content-type': 'application/json', 'content-encoding': 'gzip' }, gzipSync(json({ model: 'gpt-4o-mini' })))
  t.same(JSON.parse(String(p.body)), { model: 'local-small' })
  t.notOk('content-encoding' in p.headers)
  const allowed = await planFor(runtime, 'POST', '/openai/v1/chat/completions', UNITED_STATES, { 'content-type': 'application/json', 'content-encoding': 'gzip' }, gzipSync(json({ model: 'gpt-5' })))
  t.same(JSON.parse(String(allowed.body)), { model: 'gpt-5' }, 'an allowed body goes as it was read: decoded')
  t.notOk('content-encoding' in allowed.headers)
})
