// A WebSocket tunnel once both sides are open, for every WebSocket the gateway carries (OpenAI
// Realtime, Gemini Live): the plan's connection to the upstream, and the relay between the two
// that decides each client frame before it is sent on and closes a tunnel left silent.
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import WebSocket, { type RawData } from 'ws'
import type { FrameVerdict } from '../pipeline/frames.js'
import type { Plan } from '../pipeline/plan.js'
import { createConnection, type Connector } from '../proxy/egress.js'
import type { Upgrade } from './upgrade.js'

/** Headers of the upstream's handshake that belong to that handshake alone. */
export const HANDSHAKE = /^(?:connection|upgrade|sec-websocket-.*|content-length|transfer-encoding|keep-alive|x-geofence-decision-id)$/i
/** Headers of the client's handshake that `ws` writes itself for the upstream one. */
const CLIENT_HANDSHAKE = ['sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol']

/**
 * The plan's WebSocket to the upstream: its headers, and the subprotocols the client offered
 * (none where the client's handshake was completed first), over a connection made as HTTP's are
 * (through the egress proxy with CONNECT, or direct).
 */
export function openUpstream (plan: Plan, client: IncomingMessage['headers'], maxPayload: number, connect: Connector, offerProtocols = true): WebSocket {
  const headers = { ...plan.headers }
  for (const name of CLIENT_HANDSHAKE) delete headers[name]
  const offered = offerProtocols ? client['sec-websocket-protocol'] : undefined
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

export interface RelayOptions {
  /** Both sides are closed when no message went either way for this long. */
  idleMs: number
  /** Decides each client frame before it is forwarded. */
  inspect: (data: Buffer, isBinary: boolean) => FrameVerdict
  /** Answers the client for a frame that was not forwarded (a Realtime error event, or a close). */
  refuse: (client: WebSocket, verdict: FrameVerdict) => void
}

/**
 * Messages both ways (text stays text); each client frame is decided first, and one that is
 * refused is answered by `refuse` instead of being forwarded. Either side closing closes the
 * other; so does silence for longer than the upstream's idle timeout.
 */
export function relay (client: WebSocket, upstream: WebSocket, opts: RelayOptions): void {
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
  client.on('message', (data: RawData, isBinary: boolean) => {
    quiet()
    const bytes = asBuffer(data)
    const verdict = opts.inspect(bytes, isBinary)
    if (verdict.refused === null) upstream.send(bytes, { binary: isBinary })
    else opts.refuse(client, verdict)
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

/** A message as one buffer, however `ws` delivered it. */
export function asBuffer (data: RawData): Buffer {
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer)
}

/** A close code one side can pass to the other (1005 and 1006 only describe what happened). */
function sendable (code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999)
}

/** The upstream's handshake headers as header lines, less those of the handshake itself. */
export function headerLines (raw: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? ''
    if (!HANDSHAKE.test(name)) out.push(`${name}: ${raw[i + 1] ?? ''}`)
  }
  return out
}
