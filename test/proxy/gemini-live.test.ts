// Gemini Live over WebSocket: the session names its model in its first message
// ({"setup":{"model":"models/..."}}), not in the URL. The gateway takes the upgrade, holds the
// session undialled until that message is in, decides it as it decides an HTTP body, and then
// closes the client's WebSocket with 4000 + the logged status and a reason, or dials the upstream
// and sends the first message on as read. The official @google/genai SDK is the client where it
// can be (ai.live.connect over the gateway's plain ws://); `ws` where a test needs raw frames.
import { once } from 'node:events'
import t from 'tap'
import { GoogleGenAI, Modality, type LiveServerMessage, type Session } from '@google/genai'
import WebSocket from 'ws'
import * as wsModule from 'ws'
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js'
import { startTestGateway } from '../support/gateway.js'
import { send } from '../support/http.js'

const HONG_KONG = '203.198.0.1'
const MAINLAND_CHINA = '114.114.114.114'
const UNITED_STATES = '8.8.8.8'
/** ws's frame writer (its types leave it out): two client frames built by the library, sent in one write. */
const sender = (wsModule as unknown as { Sender: { frame: (data: Buffer, opts: Record<string, unknown>) => Buffer[] } }).Sender
const LIVE_PATH = '/gemini/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent'

t.test('gemini live', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const sovereign = await startFakeUpstream()
  t.teardown(sovereign.close)
  const gw = await startTestGateway(`
server: { host: 127.0.0.1, port: 0, body_limit: 64kb, body_timeout: 1s }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams:
  gemini: { url: "${upstream.url}", dialect: gemini, strip_client_credentials: true, headers: { x-goog-api-key: held-gemini-key } }
  sovereign-gemini: { url: "${sovereign.url}", dialect: gemini }
  vertex: { url: "${upstream.url}", dialect: vertex }
policy:
  default: block
  rules:
    - { name: no-old-live, upstreams: [gemini], models: ["gemini-2.0-flash-live*"], allow: [], action: block }
    - { name: live-routed, upstreams: [gemini], models: ["gemini-2.5-flash-native-audio*"], deny: [CN], action: { route: { upstream: sovereign-gemini, model: sovereign-live } } }
    - { name: gemini-frontier, upstreams: [gemini, vertex], models: ["gemini-*"], deny: [HK, CN], action: block }
    - { name: sovereign, upstreams: [sovereign-gemini], deny: [], action: block }
`)
  t.teardown(gw.close)
  const wsBase = gw.url.replace('http', 'ws')

  /** A Live session through the SDK, its messages and its close as promises. */
  const connect = async (ip: string, model: string, apiKey = 'client-key-never-forwarded', apiVersion = 'v1beta'): Promise<{ session: Session, next: () => Promise<LiveServerMessage>, closed: Promise<{ code: number, reason: string }> }> => {
    const ai = new GoogleGenAI({ apiKey, httpOptions: { baseUrl: `${gw.url}/gemini`, apiVersion, headers: { 'x-forwarded-for': ip } } })
    const inbox: LiveServerMessage[] = []
    const waiting: Array<(m: LiveServerMessage) => void> = []
    let onClose: (e: { code: number, reason: string }) => void = () => {}
    const closed = new Promise<{ code: number, reason: string }>((resolve) => { onClose = resolve })
    const session = await ai.live.connect({
      model,
      config: { responseModalities: [Modality.TEXT] },
      callbacks: {
        onmessage: (m) => { const w = waiting.shift(); if (w === undefined) inbox.push(m); else w(m) },
        onclose: (e) => { onClose({ code: e.code, reason: e.reason }) },
        onerror: () => {},
      },
    })
    return { session, next: async () => inbox.shift() ?? new Promise((resolve) => { waiting.push(resolve) }), closed }
  }

  t.test('an allowed model from an allowed place: the SDK\'s session talks to the upstream through the tunnel', async (t) => {
    const { session, next } = await connect(UNITED_STATES, 'gemini-live-2.5-flash-preview')
    t.ok((await next()).setupComplete, 'setupComplete comes back')
    session.sendClientContent({ turns: 'hello', turnComplete: true })
    t.equal((await next()).text, 'models/gemini-live-2.5-flash-preview heard: hello')
    t.ok((await next()).serverContent?.turnComplete)
    session.close()
    const call = upstream.calls.at(-1)
    t.equal(call?.url, '/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent', '?key= is not sent on: the gateway holds the key')
    t.equal(call?.headers['x-goog-api-key'], 'held-gemini-key')
    t.notOk(call?.headers['x-forwarded-for'])
    t.match(JSON.parse(String(call?.messages?.[0])), { setup: { model: 'models/gemini-live-2.5-flash-preview' } })
    t.match(gw.decisions().at(-1), { method: 'GET', path: LIVE_PATH, model: 'models/gemini-live-2.5-flash-preview', canonical_model: 'gemini-live-2.5-flash-preview', action: 'allow', status: 101, rule: 'gemini-frontier', country: 'US' })
    t.notMatch(gw.rawLogs(), /client-key-never-forwarded/)
    t.notMatch(gw.rawLogs(), /hello/, 'no message content is logged')
  })

  t.test('a denied place: the session is closed with 4451 and the reason, and nothing is dialled', async (t) => {
    const before = upstream.calls.length
    const { closed } = await connect(HONG_KONG, 'gemini-live-2.5-flash-preview')
    const { code, reason } = await closed
    t.equal(code, 4451)
    t.match(reason, /^Model "models\/gemini-live-2\.5-flash-preview" is not available from HK: blocked by rule "gemini-frontier"/)
    t.ok(Buffer.byteLength(reason) <= 123, 'within the 123 bytes a close reason may hold')
    t.equal(upstream.calls.length, before)
    t.match(gw.decisions().at(-1), { model: 'models/gemini-live-2.5-flash-preview', action: 'block', status: 451, rule: 'gemini-frontier', country: 'HK' })
  })

  t.test('a denied model: closed with 4451 from anywhere', async (t) => {
    const before = upstream.calls.length
    const { closed } = await connect(UNITED_STATES, 'gemini-2.0-flash-live-001')
    t.match(await closed, { code: 4451, reason: /blocked by rule "no-old-live"/ })
    t.equal(upstream.calls.length, before)
    t.match(gw.decisions().at(-1), { action: 'block', status: 451, rule: 'no-old-live' })
  })

  t.test('a route rewrites setup.model and the session runs on the target', async (t) => {
    const { session, next } = await connect(MAINLAND_CHINA, 'gemini-2.5-flash-native-audio-preview-09-2025')
    t.ok((await next()).setupComplete)
    session.sendClientContent({ turns: 'ni hao', turnComplete: true })
    t.equal((await next()).text, 'models/sovereign-live heard: ni hao')
    session.close()
    t.equal(sovereign.calls.at(-1)?.url, '/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent?key=client-key-never-forwarded', 'the target holds no key: the client\'s is sent on')
    t.match(gw.decisions().at(-1), { action: 'route', model: 'models/gemini-2.5-flash-native-audio-preview-09-2025', routed_model: 'sovereign-live', status: 101 })
  })

  t.test('an ephemeral token\'s session (Constrained) runs the model the token locks: policy.unknown_model', async (t) => {
    const { closed } = await connect(UNITED_STATES, 'gemini-live-2.5-flash-preview', 'auth_tokens/never-logged', 'v1alpha')
    t.match(await closed, { code: 4451, reason: /is not available/ })
    t.match(gw.decisions().at(-1), { path: '/gemini/ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContentConstrained', action: 'block', status: 451, reason: /ephemeral token.*policy\.unknown_model is block/ })
    t.notMatch(gw.rawLogs(), /auth_tokens\/never-logged/)
  })

  /** A raw client: the decision id on its 101, its close, and whether the upstream was dialled. */
  const raw = async (path: string, ip = UNITED_STATES): Promise<{ ws: WebSocket, id: string, closed: Promise<[number, string]> }> => {
    const ws = new WebSocket(`${wsBase}${path}`, { headers: { 'x-forwarded-for': ip } })
    ws.on('error', () => {})
    const closed = once(ws, 'close').then(([code, reason]) => [code as number, String(reason)] as [number, string])
    const upgraded = once(ws, 'upgrade') as Promise<[import('node:http').IncomingMessage]>
    await once(ws, 'open')
    const [res] = await upgraded
    return { ws, id: String(res.headers['x-geofence-decision-id']), closed }
  }
  const linesOf = (id: string): Array<Record<string, unknown>> => gw.decisions().filter((l) => l['decision_id'] === id)
  const undialled = (t: { equal: (a: unknown, b: unknown, m: string) => void }, from: FakeUpstream, before: number): void => { t.equal(from.calls.length, before, 'no upstream connection') }

  t.test('the first message goes on byte for byte, as read', async (t) => {
    const { ws } = await raw(`${LIVE_PATH}?key=k`)
    const first = '{ "setup" :{"generationConfig":{"responseModalities":["TEXT"]},  "model":"models/gemini-live-2.5-flash-preview"}}'
    ws.send(first)
    const [data] = await once(ws, 'message') as [Buffer]
    t.same(JSON.parse(String(data)), { setupComplete: {} })
    t.equal(String(upstream.calls.at(-1)?.messages?.[0]), first)
    ws.close()
  })

  t.test('hostile sessions: each closed with its code and reason, one decision line, nothing dialled', async (t) => {
    const rows: Array<[string, (ws: WebSocket) => void, number, RegExp, Record<string, unknown>]> = [
      ['no first message within server.body_timeout', () => {}, 4408, /no first message \(setup\) arrived within server\.body_timeout/, { status: 408, cut: /the gateway cut the request/ }],
      ['a first message that is not JSON', (ws) => { ws.send('setup: gemini-2.5-pro') }, 4400, /not valid JSON/, { status: 400, action: 'block' }],
      ['a binary first message that is not JSON', (ws) => { ws.send(Buffer.from([0x0a, 0x05, 0xff])) }, 4400, /not valid JSON/, { status: 400 }],
      ['a first message without setup', (ws) => { ws.send('{"clientContent":{"turns":[],"turnComplete":true}}') }, 4400, /has no "setup"/, { status: 400 }],
      ['a setup without a model', (ws) => { ws.send('{"setup":{"generationConfig":{}}}') }, 4400, /setup: the session's first message has no "model"/, { status: 400 }],
      ['a setup naming the model twice', (ws) => { ws.send('{"setup":{"model":"models/gemini-live-2.5-flash-preview","model":"models/gemini-2.5-pro"}}') }, 4400, /more than one "model"/, { status: 400 }],
      ['a key that folds to setup', (ws) => { ws.send('{"SETUP":{"model":"models/gemini-2.5-pro"},"setup":{"model":"models/gemini-live-2.5-flash-preview"}}') }, 4400, /has a key "SETUP"/, { status: 400, reason: /read as "setup"/ }],
      ['two setups in one write, the second naming another model', (ws) => {
        const frames = [{ setup: { model: 'models/gemini-live-2.5-flash-preview' } }, { setup: { model: 'models/gemini-2.0-flash-live-001' } }]
          .flatMap((m) => sender.frame(Buffer.from(JSON.stringify(m)), { fin: true, opcode: 1, mask: true, readOnly: false, rsv1: false }))
        ;(ws as unknown as { _socket: import('node:net').Socket })._socket.write(Buffer.concat(frames))
      }, 4400, /a second "setup"/, { status: 400, action: 'block', reason: /a second "setup"/ }],
      // ws closes it itself, with RFC 6455's 1009 (Message Too Big), before reading the payload.
      ['a first message over server.body_limit', (ws) => { ws.send(`{"setup":{"model":"models/gemini-live-2.5-flash-preview","systemInstruction":"${'x'.repeat(70_000)}"}}`) }, 1009, /^$/, { status: 413, reason: /larger than server\.body_limit/ }],
    ]
    for (const [name, act, code, reason, line] of rows) {
      const before = upstream.calls.length
      const { ws, id, closed } = await raw(`${LIVE_PATH}?key=k`)
      act(ws)
      const [gotCode, gotReason] = await closed
      t.equal(gotCode, code, `${name}: close code`)
      t.match(gotReason, reason, `${name}: close reason`)
      const lines = linesOf(id)
      t.equal(lines.length, 1, `${name}: one decision line`)
      t.match(lines[0], { path: LIVE_PATH, ...line }, `${name}: its decision line`)
      undialled(t, upstream, before)
    }
  })

  t.test('a setup sent later in an open session closes it; its decision line stays the one written at 101', async (t) => {
    const { ws, id, closed } = await raw(`${LIVE_PATH}?key=k`)
    ws.send(JSON.stringify({ setup: { model: 'models/gemini-live-2.5-flash-preview' } }))
    await once(ws, 'message')
    const upstreamCall = upstream.calls.at(-1)
    ws.send(JSON.stringify({ setup: { model: 'models/gemini-2.0-flash-live-001' } }))
    const [code, reason] = await closed
    t.equal(code, 4400)
    t.match(reason, /a second "setup"/)
    t.equal(upstreamCall?.messages?.length, 1, 'the second setup never reached the upstream')
    t.match(linesOf(id), [{ status: 101, action: 'allow' }])
    t.equal(linesOf(id).length, 1)
    t.match(gw.logs().filter((l) => l['msg'] === 'frame refused').at(-1), { decision_id: id, reason: /a second "setup"/ })
  })

  t.test('messages sent before the upstream answered are decided as they come and sent on in order', async (t) => {
    const { ws } = await raw(`${LIVE_PATH}?key=k`)
    ws.send(JSON.stringify({ setup: { model: 'models/gemini-live-2.5-flash-preview' } }))
    ws.send(JSON.stringify({ clientContent: { turns: [{ role: 'user', parts: [{ text: 'early' }] }], turnComplete: true } }))
    const texts: string[] = []
    ws.on('message', (d: Buffer) => { texts.push(String(d)) })
    while (texts.length < 3) await once(ws, 'message')
    t.match(JSON.parse(texts[1] ?? ''), { serverContent: { modelTurn: { parts: [{ text: 'models/gemini-live-2.5-flash-preview heard: early' }] } } })
    ws.close()
  })

  t.test('the Live endpoint takes only an upgrade; an upgrade elsewhere is still refused', async (t) => {
    const plain = await send(`${gw.url}${LIVE_PATH}?key=k`, { method: 'GET', headers: { 'x-forwarded-for': UNITED_STATES } })
    t.equal(plain.status, 400)
    t.same(plain.json(), { error: { code: 400, message: 'the Live API is a WebSocket: this endpoint takes only an upgrade', status: 'INVALID_ARGUMENT' } })
    const ws = new WebSocket(`${wsBase}/gemini/v1beta/models/gemini-2.5-flash:generateContent`, { headers: { 'x-forwarded-for': UNITED_STATES } })
    const [, res] = await once(ws, 'unexpected-response') as [unknown, import('node:http').IncomingMessage]
    res.resume()
    t.equal(res.statusCode, 400)
    ws.on('error', () => {})
    ws.terminate()
  })

  t.test('an upstream that cannot be reached: the session is closed with 4502, and its line says 502', async (t) => {
    const down = await startTestGateway(`
server: { host: 127.0.0.1, port: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams:
  gemini: { url: "http://127.0.0.1:9", dialect: gemini }
policy:
  default: allow
  rules: []
`)
    t.teardown(down.close)
    const ws = new WebSocket(`${down.url.replace('http', 'ws')}${LIVE_PATH}?key=k`, { headers: { 'x-forwarded-for': UNITED_STATES } })
    ws.on('error', () => {})
    const closed = once(ws, 'close')
    await once(ws, 'open')
    ws.send(JSON.stringify({ setup: { model: 'models/gemini-live-2.5-flash-preview' } }))
    const [code, reason] = await closed as [number, Buffer]
    t.equal(code, 4502)
    t.equal(String(reason), 'the upstream could not be reached')
    t.match(down.decisions(), [{ action: 'allow', status: 502, model: 'models/gemini-live-2.5-flash-preview' }])
  })

  t.test('Vertex AI\'s Live API: setup.model is a publisher model, decided as on HTTP', async (t) => {
    const path = '/vertex/ws/google.cloud.aiplatform.v1beta1.LlmBidiService/BidiGenerateContent'
    const model = 'projects/p/locations/us-central1/publishers/google/models/gemini-live-2.5-flash'
    const allowed = await raw(path)
    allowed.ws.send(JSON.stringify({ setup: { model } }))
    const [data] = await once(allowed.ws, 'message') as [Buffer]
    t.same(JSON.parse(String(data)), { setupComplete: {} })
    t.equal(upstream.calls.at(-1)?.url, '/ws/google.cloud.aiplatform.v1beta1.LlmBidiService/BidiGenerateContent')
    t.match(linesOf(allowed.id), [{ model, canonical_model: 'gemini-live-2.5-flash', action: 'allow', status: 101, rule: 'gemini-frontier' }])
    allowed.ws.close()
    const before = upstream.calls.length
    const blocked = await raw(path, HONG_KONG)
    blocked.ws.send(JSON.stringify({ setup: { model } }))
    t.match(await blocked.closed, [4451, /is not available from HK/])
    undialled(t, upstream, before)
  })
})
