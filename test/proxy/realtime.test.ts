// OpenAI Realtime over WebSocket: the upgrade is decided like any request before anything is
// proxied (the model from ?model=), refused with an HTTP answer in OpenAI's shape, or tunnelled
// frame by frame. The openai SDK's OpenAIRealtimeWS is the client where it can be (it always
// dials wss://: a plain connection is handed to it, as the README shows); `ws`, the library it
// wraps, where a test needs the raw HTTP answer.
import { once } from 'node:events'
import net from 'node:net'
import t from 'tap'
import OpenAI from 'openai'
import { OpenAIRealtimeWS } from 'openai/realtime/ws'
import WebSocket from 'ws'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { baseConfig, startTestGateway } from '../support/gateway.js'

const MAINLAND_CHINA = '114.114.114.114'
const UNITED_STATES = '8.8.8.8'

t.test('realtime over WebSocket', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const sovereign = await startFakeUpstream()
  t.teardown(sovereign.close)
  const gw = await startTestGateway(baseConfig(upstream.url, {
    rules: `    - name: realtime-routed
      upstreams: [openai]
      models: ["gpt-realtime-mini*"]
      deny: [CN]
      action: { route: { upstream: sovereign, model: local-realtime } }
    - name: openai-frontier
      upstreams: [openai]
      models: ["gpt-*"]
      deny: [group:restricted]
      action: block
    - { name: sovereign, upstreams: [sovereign], deny: [], action: block }`,
  }).replace('upstreams:\n', `upstreams:
  sovereign: { url: "${sovereign.url}", dialect: openai-compatible }
  azure: { url: "${upstream.url}", dialect: azure-openai, model_aliases: { voice-desk: gpt-realtime } }
`).replace('      upstreams: [openai]\n      models: ["gpt-*"]', '      upstreams: [openai, azure]\n      models: ["gpt-*"]'))
  t.teardown(gw.close)
  const realtime = (query: string, ip: string): { ws: WebSocket, messages: () => Promise<Record<string, any>> } => {
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/openai/v1/realtime${query}`, { headers: { 'x-forwarded-for': ip, authorization: 'Bearer sk-realtime-never-logged' } })
    const queue: Array<Record<string, any>> = []
    const waiting: Array<(m: Record<string, any>) => void> = []
    ws.on('message', (data: Buffer) => {
      const m = JSON.parse(data.toString()) as Record<string, any>
      const w = waiting.shift()
      if (w === undefined) queue.push(m)
      else w(m)
    })
    return { ws, messages: async () => queue.shift() ?? new Promise((resolve) => { waiting.push(resolve) }) }
  }

  t.test('an allowed session talks to the upstream through the tunnel', async (t) => {
    const { ws: rt, messages } = realtime('?model=gpt-realtime', UNITED_STATES)
    const created = await messages()
    t.match(created, { type: 'session.created', session: { model: 'gpt-realtime' } })
    rt.send(JSON.stringify({ type: 'response.create' }))
    t.match(await messages(), { type: 'response.done', response: { metadata: { echo: 'response.create' } } }, 'frames pass both ways')
    t.equal(upstream.calls.at(-1)?.url, '/v1/realtime?model=gpt-realtime')
    t.notOk(upstream.calls.at(-1)?.headers['x-forwarded-for'], 'forwarding headers are not sent on')
    rt.close()
    t.match(gw.decisions().at(-1), { method: 'GET', path: '/openai/v1/realtime', model: 'gpt-realtime', action: 'allow', status: 101, rule: 'openai-frontier' })
    t.notMatch(gw.rawLogs(), /sk-realtime-never-logged/)
  })

  t.test('the openai SDK\'s OpenAIRealtimeWS, over a plain connection to the sidecar', async (t) => {
    const { port } = new URL(gw.url)
    const client = new OpenAI({ apiKey: 'sk-realtime-never-logged', baseURL: `${gw.url}/openai/v1` })
    const rt = new OpenAIRealtimeWS({
      model: 'gpt-realtime',
      options: { headers: { 'x-forwarded-for': UNITED_STATES }, createConnection: () => net.connect(Number(port), '127.0.0.1') },
    }, client)
    const created = await new Promise<{ session: { model: string } }>((resolve) => { rt.on('session.created', resolve as never) })
    t.equal(created.session.model, 'gpt-realtime')
    const done = new Promise<{ response: { metadata: { echo: string } } }>((resolve) => { rt.on('response.done', resolve as never) })
    rt.send({ type: 'response.create' })
    t.equal((await done).response.metadata.echo, 'response.create')
    rt.close()
    t.match(gw.decisions().at(-1), { model: 'gpt-realtime', action: 'allow', status: 101 })

    const blocked = new OpenAIRealtimeWS({
      model: 'gpt-realtime',
      options: { headers: { 'x-forwarded-for': MAINLAND_CHINA }, createConnection: () => net.connect(Number(port), '127.0.0.1') },
    }, client)
    const error = await new Promise<Error>((resolve) => { blocked.on('error', resolve) })
    t.match(error.message, /451/, 'the SDK reports the refused upgrade')
    t.match(gw.decisions().at(-1), { model: 'gpt-realtime', action: 'block', status: 451 })
  })

  t.test('a refused upgrade is an HTTP 451 in OpenAI\'s shape, and nothing reaches the upstream', async (t) => {
    const before = upstream.calls.length
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/openai/v1/realtime?model=gpt-realtime`, { headers: { 'x-forwarded-for': MAINLAND_CHINA, authorization: 'Bearer k' } })
    const [, res] = await once(ws, 'unexpected-response') as [unknown, import('node:http').IncomingMessage]
    t.equal(res.statusCode, 451)
    let body = ''
    for await (const chunk of res) body += String(chunk)
    t.match(JSON.parse(body), { error: { type: 'permission_error', code: 'unsupported_country_region_territory', message: /Model "gpt-realtime" is not available from CN/ } })
    t.equal(res.headers['x-geofence-decision-id'], gw.decisions().at(-1)?.['decision_id'])
    t.equal(upstream.calls.length, before)
    t.match(gw.decisions().at(-1), { action: 'block', status: 451, rule: 'openai-frontier' })
    ws.on('error', () => {})
    ws.terminate()
  })

  t.test('a route rewrites ?model= and tunnels to the target', async (t) => {
    const { ws, messages } = realtime('?model=gpt-realtime-mini&x=1', MAINLAND_CHINA)
    const upgraded = once(ws, 'upgrade') as Promise<[import('node:http').IncomingMessage]>
    t.match(await messages(), { type: 'session.created', session: { model: 'local-realtime' } })
    t.equal((await upgraded)[0].headers['x-geofence-routed-model'], 'local-realtime')
    t.equal(sovereign.calls.at(-1)?.url, '/v1/realtime?model=local-realtime&x=1')
    ws.close()
  })

  t.test('shutdown: a tunnel still open when server.shutdown_grace is over is cut', async (t) => {
    const draining = await startTestGateway(baseConfig(upstream.url).replace('body_limit: 1mb', 'body_limit: 1mb, shutdown_grace: 300ms'))
    const ws = new WebSocket(`${draining.url.replace('http', 'ws')}/openai/v1/realtime?model=gpt-realtime`, { headers: { 'x-forwarded-for': UNITED_STATES } })
    await once(ws, 'message')
    const closed = once(ws, 'close')
    const started = Date.now()
    await draining.close()
    await closed
    t.ok(Date.now() - started < 5_000, 'the gateway stopped without waiting for the session to end')
  })

  t.test('Azure: /openai/realtime?deployment= is decided as the deployment\'s model; an upstream that declines to switch is relayed', async (t) => {
    const hk = new WebSocket(`${gw.url.replace('http', 'ws')}/azure/openai/realtime?api-version=2025-04-01-preview&deployment=voice-desk`, { headers: { 'x-forwarded-for': MAINLAND_CHINA } })
    const [, refused] = await once(hk, 'unexpected-response') as [unknown, import('node:http').IncomingMessage]
    refused.resume()
    t.equal(refused.statusCode, 451)
    t.match(gw.decisions().at(-1), { model: 'voice-desk', canonical_model: 'gpt-realtime', rule: 'openai-frontier', action: 'block' })
    hk.on('error', () => {})
    hk.terminate()
    // The fake serves Realtime at /v1/realtime only: it answers this upgrade with a 404.
    const us = new WebSocket(`${gw.url.replace('http', 'ws')}/azure/openai/realtime?api-version=2025-04-01-preview&deployment=voice-desk`, { headers: { 'x-forwarded-for': UNITED_STATES } })
    const [, declined] = await once(us, 'unexpected-response') as [unknown, import('node:http').IncomingMessage]
    let body = ''
    for await (const chunk of declined) body += String(chunk)
    t.equal(declined.statusCode, 404)
    t.equal(body, '{"error":"not found"}', 'the upstream\'s answer, whole')
    t.equal(declined.headers['x-geofence-decision-id'], gw.decisions().at(-1)?.['decision_id'])
    t.match(gw.decisions().at(-1), { action: 'allow', status: 404 })
    us.on('error', () => {})
    us.terminate()
  })

  t.test('an unreachable upstream is a 502 in the dialect\'s shape, with its decision line', async (t) => {
    const down = await startTestGateway(baseConfig('http://127.0.0.1:9'))
    t.teardown(down.close)
    const ws = new WebSocket(`${down.url.replace('http', 'ws')}/openai/v1/realtime?model=gpt-realtime`, { headers: { 'x-forwarded-for': UNITED_STATES } })
    const [, res] = await once(ws, 'unexpected-response') as [unknown, import('node:http').IncomingMessage]
    let body = ''
    for await (const chunk of res) body += String(chunk)
    t.equal(res.statusCode, 502)
    t.match(JSON.parse(body), { error: { type: 'server_error', code: 'bad_gateway', message: 'the upstream could not be reached' } })
    t.match(down.decisions().at(-1), { action: 'allow', status: 502 })
    ws.on('error', () => {})
    ws.terminate()
  })

  t.test('no ?model= is policy.unknown_model; two are refused; other paths take no upgrade', async (t) => {
    const status = async (path: string): Promise<number> => {
      const ws = new WebSocket(`${gw.url.replace('http', 'ws')}${path}`, { headers: { 'x-forwarded-for': UNITED_STATES } })
      const [, res] = await once(ws, 'unexpected-response') as [unknown, import('node:http').IncomingMessage]
      res.resume()
      ws.on('error', () => {})
      ws.terminate()
      return res.statusCode ?? 0
    }
    t.equal(await status('/openai/v1/realtime?call_id=rtc_123'), 451)
    t.match(gw.decisions().at(-1), { reason: /policy\.unknown_model is block/ })
    t.equal(await status('/openai/v1/realtime?model=gpt-4o-mini&model=gpt-realtime'), 400)
    t.equal(await status('/openai/v1/chat/completions'), 400)
    t.match(gw.decisions().at(-1), { action: 'block', status: 400, reason: /a WebSocket upgrade is taken only where the session names its model/ })
    t.equal(await status('/nowhere/v1/realtime?model=gpt-realtime'), 404)
    // A path that cannot be read is refused in the upstream's shape, as it is over plain HTTP.
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/openai/v1//realtime?model=gpt-realtime`, { headers: { 'x-forwarded-for': UNITED_STATES } })
    const [, res] = await once(ws, 'unexpected-response') as [unknown, import('node:http').IncomingMessage]
    let body = ''
    for await (const chunk of res) body += String(chunk)
    t.equal(res.statusCode, 400)
    t.same(JSON.parse(body), { error: { message: 'the request path is refused: it contains an empty segment (//)', type: 'invalid_request_error', param: null, code: null } })
    ws.on('error', () => {})
    ws.terminate()
  })
})
