// buildApp(runtime): the gateway as a Fastify instance that never listens by itself.
// Lifecycle: onRequest finds the caller and its location (before any body is read); the
// route handler reads the model, decides, and blocks or forwards; onSend stamps the decision
// id; onResponse writes the decision line. Every error goes through one handler that shapes
// it in the upstream's dialect.
import { createHash, randomUUID } from 'node:crypto'
import fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import replyFrom from '@fastify/reply-from'
import type { Logger } from 'pino'
import { GatewayError } from './errors.js'
import { replaceValue } from './proxy/json-members.js'
import { resolveClientIp } from './geo/client-ip.js'
import { UNKNOWN_ADDRESS } from './geo/locator.js'
import { decisionRecord, type RequestState } from './observability/decision-log.js'
import { forward, replyFromOptions } from './proxy/forward.js'
import { UpstreamDispatcher } from './proxy/dispatcher.js'
import underPressure from '@fastify/under-pressure'
import type { Metrics } from './observability/metrics.js'
import { locate, readRequest, routedPath, routedQuery } from './proxy/read-request.js'
import { DECISION_HEADER, ROUTED_MODEL_HEADER, blockRefusal, errorRefusal, type Refusal } from './proxy/responses.js'
import { mountName } from './proxy/upstream-path.js'
import type { Runtime, RuntimeRef } from './runtime.js'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { handleUpgrade } from './proxy/websocket.js'

declare module 'fastify' {
  interface FastifyRequest {
    geofence: RequestState
  }
  interface FastifyInstance {
    /** Client sockets of WebSocket tunnels: the server does not track upgraded connections, so shutdown cuts these itself. */
    tunnels: Set<Duplex>
  }
}

export { DECISION_HEADER, ROUTED_MODEL_HEADER } from './proxy/responses.js'

export interface AppOptions {
  logger: Logger
  metrics: Metrics
}

/**
 * The gateway over a revision reference: each request reads `ref.current` once, in onRequest,
 * and keeps that revision to the end, so a reload never changes a request in flight. The
 * server section (host, port, body_limit) is read once, here: it needs a restart.
 */
export async function buildApp (ref: RuntimeRef, opts: AppOptions): Promise<FastifyInstance> {
  const fastifyBodyLimit = Math.max(ref.current.config.server.bodyLimit, ref.current.config.server.batchBodyLimit)
  const app = fastify({
    loggerInstance: opts.logger as FastifyBaseLogger,
    // Fastify's own request lines are off: the decision line is the request log.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'decision_id' }),
    bodyLimit: fastifyBodyLimit,
    // The decision id is ours: a client-supplied request id is never taken.
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    // Forwarding headers are read by geo/client-ip.ts against trusted_proxies, never by Fastify.
    trustProxy: false,
    return503OnClosing: true,
    // Receiving a whole request (headers and body) may not take longer than this (408),
    // checked often enough for the limit to mean what it says. Node reads requestTimeout at
    // construction only, so it goes to the server options as well.
    requestTimeout: ref.current.config.server.bodyTimeoutMs,
    http: {
      requestTimeout: ref.current.config.server.bodyTimeoutMs,
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(ref.current.config.server.bodyTimeoutMs / 4))),
    },
  })
  const { metrics } = opts

  // Every body is read as bytes, whatever its Content-Type (or none): the model check must not
  // depend on a header the client chooses, and the bytes checked are the bytes forwarded. The
  // limit is the endpoint's (batches take more): a Content-Length over it was refused in
  // onRequest, and a chunked body is cut as soon as it passes it.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (request, payload, done) => {
    const limit = request.geofence.located?.bodyLimit ?? fastifyBodyLimit
    readBody(payload, limit, request.headers['content-length'], () => tooLarge(limit, request.geofence.runtime.config.server), done)
  })

  const dispatcher = new UpstreamDispatcher((origin, path) => ref.current.timeoutsFor(origin, path))
  await app.register(replyFrom, replyFromOptions(dispatcher))
  app.addHook('onClose', async () => { await dispatcher.close() })

  app.decorateRequest('geofence', null as unknown as RequestState)

  app.addHook('onRequest', (request, _reply, done) => {
    metrics.inflight.inc()
    const { state, error } = beginRequest(ref.current, request.raw, request.id)
    request.geofence = state
    if (error === null && state.located !== null && Number(request.headers['content-length'] ?? 0) > state.located.bodyLimit) {
      done(tooLarge(state.located.bodyLimit, state.runtime.config.server))
      return
    }
    done(error ?? undefined)
  })

  // After our onRequest, so that a refused request still has its decision line.
  // A saturated event loop answers 503 at once instead of queueing without bound.
  if (ref.current.config.server.maxEventLoopDelayMs > 0) {
    await app.register(underPressure, {
      maxEventLoopDelay: ref.current.config.server.maxEventLoopDelayMs,
      sampleInterval: Math.min(1_000, Math.max(100, ref.current.config.server.maxEventLoopDelayMs)),
      retryAfter: 1,
      pressureHandler: async (_req, _reply, type) => {
        throw new GatewayError('overloaded', `the gateway is overloaded (${type}); retry shortly`)
      },
    })
  }

  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header(DECISION_HEADER, request.id)
    done(null, payload)
  })

  const logDecision = (request: FastifyRequest, status: number, cut?: string): void => {
    if (request.geofence !== null) logState(request.geofence, request.method, request.raw.url ?? '', status, cut)
  }
  /** The decision line of a request, once, and its metrics. */
  const logState = (st: RequestState, method: string, url: string, status: number, cut?: string): void => {
    if (st.logged) return
    st.logged = true
    metrics.inflight.dec()
    const record = decisionRecord(st, method, url, status)
    if (cut !== undefined) record.cut = cut
    opts.logger.info(record, 'decision')
    metrics.recordDecision(
      record.upstream ?? 'none',
      record.rule ?? st.decision?.setting ?? 'none',
      record.action,
      record.enforced,
      record.country ?? 'unknown',
      record.duration_ms / 1000,
    )
  }
  app.addHook('onResponse', (request, reply, done) => { logDecision(request, reply.statusCode); done() })
  // A client that goes away mid-stream still leaves its decision line (499, as nginx logs it),
  // and so does a forwarded response cut from the upstream side (see handle()).
  app.addHook('onRequestAbort', (request, done) => { logDecision(request, 499, 'the client went away'); done() })

  app.setErrorHandler((error, request, reply) => {
    const err = asGatewayError(error)
    if (err.status >= 500) request.log.error({ err: error }, 'request failed')
    send(reply, errorRefusal(request.geofence, err, request.id))
  })

  app.setNotFoundHandler((request, reply) => {
    send(reply, errorRefusal(request.geofence, new GatewayError('not_found', `no upstream is mounted at ${request.url.split('?')[0] ?? ''}`), request.id))
  })

  // One route for every upstream, so that a reload can add, remove or re-point upstreams.
  const onCut = (request: FastifyRequest, reply: FastifyReply): void => {
    // The upstream side failing (an idle stream, a reset) errors the body stream first; a
    // response closed without that was closed by the client.
    if (request.geofence.upstreamFailed) logDecision(request, reply.statusCode, 'the upstream response was cut before its end')
    else logDecision(request, 499, 'the client went away')
  }
  app.all('/*', async (request, reply) => handle(request, reply, metrics, onCut))

  // WebSocket upgrades (OpenAI Realtime) go through the same beginning, decision and log line.
  app.decorate('tunnels', new Set<Duplex>())
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    app.tunnels.add(socket)
    socket.once('close', () => { app.tunnels.delete(socket) })
    metrics.inflight.inc()
    const { state, error } = beginRequest(ref.current, req, randomUUID())
    void handleUpgrade(req, socket, head, state, error, (status: number, cut?: string) => { logState(state, req.method ?? 'GET', req.url ?? '/', status, cut) })
  })
  return app
}

/**
 * The start of every request, before its body: the caller and its location (under the
 * revision in force, kept to the end), the client's token, and where the request goes below
 * its upstream. A request that cannot go on carries the error that refuses it.
 */
function beginRequest (runtime: Runtime, raw: IncomingMessage, id: string): { state: RequestState, error: GatewayError | null } {
  const client = resolveClientIp(raw.socket.remoteAddress, raw.headers, runtime.clientIp)
  const url = raw.url ?? '/'
  const upstream = runtime.config.upstreams.get(mountName(url))
  const state: RequestState = {
    runtime,
    clientName: null,
    upstreamFailed: false,
    decisionId: id,
    startedAt: process.hrtime.bigint(),
    client,
    location: client.ip === null ? UNKNOWN_ADDRESS : runtime.locator.locate(client.ip),
    upstream: upstream?.name ?? null,
    located: null,
    model: null,
    canonicalModel: null,
    batchModels: null,
    decision: null,
    logged: false,
  }
  if (runtime.config.clients.size > 0) {
    state.clientName = authenticate(raw.headers, runtime.config.clients)
    if (state.clientName === null) {
      return { state, error: new GatewayError('unauthorized', 'a client token the gateway knows is required (Authorization: Bearer, x-api-key or api-key)') }
    }
  }
  // Where the request goes and where it names its model are known before its body is read:
  // a path that cannot be read, or a body larger than its endpoint takes, costs nothing more.
  if (upstream !== undefined) {
    try {
      state.located = locate(runtime.config, upstream, raw.method ?? 'GET', url)
    } catch (err) {
      return { state, error: err as GatewayError }
    }
  }
  return { state, error: null }
}

/** The client whose token the request carries, or null. Tokens are compared by sha256. */
function authenticate (headers: IncomingMessage['headers'], clients: ReadonlyMap<string, string>): string | null {
  const auth = headers.authorization
  const token = typeof auth === 'string' && /^bearer /i.test(auth)
    ? auth.slice(7).trim()
    : [headers['x-api-key'], headers['api-key'], headers['x-goog-api-key']].find((v): v is string => typeof v === 'string')
  if (token === undefined || token === '') return null
  return clients.get(createHash('sha256').update(token).digest('hex')) ?? null
}

async function handle (request: FastifyRequest, reply: FastifyReply, metrics: Metrics, onCut: (request: FastifyRequest, reply: FastifyReply) => void): Promise<FastifyReply> {
  const st = request.geofence
  const { runtime, located } = st
  if (located === null) throw new GatewayError('not_found', `no upstream is mounted at ${request.url.split('?')[0] ?? ''}`)
  const { endpoint, path, upstream } = located
  const read = await readRequest({
    runtime,
    located,
    method: request.method,
    headers: request.headers,
    body: request.body as Buffer | undefined,
    client: st.clientName,
    location: st.location,
    locationProblem: st.client.problem ?? st.location.reason,
  })
  st.model = read.model
  st.canonicalModel = read.canonical
  st.batchModels = read.batchModels?.slice(0, 20) ?? null
  const { decision } = read
  st.decision = decision
  if (decision.enforced && decision.action === 'block') {
    // The block path answers directly: no exception (and no stack trace) per refusal.
    return send(reply, blockRefusal(st, decision))
  }
  let target = upstream
  let body = request.body as Buffer | undefined
  let forwardPath = path.path
  let query = path.query
  let dropEncoding = false
  if (decision.enforced && decision.route !== undefined) {
    const routed = runtime.config.upstreams.get(decision.route.upstream)
    if (routed === undefined) throw new GatewayError('internal', `route target ${decision.route.upstream} is not configured`)
    target = routed
    if (endpoint.kind === 'path') {
      forwardPath = routedPath(path, endpoint, decision.route.model)
    } else if (endpoint.kind === 'query') {
      query = routedQuery(query, endpoint.param, decision.route.model)
    } else if (read.member !== null && body !== undefined) {
      // The rewritten body is sent decoded: there is no re-compressing what the client sent.
      body = replaceValue(read.decoded ?? body, read.member, decision.route.model)
      dropEncoding = read.encoded
    }
    reply.header(ROUTED_MODEL_HEADER, decision.route.model)
  }
  const stripCredentials = target.stripClientCredentials || runtime.config.clients.size > 0
  const pathAndQuery = `${forwardPath}${stripCredentials ? withoutKeyParam(query) : query}`
  const sign = runtime.signers.get(target.name)
  const signature = sign === undefined ? undefined : await sign(`${target.url}${pathAndQuery}`, request.method, request.headers, body)
  // Only a forwarded response can be cut from the upstream side (an idle stream, a reset).
  reply.raw.once('close', () => { if (!reply.raw.writableFinished) onCut(request, reply) })
  forward(reply, {
    upstream: target,
    // Gemini clients may send their key as ?key=: a held credential replaces it too.
    pathAndQuery,
    signature,
    body,
    contentType: request.headers['content-type'],
    stripCredentials,
    dropContentEncoding: dropEncoding,
    onFirstByte: (seconds) => { metrics.recordFirstByte(target.name, seconds) },
    onUpstreamError: () => { st.upstreamFailed = true },
  })
  return reply
}

/** The query string without its `key` parameters, every other byte as it was. */
function withoutKeyParam (query: string): string {
  if (!query.includes('key=')) return query
  const kept = query.slice(1).split('&').filter((p) => !/^key(=|$)/i.test(p))
  return kept.length === 0 ? '' : `?${kept.join('&')}`
}

/** A request body as one Buffer, as Fastify's own raw-body reader does it, with a limit per request. */
function readBody (payload: NodeJS.ReadableStream, limit: number, contentLength: string | undefined, tooLargeError: () => Error, done: (err: Error | null, body?: Buffer) => void): void {
  const chunks: Buffer[] = []
  let size = 0
  const stop = (): void => {
    payload.removeListener('data', onData)
    payload.removeListener('end', onEnd)
    payload.removeListener('error', onError)
  }
  const onData = (chunk: Buffer): void => {
    size += chunk.length
    if (size > limit) {
      stop()
      done(tooLargeError())
      return
    }
    chunks.push(chunk)
  }
  const onEnd = (): void => {
    stop()
    if (contentLength !== undefined && Number(contentLength) !== size) {
      done(new GatewayError('invalid_request', 'the request body does not have the length its Content-Length says'))
      return
    }
    done(null, Buffer.concat(chunks, size))
  }
  const onError = (err: Error): void => { stop(); done(err) }
  payload.on('data', onData)
  payload.on('end', onEnd)
  payload.on('error', onError)
}

function send (reply: FastifyReply, r: Refusal): FastifyReply {
  return reply.code(r.status).headers(r.headers).type('application/json').send(r.body)
}

function tooLarge (limit: number, server: { bodyLimit: number }): GatewayError {
  return new GatewayError('too_large', `the request body is larger than ${limit === server.bodyLimit ? 'server.body_limit' : 'server.batch_body_limit'}`)
}

/** Fastify's own errors (body too large, bad content length...) become gateway errors. */
function asGatewayError (error: unknown): GatewayError {
  if (error instanceof GatewayError) return error
  const e = error as { statusCode?: number, code?: string, message?: string }
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || e.statusCode === 413) {
    return new GatewayError('too_large', 'the request body is larger than server.body_limit', { cause: error })
  }
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || e.statusCode === 415) {
    return new GatewayError('unsupported_media', 'the request body cannot be read', { cause: error })
  }
  const status = e.statusCode ?? 500
  if (status === 504) return new GatewayError('gateway_timeout', 'the upstream did not answer in time', { cause: error })
  if (status >= 502 && status < 600) return new GatewayError('bad_gateway', 'the upstream could not be reached', { cause: error })
  if (status >= 400 && status < 500) return new GatewayError('invalid_request', e.message ?? 'bad request', { cause: error })
  return new GatewayError('internal', 'internal error in the gateway', { cause: error })
}
