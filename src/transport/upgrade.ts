// An upgrade's socket and first bytes, kept on its request while it goes through Fastify's
// routing (app.ts), apart from the WebSocket adapter (transport/websocket.ts) so that `ws` is
// loaded only for a configuration that has a WebSocket endpoint.
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Config } from '../config/load.js'
import { DIALECTS } from '../dialects/registry.js'
import { GatewayError } from '../errors.js'
import type { RequestState } from '../pipeline/state.js'

/** The socket and first bytes of an upgrade, kept on its request while it goes through routing. */
export interface Upgrade {
  socket: Duplex
  head: Buffer
}

const kUpgrade = Symbol('geofence.upgrade')
type UpgradeRequest = IncomingMessage & { [kUpgrade]?: Upgrade }

export function markUpgrade (req: IncomingMessage, upgrade: Upgrade): void {
  (req as UpgradeRequest)[kUpgrade] = upgrade
}

export function upgradeOf (req: IncomingMessage): Upgrade | undefined {
  return (req as UpgradeRequest)[kUpgrade]
}

/** Whether a configuration has an upstream whose dialect takes WebSocket sessions (OpenAI Realtime, Gemini Live). */
export function takesWebSockets (config: Config): boolean {
  for (const u of config.upstreams.values()) if (DIALECTS[u.dialect].webSockets === true) return true
  return false
}

/** An upgrade is taken only where the session names its model: in its query (OpenAI Realtime) or its first message (Gemini Live). */
export function checkUpgradeEndpoint (st: RequestState): void {
  const source = st.endpoint?.modelSource.kind
  if (st.endpoint !== null && source !== 'query' && source !== 'setup') {
    throw new GatewayError('invalid_request', 'a WebSocket upgrade is taken only where the session names its model (OpenAI Realtime: GET /v1/realtime?model=...; Gemini Live: its first message)')
  }
}
