// WebSocket upgrades (OpenAI Realtime: GET /v1/realtime?model=...). An upgrade is decided
// like any request before anything is proxied: refused with an HTTP response in the dialect's
// shape (and its decision line), or tunnelled to the upstream (or the route's target) once
// the upstream has itself switched protocols. Frames then pass byte for byte both ways.
import http, { STATUS_CODES, type IncomingMessage } from 'node:http'
import https from 'node:https'
import type { Duplex } from 'node:stream'
import { GatewayError } from '../errors.js'
import type { RequestState } from '../observability/decision-log.js'
import { upstreamHeaders } from './forward.js'
import { readRequest, routedQuery } from './read-request.js'
import { DECISION_HEADER, ROUTED_MODEL_HEADER, blockRefusal, errorRefusal, type Refusal } from './responses.js'

type Log = (status: number, cut?: string) => void

/** The upstream's headers the gateway always sets itself. */
const OURS = new Set([DECISION_HEADER])
/** ...and, on a relayed refusal, its framing too (the body is sent whole, then the connection closes). */
const OURS_AND_FRAMING = new Set([DECISION_HEADER, 'transfer-encoding', 'content-length', 'connection', 'keep-alive'])

export async function handleUpgrade (req: IncomingMessage, socket: Duplex, head: Buffer, st: RequestState, error: GatewayError | null, log: Log): Promise<void> {
  socket.on('error', () => { socket.destroy() })
  try {
    if (error !== null) throw error
    if (st.located === null) throw new GatewayError('not_found', `no upstream is mounted at ${(req.url ?? '').split('?')[0] ?? ''}`)
    const { path, endpoint, upstream } = st.located
    if (endpoint.kind !== 'query') {
      throw new GatewayError('invalid_request', 'a WebSocket upgrade is taken only where the connection names its model (OpenAI Realtime: GET /v1/realtime?model=...)')
    }
    const read = await readRequest({
      runtime: st.runtime,
      located: st.located,
      method: req.method ?? 'GET',
      headers: req.headers,
      body: undefined,
      client: st.clientName,
      location: st.location,
      locationProblem: st.client.problem ?? st.location.reason,
    })
    st.model = read.model
    st.canonicalModel = read.canonical
    const { decision } = read
    st.decision = decision
    if (decision.enforced && decision.action === 'block') {
      refuse(socket, st, blockRefusal(st, decision), log)
      return
    }
    const route = decision.enforced ? decision.route : undefined
    const target = route === undefined ? upstream : st.runtime.config.upstreams.get(route.upstream) ?? upstream
    const query = route === undefined ? path.query : routedQuery(path.query, endpoint.param, route.model)
    const stripCredentials = target.stripClientCredentials || st.runtime.config.clients.size > 0
    const url = new URL(`${target.url}${path.path}${query}`)
    const headers = upstreamHeaders({ ...req.headers }, { upstream: target, stripCredentials, signature: undefined })
    headers['connection'] = 'Upgrade'
    headers['upgrade'] = req.headers.upgrade ?? 'websocket'
    headers['host'] = url.host
    const extra: Record<string, string> = route === undefined ? {} : { [ROUTED_MODEL_HEADER]: route.model }
    tunnel(socket, head, st, url, headers, extra, target.timeouts.connectMs, log)
  } catch (err) {
    const e = err instanceof GatewayError ? err : new GatewayError('internal', 'internal error in the gateway', { cause: err })
    refuse(socket, st, errorRefusal(st, e, st.decisionId), log)
  }
}

function tunnel (socket: Duplex, head: Buffer, st: RequestState, url: URL, headers: Record<string, string | string[] | undefined>, extra: Record<string, string>, connectMs: number, log: Log): void {
  const client = url.protocol === 'https:' ? https : http
  const upReq = client.request(url, { method: 'GET', headers: headers as http.OutgoingHttpHeaders, timeout: connectMs })
  // The client going away before the upstream answers ends the upstream request at once.
  const onClientGone = (): void => { upReq.destroy() }
  socket.once('close', onClientGone)
  upReq.on('timeout', () => { upReq.destroy(new GatewayError('gateway_timeout', 'the upstream did not answer in time')) })
  upReq.on('upgrade', (res, upSocket, upHead) => {
    socket.off('close', onClientGone)
    socket.write(statusLine(101, res.statusMessage) + headerLines(res.rawHeaders, OURS, { [DECISION_HEADER]: st.decisionId, ...extra }))
    if (upHead.length > 0) socket.write(upHead)
    if (head.length > 0) upSocket.write(head)
    upSocket.setTimeout(0)
    upSocket.on('error', () => { socket.destroy() })
    socket.on('close', () => { upSocket.destroy() })
    upSocket.on('close', () => { socket.destroy() })
    upSocket.pipe(socket)
    socket.pipe(upSocket)
    log(101)
  })
  // The upstream refused to switch: its answer goes back, and the connection closes.
  upReq.on('response', (res) => {
    const chunks: Buffer[] = []
    res.on('data', (c: Buffer) => chunks.push(c))
    res.on('end', () => {
      socket.off('close', onClientGone)
      const body = Buffer.concat(chunks)
      const head = headerLines(res.rawHeaders, OURS_AND_FRAMING, { 'content-length': String(body.length), connection: 'close', [DECISION_HEADER]: st.decisionId })
      socket.end(Buffer.concat([Buffer.from(statusLine(res.statusCode ?? 502, res.statusMessage) + head), body]))
      log(res.statusCode ?? 502)
    })
  })
  upReq.on('error', (err) => {
    socket.off('close', onClientGone)
    if (socket.destroyed) {
      log(499, 'the client went away')
      return
    }
    const e = err instanceof GatewayError ? err : new GatewayError('bad_gateway', 'the upstream could not be reached', { cause: err })
    refuse(socket, st, errorRefusal(st, e, st.decisionId), log)
  })
  upReq.end()
}

/** A refusal as an HTTP answer on the raw socket of an upgrade, then its decision line; the connection closes. */
function refuse (socket: Duplex, st: RequestState, r: Refusal, log: Log): void {
  if (!socket.destroyed) {
    const text = JSON.stringify(r.body)
    const lines = Object.entries({ ...r.headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), [DECISION_HEADER]: st.decisionId, connection: 'close' })
    socket.end(`${statusLine(r.status)}${lines.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${text}`)
  }
  log(r.status)
}

function statusLine (status: number, message?: string): string {
  return `HTTP/1.1 ${status} ${message ?? STATUS_CODES[status] ?? ''}\r\n`
}

/** The upstream's headers as it sent them (repeated ones too), less those in `skip`, then ours. */
function headerLines (raw: readonly string[], skip: ReadonlySet<string>, ours: Record<string, string>): string {
  let out = ''
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (!skip.has((raw[i] ?? '').toLowerCase())) out += `${raw[i] ?? ''}: ${raw[i + 1] ?? ''}\r\n`
  }
  for (const [k, v] of Object.entries(ours)) out += `${k}: ${v}\r\n`
  return `${out}\r\n`
}
