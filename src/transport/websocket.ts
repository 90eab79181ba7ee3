// The WebSocket adapter over the pipeline (OpenAI Realtime: GET /v1/realtime?model=...; Gemini
// Live, whose model is in the session's first message, is carried out by transport/live.ts).
// Upgrades reach it through Fastify's routing (app.ts), so the hooks, limits, refusals and the
// decision line are the HTTP ones. An allowed upgrade is carried out by `ws` on both sides:
// the gateway opens the plan's WebSocket to the upstream first, and completes the client's
// handshake only once the upstream has completed its own (a valid Sec-WebSocket-Accept), so
// only a WebSocket is ever tunnelled; messages then pass both ways, each client frame decided
// first (pipeline/frames.ts), and a tunnel silent for the upstream's idle timeout is closed. An upstream that declines
// is relayed as it answered; one that cannot be reached is a 502 in the dialect's shape.
import type { IncomingMessage } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type WebSocket from 'ws'
import { WebSocketServer } from 'ws'
import { GatewayError } from '../errors.js'
import { DECISION_HEADER, ROUTED_MODEL_HEADER } from '../pipeline/refusal.js'
import { decideFrame, type FrameVerdict } from '../pipeline/frames.js'
import { decideRequest } from '../pipeline/request.js'
import { upstreamError } from '../proxy/upstream-error.js'
import { requestHead, sendRefusal } from './http.js'
import { liveSession } from './live.js'
import { HANDSHAKE, headerLines, openUpstream, relay } from './tunnel.js'
import type { Upgrade } from './upgrade.js'

const kOpened = Symbol('geofence.opened')
type UpgradeRequest = IncomingMessage & { [kOpened]?: Opened }
/** What the upstream agreed to, for the client's handshake. */
interface Opened { protocol: string, headers: string[] }


export interface WebSocketDeps {
  /** The largest message taken in either direction (server.body_limit). */
  maxPayload: number
  /** How long a Live session's first message may take to arrive (server.body_timeout). */
  firstMessageMs: number
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

  /** The client's handshake completed by the gateway, with `headers` on its 101. */
  const accept = async (request: FastifyRequest, upgrade: Upgrade, headers: string[]): Promise<WebSocket> => {
    const req = request.raw as UpgradeRequest
    req[kOpened] = { protocol: '', headers }
    return new Promise((resolve) => { server.handleUpgrade(req, upgrade.socket, upgrade.head, resolve) })
  }

  return async (request, reply, upgrade) => {
    const st = request.geofence
    if (st.endpoint?.modelSource.kind === 'setup') {
      await liveSession(request, reply, upgrade, { ...deps, accept })
      return
    }
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
          let refusals = 0
          relay(client, upstream, {
            idleMs: plan.target.timeouts.idleMs,
            inspect: (data, isBinary) => decideFrame(st, data, isBinary),
            // A Realtime session goes on: the client gets an error event in its own terms.
            refuse: (c, verdict) => {
              deps.frameRefused(request, verdict)
              refusals++
              c.send(JSON.stringify({
                type: 'error',
                event_id: `event_geofence_${refusals}`,
                error: { type: 'invalid_request_error', code: verdict.model === undefined ? 'invalid_event' : 'model_not_allowed', message: `The event was not sent on: ${verdict.refused}`, param: null, event_id: verdict.eventId ?? null },
              }))
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
