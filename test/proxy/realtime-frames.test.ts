// A Realtime session can name models in-band: session.update may change the transcription
// model. Every client frame is read and decided for the caller: one that names a model the
// policy refuses, or that cannot be read (binary, not JSON), is answered with a Realtime error
// event and never reaches the upstream. A tunnel silent past the idle timeout is closed.
import { once } from 'node:events'
import t from 'tap'
import WebSocket from 'ws'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { baseConfig, startTestGateway } from '../support/gateway.js'

t.test('client frames, one by one', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(baseConfig(upstream.url, {
    rules: `    - { name: no-transcribe-model, upstreams: [openai], models: ["gpt-4o-transcribe"], allow: [], action: block }
    - { name: openai-frontier, upstreams: [openai], models: ["gpt-*"], deny: [group:restricted], action: block }`,
  }).replace('openai: { url: "', 'openai: { timeouts: { idle: 1500ms }, url: "'))
  t.teardown(gw.close)
  const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/openai/v1/realtime?model=gpt-realtime`, { headers: { 'x-forwarded-for': '8.8.8.8' } })
  const inbox: Array<Record<string, any>> = []
  const waiting: Array<(m: Record<string, any>) => void> = []
  ws.on('message', (data: Buffer) => {
    const m = JSON.parse(String(data)) as Record<string, any>
    const w = waiting.shift()
    if (w === undefined) inbox.push(m)
    else w(m)
  })
  const next = async (): Promise<Record<string, any>> => inbox.shift() ?? new Promise((resolve) => { waiting.push(resolve) })
  t.match(await next(), { type: 'session.created' })

  const rows: Array<[string, string | Buffer, Record<string, unknown>]> = [
    ['an allowed transcription model is sent on', JSON.stringify({ type: 'session.update', session: { type: 'realtime', audio: { input: { transcription: { model: 'gpt-4o-mini-transcribe' } } } } }), { type: 'response.done', response: { metadata: { echo: 'session.update' } } }],
    ['a refused transcription model (GA shape) is not', JSON.stringify({ type: 'session.update', event_id: 'client-7', session: { audio: { input: { transcription: { model: 'gpt-4o-transcribe' } } } } }), { type: 'error', error: { code: 'model_not_allowed', event_id: 'client-7', message: /model "gpt-4o-transcribe" is not available to this caller: .*rule no-transcribe-model/ } }],
    ['...nor in the beta shape', JSON.stringify({ type: 'session.update', session: { input_audio_transcription: { model: 'gpt-4o-transcribe' } } }), { type: 'error', error: { code: 'model_not_allowed' } }],
    ['...nor in a transcription session', JSON.stringify({ type: 'transcription_session.update', session: { input_audio_transcription: { model: 'gpt-4o-transcribe' } } }), { type: 'error', error: { code: 'model_not_allowed' } }],
    ['a model field that is not a string', JSON.stringify({ type: 'session.update', session: { audio: { input: { transcription: { model: ['gpt-4o-transcribe'] } } } } }), { type: 'error', error: { code: 'invalid_event', message: /must be a string/ } }],
    ['a frame that is not JSON', '{"type":"session.update", "session": {', { type: 'error', error: { code: 'invalid_event', message: /not JSON/ } }],
    ['a binary frame', Buffer.from([1, 2, 3]), { type: 'error', error: { code: 'invalid_event', message: /binary frame/ } }],
    ['an ordinary event is sent on', JSON.stringify({ type: 'response.create' }), { type: 'response.done', response: { metadata: { echo: 'response.create' } } }],
  ]
  for (const [name, frame, answer] of rows) {
    ws.send(frame)
    t.match(await next(), answer, name)
  }
  const refused = gw.logs().filter((l) => l['msg'] === 'frame refused')
  t.equal(refused.length, 6, 'each refused frame has its line')
  t.match(refused[0], { model: 'gpt-4o-transcribe', reason: /not available/ })
  t.notMatch(gw.rawLogs(), /input_audio_transcription/, 'no frame content is logged')

  const closed = once(ws, 'close') as Promise<[number, Buffer]>
  const [code] = await closed
  t.equal(code, 1001, 'a silent tunnel is closed after the idle timeout')
})
