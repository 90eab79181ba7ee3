// buildApp(runtime): the gateway as a Fastify instance that never listens by itself. It
// registers the transports over the pipeline (ARCHITECTURE.md): onRequest runs the stages
// before the body (caller, location, client, endpoint); the route runs the rest and carries
// out the outcome, over HTTP or, for an upgrade routed through the same hooks, WebSocket;
// onSend stamps the decision id; onResponse writes the decision line. Every error goes
// through one handler that shapes it in the upstream's dialect.
import { randomUUID } from 'node:crypto'
import { STATUS_CODES, ServerResponse, type IncomingMessage } from 'node:http'
import type http from 'node:http'
import type http2 from 'node:http2'
import type { Duplex } from 'node:stream'
import fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import replyFrom from '@fastify/reply-from'
import underPressure from '@fastify/under-pressure'
import type { Logger } from 'pino'
import { GatewayError } from './errors.js'
import { DecisionLog } from './pipeline/record.js'
import type { Metrics } from './observability/metrics.js'
import { notMounted } from './pipeline/endpoint.js'
import { DECISION_HEADER, errorRefusal, refusedBeforeDecision, type Refusal } from './pipeline/refusal.js'
import { verifyIdentity } from './pipeline/identity.js'
import { LargeBodies } from './pipeline/large-bodies.js'
import { LARGE_BODY_BYTES } from './proxy/body-buffer.js'
import { beginRequest, type RequestHead } from './pipeline/request.js'
import type { RequestState } from './pipeline/state.js'
import { UpstreamDispatcher } from './proxy/dispatcher.js'
import { replyFromOptions } from './transport/forward.js'
import { upstreamError } from './proxy/upstream-error.js'
import type { Config } from './config/load.js'
import type { ServerTls } from './config/validate.js'
import type { RuntimeRef } from './runtime.js'
import { handleHttp, readBodiesAsBytes, requestHead, sendRefusal, tooLarge } from './transport/http.js'
import { checkUpgradeEndpoint, markUpgrade, takesWebSockets, upgradeOf } from './transport/upgrade.js'
import type { Runtime } from './runtime.js'

declare module 'fastify' {
  interface FastifyRequest {
    geofence: RequestState
  }
  interface FastifyInstance {
    /** Client sockets of WebSocket tunnels: the server does not track upgraded connections, so shutdown cuts these itself. */
    tunnels: Set<Duplex>
    /** Load what a revision needs before it serves (the WebSocket adapter, for an upstream that takes WebSockets). */
    prepareRevision: (runtime: Runtime) => Promise<void>
  }
}

export { DECISION_HEADER, ROUTED_MODEL_HEADER } from './pipeline/refusal.js'

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
  const { server } = ref.current.config
  const fastifyBodyLimit = Math.max(server.bodyLimit, server.batchBodyLimit)
  const decisions = new DecisionLog(opts.logger, opts.metrics)
  const log = (request: FastifyRequest, status: number, cut?: string): void => {
    if (request.geofence !== null) decisions.write(request.geofence, request.method, request.raw.url ?? '', status, cut)
  }
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
    // A request head Node cannot read whole (too long, too slow, malformed) or a body that stops
    // arriving: answered in the upstream's shape with a decision line that says it was cut,
    // never read in part (Node would otherwise drop header lines past its count silently).
    clientErrorHandler: (err, socket) => {
      refuseUnreadable(err as Error & { code?: string, rawPacket?: unknown }, socket)
    },
    // A target Fastify's router cannot decode (%ZZ) is refused before any hook runs: it still
    // gets a refusal in its upstream's shape, its reason, and its decision line.
    frameworkErrors: (error, request, reply) => {
      const { state, refusal } = refuseBeforeRoute(requestHead(request), request.id, null, (pathProblem) => pathProblem ?? new GatewayError('invalid_request', `the request target cannot be read (${error.code})`))
      request.geofence = state
      reply.raw.once('finish', () => { log(request, reply.statusCode) })
      sendRefusal(reply.header(DECISION_HEADER, request.id), refusal)
    },
    // Receiving a whole request (headers and body) may not take longer than this (408),
    // checked often enough for the limit to mean what it says. Node reads requestTimeout at
    // construction only, so it goes to the server options as well.
    requestTimeout: server.bodyTimeoutMs,
    // The instance is typed as over node:http: Fastify's request and reply are the same over https.
    ...(listenerOptions(server) as { http: http.ServerOptions }),
  })
  const { metrics } = opts

  // No silent truncation: the head is bounded by its size (16 KiB, a 431), not by a count of lines.
  const httpServer: import('node:http').Server = app.server
  httpServer.maxHeadersCount = 0
  // Node's HTTP/2 server ignores these options for the HTTP/1.1 it falls back to (it fixes five
  // minutes, and reads them when it starts listening): the TLS listener's HTTP/1.1 gets the
  // plain listener's limits, so that a head or body that stops arriving is a 408 there too.
  if (server.tls !== null) Object.assign(httpServer, http1Timeouts(server))
  /**
   * A request refused before it reaches the route (a target the router cannot decode, a head or
   * body Node cannot read): begun here unless it already was (`begun`), then refused in its
   * upstream's shape for the reason `why` gives, told the problem found in beginning it (its path).
   */
  function refuseBeforeRoute (head: RequestHead, id: string, begun: RequestState | null, why: (pathProblem: GatewayError | null) => GatewayError): { state: RequestState, refusal: Refusal } {
    let state = begun
    let pathProblem: GatewayError | null = null
    if (state === null) {
      decisions.begin()
      ;({ state, error: pathProblem } = beginRequest(ref.current, head, id))
    }
    const reason = why(pathProblem)
    refusedBeforeDecision(state, reason)
    return { state, refusal: errorRefusal(state, reason, state.decisionId) }
  }
  /** The request each connection is in, so that a timeout on its body is logged on its own line. */
  const inFlight = new WeakMap<Duplex, { state: RequestState, method: string, url: string }>()
  function refuseUnreadable (err: Error & { code?: string, rawPacket?: unknown }, socket: import('node:net').Socket): void {
    if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable) {
      socket.destroy()
      return
    }
    const [kind, why] = err.code === 'HPE_HEADER_OVERFLOW'
      ? ['headers_too_large', 'the request head is larger than the gateway reads (16 KiB)'] as const
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? ['request_timeout', `the request did not arrive within server.body_timeout`] as const
        : ['invalid_request', `the request cannot be read as HTTP/1.1 (${err.code ?? 'malformed'})`] as const
    const line = /^([A-Z]+) (\/\S*) HTTP\/1\.[01]\r?\n/.exec(Buffer.isBuffer(err.rawPacket) ? err.rawPacket.toString('latin1') : '')
    let head = { peer: socket.remoteAddress, method: line?.[1] ?? '-', url: line?.[2] ?? '/', headers: {} }
    const current = inFlight.get(socket)
    const inRequest = current !== undefined && !current.state.logged
    if (inRequest) head = { ...head, method: current.method, url: current.url }
    const { state, refusal: r } = refuseBeforeRoute(head, randomUUID(), inRequest ? current.state : null, () => new GatewayError(kind, why))
    const body = JSON.stringify(r.body)
    const headers = Object.entries({ ...r.headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), [DECISION_HEADER]: state.decisionId, connection: 'close' })
    socket.end(`HTTP/1.1 ${r.status} ${STATUS_CODES[r.status] ?? ''}\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${body}`)
    decisions.write(state, head.method, head.url, r.status, `the gateway cut the request: ${why}`)
  }

  readBodiesAsBytes(app, fastifyBodyLimit, server.tls === null ? null : server.bodyTimeoutMs)
  const largeBodies = new LargeBodies(server.maxConcurrentLargeBodies, fastifyBodyLimit)
  app.addHook('onClose', async () => { await largeBodies.close() })

  // A replaced revision's connections stay usable while a request that started under it can
  // still be forwarded: its body may take server.body_timeout, its identity keys a fetch.
  const dispatcher = new UpstreamDispatcher(() => ref.current.egress, server.bodyTimeoutMs + 60_000)
  await app.register(replyFrom, replyFromOptions(dispatcher))
  app.addHook('onClose', async () => { await dispatcher.close() })

  app.decorateRequest('geofence', null as unknown as RequestState)

  app.addHook('onRequest', (request, reply, done) => {
    decisions.begin()
    const { state, error } = beginRequest(ref.current, requestHead(request), request.id)
    request.geofence = state
    inFlight.set(request.raw.socket, { state, method: request.method, url: request.raw.url ?? '/' })
    // Nothing is mounted here: answered before a byte of the body is read.
    if (error === null && state.upstream === null) {
      done(notMounted(request.url))
      return
    }
    if (error === null && state.endpoint !== null) {
      const declared = Number(request.headers['content-length'] ?? 0)
      if (declared > state.endpoint.bodyLimit) {
        done(tooLarge(state.endpoint))
        return
      }
      state.largeBody = largeBodies.lease()
      reply.raw.once('close', state.largeBody.release)
      if (declared > LARGE_BODY_BYTES) {
        try {
          state.largeBody.take()
        } catch (err) {
          done(err as GatewayError)
          return
        }
      }
    }
    if (error !== null || state.runtime.identity === null) {
      done(error ?? undefined)
      return
    }
    verifyIdentity(state, request.headers).then(() => { done() }, done)
  })

  // After our onRequest, so that a refused request still has its decision line.
  // A saturated event loop answers 503 at once instead of queueing without bound.
  if (server.maxEventLoopDelayMs > 0) {
    await app.register(underPressure, {
      maxEventLoopDelay: server.maxEventLoopDelayMs,
      sampleInterval: Math.min(1_000, Math.max(100, server.maxEventLoopDelayMs)),
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

  app.addHook('onResponse', (request, reply, done) => { log(request, reply.statusCode); done() })
  // A client that goes away mid-stream still leaves its decision line (499, as nginx logs it),
  // and so does a forwarded response cut from the upstream side (see onCut).
  app.addHook('onRequestAbort', (request, done) => { log(request, 499, 'the client went away'); done() })

  app.setErrorHandler((error, request, reply) => {
    const err = asGatewayError(error)
    if (err.status >= 500) request.log.error({ err: error }, 'request failed')
    // A refusal answered before its body was read (or while it was) ends the HTTP/1.1
    // connection, so that the rest of the body is never read, not even to be thrown away.
    if (request.raw.httpVersionMajor === 1 && hasBody(request.raw) && !request.raw.complete) reply.header('connection', 'close')
    refusedBeforeDecision(request.geofence, err)
    // A 502 or 504 the gateway made (not the upstream's own) says so on the decision line.
    if (request.geofence !== null && (err.kind === 'bad_gateway' || err.kind === 'gateway_timeout')) request.geofence.upstreamError = err.message
    sendRefusal(reply, errorRefusal(request.geofence, err, request.id))
    // A body that stopped arriving (an HTTP/2 stream's deadline, transport/http.ts) was cut by
    // the gateway, and its line says so, as the HTTP/1.1 listener's does.
    if (err.kind === 'request_timeout') log(request, err.status, `the gateway cut the request: ${err.message}`)
  })

  app.setNotFoundHandler((request, reply) => {
    const err = notMounted(request.url)
    refusedBeforeDecision(request.geofence, err)
    sendRefusal(reply, errorRefusal(request.geofence, err, request.id))
  })

  const onCut = (request: FastifyRequest, reply: FastifyReply): void => {
    // The upstream side failing (an idle stream, a reset) errors the body stream first; a
    // response closed without that was closed by the client.
    if (request.geofence.upstreamFailed) log(request, reply.statusCode, 'the upstream response was cut before its end')
    else log(request, 499, 'the client went away')
  }
  // The WebSocket adapter (and `ws`) is loaded when a revision first has an upstream that takes
  // WebSockets: at start or at reload (prepareRevision, before the revision serves).
  type WebSocketAdapter = ReturnType<typeof import('./transport/websocket.js').webSocketAdapter>
  let webSocket: Promise<WebSocketAdapter> | null = null
  const loadWebSocket = async (): Promise<WebSocketAdapter> => {
    webSocket ??= import('./transport/websocket.js').then(({ webSocketAdapter }) => webSocketAdapter({
      maxPayload: server.bodyLimit,
      firstMessageMs: server.bodyTimeoutMs,
      log,
      frameRefused: (request, v) => { opts.logger.info({ decision_id: request.id, model: v.model, reason: v.refused }, 'frame refused') },
    }))
    return webSocket
  }
  app.decorate('prepareRevision', async (runtime: Runtime) => { if (takesWebSockets(runtime.config)) await loadWebSocket() })
  await app.prepareRevision(ref.current)
  // One route for every upstream, so that a reload can add, remove or re-point upstreams.
  app.all('/*', async (request, reply) => {
    if (request.geofence.endpoint === null) throw notMounted(request.url)
    const upgrade = upgradeOf(request.raw)
    if (upgrade === undefined) return handleHttp(request, reply, { metrics, onCut })
    checkUpgradeEndpoint(request.geofence)
    // Loaded already for every revision that takes WebSockets (prepareRevision); the await is then on a settled promise.
    await (await loadWebSocket())(request, reply, upgrade)
    return reply
  })

  // WebSocket upgrades go through Fastify's routing, as @fastify/http-proxy routes them: the
  // same hooks, limits, refusals and decision line as any request.
  app.decorate('tunnels', new Set<Duplex>())
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Only a WebSocket is ever tunnelled. Any other offer (curl --http2 offers h2c on every
    // plain request) is ignored, as most servers do: the request is read again as plain HTTP.
    if (!isWebSocketOffer(req)) {
      readAgainWithoutOffer(app.server, req, socket as import('node:net').Socket, head)
      return
    }
    app.tunnels.add(socket)
    socket.once('close', () => { app.tunnels.delete(socket) })
    socket.on('error', () => { socket.destroy() })
    markUpgrade(req, { socket, head })
    const res = new ServerResponse(req)
    res.assignSocket(socket as import('node:net').Socket)
    // An answer other than the switch (a refusal, a relayed decline) ends the connection.
    res.shouldKeepAlive = false
    res.once('finish', () => { socket.end() })
    app.routing(req, res)
  })
  return app
}

/** Whether the request says a body follows its head. */
function hasBody (req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0
}

function isWebSocketOffer (req: IncomingMessage): boolean {
  return req.method === 'GET' && req.headers.upgrade?.trim().toLowerCase() === 'websocket'
}

/** Headers that make an offer to switch protocols, and the Connection tokens that name them. */
const OFFER_HEADERS = new Set(['upgrade', 'http2-settings'])

/**
 * Node hands every request that offers an upgrade to the 'upgrade' listener, its parser already
 * detached. A request whose offer is declined is given back to the server as it was sent, less
 * the offer (Upgrade, HTTP2-Settings and their Connection tokens), followed by what was read after it.
 */
function readAgainWithoutOffer (server: import('node:http').Server, req: IncomingMessage, socket: import('node:net').Socket, head: Buffer): void {
  let text = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}\r\n`
  const raw = req.rawHeaders
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? ''
    let value = raw[i + 1] ?? ''
    const lower = name.toLowerCase()
    if (OFFER_HEADERS.has(lower)) continue
    if (lower === 'connection') {
      value = value.split(',').map((v) => v.trim()).filter((v) => v !== '' && !OFFER_HEADERS.has(v.toLowerCase())).join(', ')
      if (value === '') continue
    }
    text += `${name}: ${value}\r\n`
  }
  socket.unshift(Buffer.concat([Buffer.from(`${text}\r\n`, 'latin1'), head]))
  server.emit('connection', socket)
  // Node paused the socket when it handed it over.
  socket.resume()
}

/**
 * Plain HTTP/1.1, or TLS (server.tls) with HTTP/2 offered through ALPN and HTTP/1.1 on the same
 * port for clients that do not speak it (and for WebSocket upgrades, which exist only there).
 * The client certificate policy: `require` completes no handshake without a certificate that
 * verifies against client_ca; `request` asks for one and lets the client stage judge it.
 */
function listenerOptions (server: Config['server']): { http: http.ServerOptions } | { http2: true, https: http2.SecureServerOptions, http2SessionTimeout: number } {
  const node = http1Timeouts(server)
  const tls = server.tls
  if (tls === null) return { http: node }
  return {
    http2: true,
    // An HTTP/2 connection idle this long is closed gracefully (GOAWAY: streams under way finish).
    http2SessionTimeout: HTTP2_IDLE_MS,
    https: { ...node, allowHTTP1: true, ...secureContext(tls), requestCert: tls.clientCertificate !== 'none', rejectUnauthorized: tls.clientCertificate === 'require' },
  }
}

/**
 * Receiving a whole HTTP/1.1 request (head and body) may not take longer than server.body_timeout
 * (408), checked often enough for the limit to mean what it says; the head alone no longer than
 * Node's own 60 s, nor than the whole.
 */
function http1Timeouts (server: Config['server']): { requestTimeout: number, headersTimeout: number, connectionsCheckingInterval: number } {
  return {
    requestTimeout: server.bodyTimeoutMs,
    headersTimeout: Math.min(60_000, server.bodyTimeoutMs),
    connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(server.bodyTimeoutMs / 4))),
  }
}

/** As Node's HTTP/1.1 keep-alive is to HTTP/1.1 connections: long enough for a client's next call. */
const HTTP2_IDLE_MS = 60_000

/** What a reload may change on a listening TLS server (server.setSecureContext): its certificate, key and client CAs. */
export function secureContext (tls: ServerTls): { cert: string, key: string, ca?: string } {
  return { cert: tls.cert, key: tls.key, ...(tls.clientCa === null ? {} : { ca: tls.clientCa }) }
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
  if (status >= 502 && status < 600) return upstreamError(error)
  if (status >= 400 && status < 500) return new GatewayError('invalid_request', e.message ?? 'bad request', { cause: error })
  return new GatewayError('internal', 'internal error in the gateway', { cause: error })
}
