// The WebSocket adapter over the pipeline (OpenAI Realtime: GET /v1/realtime?model=...).
// Upgrades reach it through Fastify's routing (app.ts), so the hooks, limits, refusals and the
// decision line are the HTTP ones. An allowed upgrade is carried out by `ws` on both sides:
// the gateway opens the plan's WebSocket to the upstream first, and completes the client's
// handshake only once the upstream has completed its own (a valid Sec-WebSocket-Accept), so
// only a WebSocket is ever tunnelled; messages then pass both ways, each client frame decided
// first (pipeline/frames.ts), and a tunnel silent for the upstream's idle timeout is closed. An upstream that declines
// is relayed as it answered; one that cannot be reached is a 502 in the dialect's shape.
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import WebSocket, { WebSocketServer, type RawData } from 'ws'
import { GatewayError } from '../errors.js'
import { DECISION_HEADER, ROUTED_MODEL_HEADER } from '../pipeline/refusal.js'
import { decideFrame, type FrameVerdict } from '../pipeline/frames.js'
import { decideRequest } from '../pipeline/request.js'
import type { Plan } from '../pipeline/plan.js'
import { createConnection, type Connector } from '../proxy/egress.js'
import { upstreamError } from '../proxy/upstream-error.js'
import { requestHead, sendRefusal } from './http.js'
import type { Upgrade } from './upgrade.js'

const kOpened = Symbol('geofence.opened')
type UpgradeRequest = IncomingMessage & { [kOpened]?: Opened }
/** What the upstream agreed to, for the client's handshake. */
interface Opened { protocol: string, headers: string[] }

/** Headers of the upstream's handshake that belong to that handshake alone. */
const HANDSHAKE = /^(?:connection|upgrade|sec-websocket-.*|content-length|transfer-encoding|keep-alive|x-geofence-decision-id)$/i
/** Headers of the client's handshake that `ws` writes itself for the upstream one. */
const CLIENT_HANDSHAKE = ['sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol']

export interface WebSocketDeps {
  /** The largest message taken in either direction (server.body_limit). */
  maxPayload: number
  /** The decision line, written when the tunnel opens (status 101) or the client goes away first. */
  log: (request: FastifyRequest, status: number, cut?: string) => void
  /** A client frame that was not forwarded, and why (its own log line; the frame's content is never logged). */
  frameRefused: (request: FastifyRequest, verdict: FrameVerdict) => void
}

export function webSocketAdapter (deps: WebSocketDeps): (request: FastifyRequest, reply: FastifyReply, upgrade: Upgrade) => Promise<void> {
  const server = new WebSocketServer({
    noServer: true,
    maxPayload: deps.maxPayload,
    handleProtocols: (offered, req) => {
      const chosen = (req as UpgradeRequest)[kOpened]?.protocol ?? ''
      return chosen !== '' && offered.has(chosen) ? chosen : false
    },
  })
  // The client's 101 carries the decision id, the routed model, and the upstream's own headers.
  server.on('headers', (lines, req) => { lines.push(...((req as UpgradeRequest)[kOpened]?.headers ?? [])) })

  return async (request, reply, upgrade) => {
    const st = request.geofence
    const outcome = await decideRequest(st, requestHead(request), undefined)
    if (outcome.kind === 'refuse') {
      sendRefusal(reply, outcome.refusal)
      return
    }
    const { plan } = outcome
    const upstream = openUpstream(plan, request.headers, deps.maxPayload, st.runtime.egress.routeFor(plan.target).connect)
    return new Promise((resolve, reject) => {
      // The client going away before the upstream answers ends the upstream handshake at once.
      const onClientGone = (): void => {
        upstream.terminate()
        reply.hijack()
        deps.log(request, 499, 'the client went away')
        resolve()
      }
      upgrade.socket.once('close', onClientGone)
      const timer = setTimeout(() => { upstream.terminate(); reject(new GatewayError('gateway_timeout', 'the upstream did not answer in time')) }, plan.target.timeouts.connectMs)
      const settled = (): void => {
        clearTimeout(timer)
        upgrade.socket.off('close', onClientGone)
      }
      let upstreamHeaders: string[] = []
      upstream.once('upgrade', (res) => { upstreamHeaders = headerLines(res.rawHeaders) })
      upstream.once('open', () => {
        settled()
        const req = request.raw as UpgradeRequest
        req[kOpened] = {
          protocol: upstream.protocol,
          headers: [...upstreamHeaders, `${DECISION_HEADER}: ${st.decisionId}`, ...(plan.routedModel === null ? [] : [`${ROUTED_MODEL_HEADER}: ${plan.routedModel}`])],
        }
        reply.hijack()
        server.handleUpgrade(req, upgrade.socket, upgrade.head, (client) => {
          relay(client, upstream, {
            idleMs: plan.target.timeouts.idleMs,
            inspect: (data, isBinary) => {
              const verdict = decideFrame(st, data, isBinary)
              if (verdict.refused !== null) deps.frameRefused(request, verdict)
              return verdict
            },
          })
          deps.log(request, 101)
        })
        resolve()
      })
      // The upstream declined to switch: its answer goes back as it came.
      upstream.once('unexpected-response', (_req, res) => {
        settled()
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', (err) => { reject(upstreamError(err)) })
        res.on('end', () => {
          for (const [name, values] of repeatedHeaders(res.rawHeaders)) reply.header(name, values.length === 1 ? values[0] : values)
          reply.code(res.statusCode ?? 502).header('connection', 'close').send(Buffer.concat(chunks))
          resolve()
        })
      })
      upstream.once('error', (err) => {
        settled()
        if (upgrade.socket.destroyed) onClientGone()
        else reject(upstreamError(err))
      })
    })
  }
}

/**
 * The plan's WebSocket to the upstream: its headers, and the subprotocols the client offered,
 * over a connection made as HTTP's are (through the egress proxy with CONNECT, or direct).
 */
function openUpstream (plan: Plan, client: IncomingMessage['headers'], maxPayload: number, connect: Connector): WebSocket {
  const headers = { ...plan.headers }
  for (const name of CLIENT_HANDSHAKE) delete headers[name]
  const offered = client['sec-websocket-protocol']
  const protocols = typeof offered === 'string' ? offered.split(',').map((p) => p.trim()).filter((p) => p !== '') : []
  const url = new URL(plan.url)
  const ws = new WebSocket(plan.url.replace(/^http/, 'ws'), protocols, {
    headers: headers as Record<string, string>,
    maxPayload,
    createConnection: createConnection(connect, url.protocol === 'https:' ? 'https:' : 'http:') as never,
    perMessageDeflate: false,
    followRedirects: false,
  })
  ws.on('error', () => {})
  return ws
}

interface RelayOptions {
  /** Both sides are closed when no message went either way for this long. */
  idleMs: number
  /** Decides each client frame before it is forwarded. */
  inspect: (data: Buffer, isBinary: boolean) => FrameVerdict
}

/**
 * Messages both ways (text stays text); each client frame is decided first, and one that is
 * refused is answered with a Realtime error event instead of being forwarded. Either side
 * closing closes the other; so does silence for longer than the upstream's idle timeout.
 */
function relay (client: WebSocket, upstream: WebSocket, opts: RelayOptions): void {
  let idle: NodeJS.Timeout | undefined
  const quiet = (): void => {
    clearTimeout(idle)
    idle = setTimeout(() => {
      client.close(1001, 'idle')
      upstream.close(1001, 'idle')
    }, opts.idleMs)
    idle.unref()
  }
  quiet()
  let refusals = 0
  client.on('message', (data: RawData, isBinary: boolean) => {
    quiet()
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer)
    const verdict = opts.inspect(bytes, isBinary)
    if (verdict.refused === null) {
      upstream.send(bytes, { binary: isBinary })
      return
    }
    refusals++
    client.send(JSON.stringify({
      type: 'error',
      event_id: `event_geofence_${refusals}`,
      error: { type: 'invalid_request_error', code: verdict.model === undefined ? 'invalid_event' : 'model_not_allowed', message: `The event was not sent on: ${verdict.refused}`, param: null, event_id: verdict.eventId ?? null },
    }))
  })
  upstream.on('message', (data: RawData, isBinary: boolean) => {
    quiet()
    client.send(data, { binary: isBinary })
  })
  client.once('close', () => { clearTimeout(idle) })
  upstream.once('close', () => { clearTimeout(idle) })
  const closeOther = (other: WebSocket) => (code: number, reason: Buffer): void => {
    if (sendable(code)) other.close(code, reason)
    else other.terminate()
  }
  client.on('close', closeOther(upstream))
  upstream.on('close', closeOther(client))
  client.on('error', () => { upstream.terminate() })
  upstream.on('error', () => { client.terminate() })
}

/** A close code one side can pass to the other (1005 and 1006 only describe what happened). */
function sendable (code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999)
}

/** The upstream's headers by name, each with its values as sent (repeated ones too), less the handshake's. */
function repeatedHeaders (raw: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] ?? '').toLowerCase()
    if (HANDSHAKE.test(name)) continue
    const values = out.get(name) ?? []
    values.push(raw[i + 1] ?? '')
    out.set(name, values)
  }
  return out
}

/** The upstream's handshake headers as header lines, less those of the handshake itself. */
function headerLines (raw: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? ''
    if (!HANDSHAKE.test(name)) out.push(`${name}: ${raw[i + 1] ?? ''}`)
  }
  return out
}
