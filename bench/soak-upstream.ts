// The soak's fake provider (run as its own process, prints its port): Anthropic messages and
// OpenAI chat completions as JSON or SSE streams, a stream that never ends (for clients that go
// away mid-stream), and OpenAI Realtime over WebSocket (session.created, then a response.done
// for each client event). Small and fast: it must not be what the soak measures.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { WebSocketServer } from 'ws'

const EVENTS = 8

function anthropicMessage (model: string): string {
  return JSON.stringify({ id: 'msg_soak', type: 'message', role: 'assistant', model, content: [{ type: 'text', text: 'ok' }], stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 1, output_tokens: 1 } })
}

function openaiCompletion (model: string): string {
  return JSON.stringify({ id: 'chatcmpl-soak', object: 'chat.completion', created: 1_763_000_000, model, choices: [{ index: 0, message: { role: 'assistant', content: 'ok', refusal: null }, logprobs: null, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } })
}

/** One SSE event in the dialect the path speaks. */
function event (openai: boolean, i: number): string {
  return openai
    ? `data: {"id":"chatcmpl-soak","object":"chat.completion.chunk","created":1763000000,"model":"m","choices":[{"index":0,"delta":{"content":"w${i}"},"finish_reason":null}]}\n\n`
    : `event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"w${i}"}}\n\n`
}

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    const openai = (req.url ?? '').includes('/chat/completions')
    let body: { model?: string, stream?: boolean } = {}
    try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body } catch { /* answered as a plain call */ }
    const model = body.model ?? 'unknown'
    if (body.stream !== true) {
      const text = openai ? openaiCompletion(model) : anthropicMessage(model)
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
      res.end(text)
      return
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    // "soak-endless": one event every 5 ms until the gateway goes away (bounded at 60 s).
    const endless = model === 'soak-endless'
    let i = 0
    const tick = setInterval(() => {
      res.write(event(openai, i))
      if ((!endless && ++i === EVENTS) || (endless && ++i === 12_000)) {
        clearInterval(tick)
        res.end(openai ? 'data: [DONE]\n\n' : 'event: message_stop\ndata: {"type":"message_stop"}\n\n')
      }
    }, endless ? 5 : 1)
    res.on('close', () => { clearInterval(tick) })
  })
})
server.keepAliveTimeout = 60_000

const wss = new WebSocketServer({ noServer: true })
server.on('upgrade', (req, socket, head) => {
  const u = new URL(req.url ?? '/', 'http://x')
  if (u.pathname !== '/v1/realtime') {
    socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n')
    return
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.send(JSON.stringify({ type: 'session.created', event_id: 'event_1', session: { id: 'sess_soak', object: 'realtime.session', model: u.searchParams.get('model') } }))
    ws.on('message', (data: Buffer) => {
      const e = JSON.parse(data.toString()) as { type?: string }
      ws.send(JSON.stringify({ type: 'response.done', event_id: 'event_2', response: { id: 'resp_soak', object: 'realtime.response', status: 'completed', output: [], metadata: { echo: e.type } } }))
    })
  })
})

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`)
})
