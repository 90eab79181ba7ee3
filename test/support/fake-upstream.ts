// A fake provider on loopback that speaks the provider APIs as they answer: Anthropic, OpenAI
// (and Azure OpenAI's paths), Gemini, Vertex AI and Bedrock; JSON responses, SSE streams in
// each provider's event format, and Bedrock's binary event stream. It records every call.
// Faults, by model name: `fake-hang` never answers, `fake-stall` sends one event and goes
// silent, `fake-reset` sends one event and resets the connection, `fake-reset-before` resets it
// before answering, `fake-error-NNN` (on Bedrock `anthropic.fake-error-NNN`, a `vendor.model` id) answers status NNN in the provider's error shape with
// `retry-after`.
import { once } from 'node:events'
import http, { type IncomingHttpHeaders } from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { EventStreamCodec } from '@smithy/eventstream-codec'
import { Hash } from '@smithy/hash-node'
import { SignatureV4 } from '@smithy/signature-v4'
import { WebSocketServer } from 'ws'

export interface Call {
  method: string
  url: string
  headers: IncomingHttpHeaders
  body: Buffer
  /** With `sigv4`: whether the request's AWS signature verifies (as Bedrock checks it). */
  signatureValid?: boolean
  /** A WebSocket session's client messages, as they arrived. */
  messages?: Buffer[]
}

export interface FakeUpstream {
  url: string
  calls: Call[]
  /** Resolves the wait between a stream's first event and the rest (see `streamGate`). */
  releaseStream: () => void
  /** Set when a stream's last event has been written. */
  lastEventSentAt: () => number | null
  /** When a response was closed before its end (the gateway went away), if one was. */
  abortedAt: () => number | null
  close: () => Promise<void>
}

export interface FakeUpstreamOptions {
  /** Hold a stream after its first event until releaseStream() (or this many ms pass). */
  streamGateMs?: number
  /** Verify AWS SigV4 signatures with these credentials (as Bedrock does). */
  sigv4?: { region: string, service: string, accessKeyId: string, secretAccessKey: string }
  /** Serve HTTPS with these options (key, cert, and ca + requestCert for mutual TLS). */
  tls?: https.ServerOptions
  /** How long an idle keep-alive connection stays open (Node's default: 5 s). */
  keepAliveMs?: number
}

/** The invocation ARN the fake Bedrock answers StartAsyncInvoke with. */
export const ASYNC_INVOCATION = 'arn:aws:bedrock:us-east-1:123456789012:async-invoke/abc123def456'

export async function startFakeUpstream (opts: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
  const calls: Call[] = []
  let release: () => void = () => {}
  let gate = new Promise<void>((resolve) => { release = resolve })
  let lastSent: number | null = null
  let aborted: number | null = null

  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    res.on('close', () => { if (!res.writableFinished) aborted = Date.now() })
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      const call: Call = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body }
      calls.push(call)
      if (opts.sigv4 !== undefined) {
        // Answered after the check, so that a test sees the verdict with the response.
        void verifySigV4(opts.sigv4, call).then((ok) => { call.signatureValid = ok; answer(call) })
        return
      }
      answer(call)
    })
    const answer = (call: Call): void => {
      const body = call.body
      const path = (req.url ?? '').split('?')[0] ?? ''
      let json: { model?: string, stream?: boolean } = {}
      try { json = JSON.parse(body.toString('utf8') || '{}') as typeof json } catch { /* answered below */ }
      // The body's model, or the path's (Gemini, Vertex, Bedrock): the fault models below work for every API.
      const model = json.model ?? decodeURIComponent(/\/models?\/([^/:]+)/.exec(path)?.[1] ?? 'unknown')
      const waitGate = async (): Promise<void> => {
        if (opts.streamGateMs === undefined) return
        await Promise.race([gate, new Promise((resolve) => setTimeout(resolve, opts.streamGateMs))])
      }
      if (model === 'fake-hang') return // never answers: for first-byte timeouts
      if (model === 'fake-reset') {
        // one event, then a TCP reset: for streams the upstream breaks mid-way
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        res.write('event: ping\ndata: {"type":"ping"}\n\n', () => { setTimeout(() => { res.socket?.resetAndDestroy() }, 20) })
        return
      }
      if (model === 'fake-reset-before') {
        res.socket?.resetAndDestroy() // a reset before any answer
        return
      }
      const failing = /^(?:anthropic\.)?fake-error-(\d{3})$/.exec(model)
      if (failing !== null) {
        providerError(res, path, Number(failing[1]))
        return
      }
      if (model === 'fake-stall') {
        // one event, then silence: for idle timeouts
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        res.write('event: ping\ndata: {"type":"ping"}\n\n')
        return
      }
      const bedrockCall = /^\/model\/([^/]+)\/([a-z-]+)$/.exec(path)
      if (bedrockCall !== null) {
        const [, encoded = '', action = ''] = bedrockCall
        void bedrock(res, decodeURIComponent(encoded), action, waitGate).then(() => { lastSent = Date.now() })
        return
      }
      // Vertex AI: publishers/{anthropic|google}/models/{model}:{action}, under a project or not.
      const vertexCall = /^\/v1(?:beta1)?\/(?:projects\/[^/]+\/locations\/[^/]+\/)?publishers\/(\w+)\/models\/([^/:]+):(\w+)$/.exec(path)
      if (vertexCall !== null) {
        const [, publisher, encoded = '', action] = vertexCall
        const vertexModel = decodeURIComponent(encoded)
        if (publisher === 'anthropic' && vertexModel === 'count-tokens') sendJson(res, 200, { input_tokens: 12 })
        else if (action === 'streamRawPredict') void anthropicStream(res, vertexModel, waitGate).then(() => { lastSent = Date.now() })
        else if (action === 'rawPredict') sendJson(res, 200, anthropicMessage(vertexModel))
        else if (action === 'streamGenerateContent') void geminiStream(res, vertexModel, waitGate).then(() => { lastSent = Date.now() })
        else sendJson(res, 200, geminiResponse(vertexModel, 'Hello from the fake upstream'))
        return
      }
      // Bedrock's asynchronous invocations (StartAsyncInvoke, GetAsyncInvoke, ListAsyncInvokes).
      if (path === '/async-invoke' || path.startsWith('/async-invoke/')) {
        const started = { invocationArn: ASYNC_INVOCATION, modelArn: `arn:aws:bedrock:us-east-1::foundation-model/${String((json as { modelId?: string }).modelId ?? 'amazon.nova-reel-v1:1')}`, status: 'InProgress', submitTime: '2026-01-02T03:04:05Z', outputDataConfig: { s3OutputDataConfig: { s3Uri: 's3://bucket/out' } } }
        if (req.method === 'POST') sendJson(res, 200, { invocationArn: ASYNC_INVOCATION })
        else if (path === '/async-invoke') sendJson(res, 200, { asyncInvokeSummaries: [started] })
        else sendJson(res, 200, { ...started, invocationArn: decodeURIComponent(path.slice('/async-invoke/'.length)) })
        return
      }
      // Azure OpenAI: the deployment in the path (Azure answers with the model it serves).
      const azureCall = /^\/openai\/deployments\/([^/]+)\/chat\/completions$/.exec(path)
      if (azureCall !== null) {
        if (json.stream === true) void openaiStream(res, 'gpt-4o-2024-11-20', waitGate).then(() => { lastSent = Date.now() })
        else sendJson(res, 200, openaiCompletion('gpt-4o-2024-11-20'))
        return
      }
      const geminiCall = /^\/v1(?:beta|alpha)?\/models\/([^/:]+):(\w+)$/.exec(path)
      if (geminiCall !== null) {
        const [, geminiModel = '', action] = geminiCall
        if (action === 'streamGenerateContent') void geminiStream(res, geminiModel, waitGate).then(() => { lastSent = Date.now() })
        else sendJson(res, 200, geminiResponse(geminiModel, 'Hello from the fake upstream'))
        return
      }
      if (path === '/v1/messages' && json.stream === true) {
        void anthropicStream(res, model, waitGate).then(() => { lastSent = Date.now() })
      } else if (path === '/v1/messages') {
        sendJson(res, 200, anthropicMessage(model))
      } else if (path === '/v1/messages/count_tokens') {
        sendJson(res, 200, { input_tokens: 12 })
      } else if (/\/(?:openapi|openai|v1)\/chat\/completions$/.test(path) && json.stream === true) {
        void openaiStream(res, model, waitGate).then(() => { lastSent = Date.now() })
      } else if (/\/(?:openapi|openai|v1)\/chat\/completions$/.test(path)) {
        sendJson(res, 200, openaiCompletion(model))
      } else if (path === '/v1/audio/transcriptions') {
        sendJson(res, 200, { text: 'hello from the fake upstream' })
      } else if (path === '/v1/models') {
        sendJson(res, 200, { data: [{ id: 'claude-sonnet-4-5', type: 'model' }], has_more: false, first_id: null, last_id: null })
      } else {
        sendJson(res, 200, { path, echo: true })
      }
    }
  }
  const server = opts.tls === undefined ? http.createServer(handler) : https.createServer(opts.tls, handler)
  // OpenAI Realtime over WebSocket: session.created naming the model, then each client event
  // answered with a response.done that echoes its type. Gemini Live (and Vertex AI's): the first
  // message must be a setup naming the model, answered with setupComplete; each clientContent turn
  // with a serverContent turn that names the model, then turnComplete; a later setup, or a first
  // message that is not one, closes the session with 1007 as Google does. Google sends its
  // messages as binary frames holding JSON.
  const wss = new WebSocketServer({ noServer: true })
  server.on('upgrade', (req, socket, head) => {
    const call: Call = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.alloc(0), messages: [] }
    calls.push(call)
    const u = new URL(req.url ?? '/', 'http://x')
    if (LIVE_PATH.test(u.pathname)) {
      wss.handleUpgrade(req, socket, head, (ws) => { liveSession(ws, call) })
      return
    }
    if (u.pathname !== '/v1/realtime') {
      socket.end('HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 21\r\n\r\n{"error":"not found"}')
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send(JSON.stringify({ type: 'session.created', event_id: 'event_1', session: { id: 'sess_fake', object: 'realtime.session', model: u.searchParams.get('model') } }))
      ws.on('message', (data) => {
        const event = JSON.parse(data.toString()) as { type?: string }
        ws.send(JSON.stringify({ type: 'response.done', event_id: 'event_2', response: { id: 'resp_fake', object: 'realtime.response', status: 'completed', output: [], metadata: { echo: event.type } } }))
      })
    })
  })
  if (opts.keepAliveMs !== undefined) server.keepAliveTimeout = opts.keepAliveMs
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `${opts.tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`,
    calls,
    releaseStream: () => {
      release()
      gate = new Promise<void>((resolve) => { release = resolve })
    },
    lastEventSentAt: () => lastSent,
    abortedAt: () => aborted,
    close: async () => {
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    },
  }
}

/** Recomputes the request's SigV4 signature over what arrived (its signed headers, path, query, body). */
async function verifySigV4 (creds: NonNullable<FakeUpstreamOptions['sigv4']>, call: Call): Promise<boolean> {
  const auth = String(call.headers.authorization ?? '')
  const signedHeaders = /SignedHeaders=([^,]+)/.exec(auth)?.[1]?.split(';') ?? []
  const amzDate = String(call.headers['x-amz-date'] ?? '')
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate)
  if (m === null || signedHeaders.length === 0) return false
  const headers: Record<string, string> = {}
  for (const name of signedHeaders) headers[name] = String(call.headers[name] ?? '')
  const u = new URL(`http://${headers['host'] ?? 'x'}${call.url}`)
  const query: Record<string, string> = {}
  for (const [k, v] of u.searchParams) query[k] = v
  const signer = new SignatureV4({ credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey }, region: creds.region, service: creds.service, sha256: Hash.bind(null, 'sha256') })
  const signed = await signer.sign({ method: call.method, protocol: 'http:', hostname: u.hostname, path: call.url.split('?')[0] ?? '/', query, headers, body: call.body }, { signingDate: new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!)) })
  return signed.headers['authorization'] === auth
}

const codec = new EventStreamCodec((bytes) => Buffer.from(bytes).toString('utf8'), (text) => Buffer.from(text, 'utf8'))

/** One Bedrock event-stream message: a binary frame with lengths, CRCs, headers and a JSON payload. */
function eventFrame (eventType: string, payload: unknown): Uint8Array {
  return codec.encode({
    headers: {
      ':event-type': { type: 'string', value: eventType },
      ':content-type': { type: 'string', value: 'application/json' },
      ':message-type': { type: 'string', value: 'event' },
    },
    body: Buffer.from(JSON.stringify(payload), 'utf8'),
  })
}

/** Bedrock runtime: InvokeModel (the model's own JSON: Anthropic's here), Converse, and their streams. */
async function bedrock (res: http.ServerResponse, model: string, action: string, afterFirst: () => Promise<void>): Promise<void> {
  const stream = { 'content-type': 'application/vnd.amazon.eventstream', 'x-amzn-requestid': 'req-fake-1' }
  if (action === 'invoke') {
    sendJson(res, 200, anthropicMessage(model))
  } else if (action === 'converse') {
    sendJson(res, 200, { output: { message: { role: 'assistant', content: [{ text: 'Hello from the fake upstream' }] } }, stopReason: 'end_turn', usage: { inputTokens: 10, outputTokens: 6, totalTokens: 16 }, metrics: { latencyMs: 12 } })
  } else if (action === 'converse-stream') {
    res.writeHead(200, stream)
    res.write(eventFrame('messageStart', { role: 'assistant' }))
    await afterFirst()
    for (const w of words) res.write(eventFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: w } }))
    res.write(eventFrame('contentBlockStop', { contentBlockIndex: 0 }))
    res.write(eventFrame('messageStop', { stopReason: 'end_turn' }))
    res.write(eventFrame('metadata', { usage: { inputTokens: 10, outputTokens: 6, totalTokens: 16 }, metrics: { latencyMs: 12 } }))
    res.end()
  } else if (action === 'invoke-with-response-stream') {
    // Each chunk carries one of the model's own stream events, base64-encoded.
    res.writeHead(200, stream)
    const chunk = (event: unknown): void => { res.write(eventFrame('chunk', { bytes: Buffer.from(JSON.stringify(event)).toString('base64') })) }
    chunk({ type: 'message_start', message: { id: 'msg_fake_3', type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 10, output_tokens: 1 } } })
    await afterFirst()
    for (const w of words) chunk({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: w } })
    chunk({ type: 'message_stop' })
    res.end()
  } else {
    sendJson(res, 200, { inputTokens: 12 })
  }
}

/**
 * A provider's own error answer for `status` (429 and 5xx), in the shape of the API the path
 * belongs to, with the headers a client backs off by: `retry-after` (and the provider's own).
 */
function providerError (res: http.ServerResponse, path: string, status: number): void {
  const retry = { 'retry-after': '17' }
  if (path.startsWith('/model/')) {
    const type = status === 429 ? 'ThrottlingException' : status === 503 ? 'ServiceUnavailableException' : 'InternalServerException'
    sendJson(res, status, { message: status === 429 ? 'Too many requests, please wait before trying again.' : 'The service is unavailable.' }, { ...retry, 'x-amzn-errortype': `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/`, 'x-amzn-requestid': 'req-fake-err' })
  } else if (/:\w+$/.test(path)) {
    const google = status === 429 ? 'RESOURCE_EXHAUSTED' : status === 503 ? 'UNAVAILABLE' : 'INTERNAL'
    sendJson(res, status, { error: { code: status, message: status === 429 ? 'Resource has been exhausted (e.g. check quota).' : 'The model is overloaded. Please try again later.', status: google } }, retry)
  } else if (path === '/v1/messages' || path.startsWith('/v1/messages/') || path === '/v1/complete') {
    const type = status === 429 ? 'rate_limit_error' : status === 529 ? 'overloaded_error' : 'api_error'
    sendJson(res, status, { type: 'error', error: { type, message: status === 429 ? 'Number of request tokens has exceeded your per-minute rate limit' : 'Overloaded' }, request_id: 'req_fake_err' }, { ...retry, 'anthropic-ratelimit-requests-remaining': '0' })
  } else {
    sendJson(res, status, { error: status === 429
      ? { message: 'Rate limit reached for requests', type: 'requests', param: null, code: 'rate_limit_exceeded' }
      : { message: 'The server had an error while processing your request. Sorry about that!', type: 'server_error', param: null, code: null } }, { ...retry, 'x-ratelimit-remaining-requests': '0' })
  }
}

function sendJson (res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'request-id': 'req_fake_1', ...headers })
  res.end(text)
}

function anthropicMessage (model: string): unknown {
  return {
    id: 'msg_fake_1',
    type: 'message',
    role: 'assistant',
    model,
    content: [{ type: 'text', text: 'Hello from the fake upstream' }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: 10, output_tokens: 6 },
  }
}

function openaiCompletion (model: string): unknown {
  return {
    id: 'chatcmpl-fake1',
    object: 'chat.completion',
    created: 1_763_000_000,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content: 'Hello from the fake upstream', refusal: null }, logprobs: null, finish_reason: 'stop' }],
    usage: { prompt_tokens: 10, completion_tokens: 6, total_tokens: 16 },
  }
}

const words = ['Hello', ' from', ' the', ' fake', ' upstream']

function geminiResponse (model: string, text: string): unknown {
  return {
    candidates: [{ content: { parts: [{ text }], role: 'model' }, finishReason: 'STOP', index: 0 }],
    usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 5, totalTokenCount: 8 },
    modelVersion: model,
  }
}

/** Gemini's streamGenerateContent?alt=sse: `data:` lines of GenerateContentResponse, no [DONE]. */
async function geminiStream (res: http.ServerResponse, model: string, afterFirst: () => Promise<void>): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream' })
  for (const [i, w] of words.entries()) {
    res.write(`data: ${JSON.stringify(geminiResponse(model, w))}\r\n\r\n`)
    if (i === 0) await afterFirst()
  }
  res.end()
}

async function anthropicStream (res: http.ServerResponse, model: string, afterFirst: () => Promise<void>): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' })
  const event = (name: string, data: unknown): void => { res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`) }
  event('message_start', { type: 'message_start', message: { id: 'msg_fake_2', type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 10, output_tokens: 1 } } })
  await afterFirst()
  event('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } })
  event('ping', { type: 'ping' })
  for (const w of words) event('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: w } })
  event('content_block_stop', { type: 'content_block_stop', index: 0 })
  event('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 6 } })
  event('message_stop', { type: 'message_stop' })
  res.end()
}

async function openaiStream (res: http.ServerResponse, model: string, afterFirst: () => Promise<void>): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' })
  const chunk = (delta: unknown, finish: string | null): void => {
    res.write(`data: ${JSON.stringify({ id: 'chatcmpl-fake2', object: 'chat.completion.chunk', created: 1_763_000_000, model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`)
  }
  chunk({ role: 'assistant', content: '' }, null)
  await afterFirst()
  for (const w of words) chunk({ content: w }, null)
  chunk({}, 'stop')
  res.write('data: [DONE]\n\n')
  res.end()
}

/** The Live API's WebSocket paths: Gemini's (with an ephemeral token too) and Vertex AI's. */
const LIVE_PATH = /^\/ws\/(?:google\.ai\.generativelanguage\.v1(?:alpha|beta)?\.GenerativeService\.BidiGenerateContent(?:Constrained)?|google\.cloud\.aiplatform\.v1(?:beta1)?\.LlmBidiService\/BidiGenerateContent)$/

function liveSession (ws: import('ws').WebSocket, call: Call): void {
  let model: string | null = null
  const send = (message: unknown): void => { ws.send(Buffer.from(JSON.stringify(message)), { binary: true }) }
  ws.on('message', (data: Buffer) => {
    call.messages?.push(Buffer.from(data))
    let message: Record<string, any>
    try {
      message = JSON.parse(data.toString('utf8')) as Record<string, any>
    } catch {
      ws.close(1007, 'Request contains an invalid argument.')
      return
    }
    if (model === null) {
      if (typeof message['setup']?.model !== 'string') {
        ws.close(1007, 'Request contains an invalid argument.')
        return
      }
      model = message['setup'].model as string
      send({ setupComplete: {} })
      return
    }
    if (message['setup'] !== undefined) {
      ws.close(1007, 'Request contains an invalid argument.')
      return
    }
    const turns = message['clientContent']?.turns as Array<{ parts?: Array<{ text?: string }> }> | undefined
    if (turns === undefined) return
    const text = turns.flatMap((t) => t.parts ?? []).map((p) => p.text ?? '').join(' ')
    send({ serverContent: { modelTurn: { role: 'model', parts: [{ text: `${model} heard: ${text}` }] } } })
    send({ serverContent: { turnComplete: true } })
  })
}
