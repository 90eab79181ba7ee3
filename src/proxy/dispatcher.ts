// The undici dispatchers under @fastify/reply-from and the identity key fetches, built once per
// revision (runtime.ts): one pool Agent per distinct way of reaching an upstream (its connect
// timeout, its TLS, whether it may use the egress proxy), each connecting through
// proxy/egress.ts; first-byte and idle timeouts are applied per request. TLS is verified
// against the system's CAs (and NODE_EXTRA_CA_CERTS) or the upstream's own `tls.ca`.
// (reply-from's own default Agent sets tls.rejectUnauthorized = false, which a gateway holding
// provider keys cannot accept.) A new revision takes over the Agents whose settings did not
// change, so that a reload keeps warm connections; the rest are retired (closed once their
// requests finish).
import type { ConnectionOptions } from 'node:tls'
import { Agent, Dispatcher } from 'undici'
import { DEFAULT_TIMEOUTS, type EgressConfig, type UpstreamConfig, type UpstreamTimeouts } from '../config/validate.js'
import { egressConnector, proxyFor, type Connector } from './egress.js'

export const POOL_OPTIONS = { connections: 128, pipelining: 1, keepAliveTimeout: 30_000 } as const

/** How one upstream is reached. */
export interface EgressRoute {
  /** The undici Agent for reply-from (pools per origin). */
  dispatcher: Dispatcher
  /** The same way of connecting, for what undici does not carry (a WebSocket). */
  connect: Connector
  timeouts: UpstreamTimeouts
}

interface Way {
  key: string
  agent: Agent
  connect: Connector
}

/** An upstream's TLS options as read for its revision (PEM contents, not paths). */
export type UpstreamTls = ConnectionOptions

/** Every way out of one revision: a route per upstream (by origin and base path), and one for the rest. */
export class Egress {
  readonly #byOrigin = new Map<string, Array<{ base: string, route: EgressRoute }>>()
  readonly #ways = new Map<string, Way>()
  /** For what is not an upstream (identity keys): the egress proxy and no_proxy, the system's CAs. */
  readonly fallback: EgressRoute
  readonly config: EgressConfig

  constructor (config: EgressConfig, upstreams: Iterable<UpstreamConfig>, tlsOf: (upstream: UpstreamConfig) => UpstreamTls, previous?: Egress) {
    this.config = config
    // Everything a connection is made with: the same key is the same way out (kept across reloads).
    const proxies = JSON.stringify(config)
    const way = (direct: boolean, tls: UpstreamTls, connectMs: number): Way => {
      const key = JSON.stringify([direct ? null : proxies, connectMs, Object.entries(tls).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString('base64') : v])])
      const had = this.#ways.get(key) ?? (previous === undefined ? undefined : previous.#ways.get(key))
      if (had !== undefined) {
        this.#ways.set(key, had)
        return had
      }
      const connect = egressConnector({ egress: config, direct, tls, connectMs })
      const made = { key, connect, agent: new Agent({ ...POOL_OPTIONS, connect: connect as never }) }
      this.#ways.set(key, made)
      return made
    }
    for (const up of upstreams) {
      const w = way(up.proxy === 'none', tlsOf(up), up.timeouts.connectMs)
      const u = new URL(up.url)
      const list = this.#byOrigin.get(u.origin) ?? []
      list.push({ base: u.pathname.replace(/\/$/, ''), route: { dispatcher: w.agent, connect: w.connect, timeouts: up.timeouts } })
      this.#byOrigin.set(u.origin, list.sort((a, b) => b.base.length - a.base.length))
    }
    const w = way(false, {}, DEFAULT_TIMEOUTS.connectMs)
    this.fallback = { dispatcher: w.agent, connect: w.connect, timeouts: DEFAULT_TIMEOUTS }
  }

  /** The route of the upstream a URL (origin, path) belongs to; looked up once per forwarded request. */
  route (origin: string, path: string): EgressRoute {
    return this.#byOrigin.get(origin)?.find((e) => path.startsWith(e.base))?.route ?? this.fallback
  }

  /** Where each upstream's connections go, for the start-up log line: `direct` or the proxy (no credentials). */
  describe (upstreams: Iterable<UpstreamConfig>): Record<string, string> {
    const out: Record<string, string> = {}
    for (const up of upstreams) {
      const u = new URL(up.url)
      const proxy = up.proxy === 'none' ? null : proxyFor(this.config, { protocol: u.protocol, hostname: u.hostname, port: Number(u.port) || (u.protocol === 'https:' ? 443 : 80) })
      out[up.name] = proxy === null ? 'direct' : `via ${proxy.label} (${proxy.from})`
    }
    return out
  }

  /** Closes, once their requests finish (or at once, with `destroy`), the Agents that `next` did not take over. */
  async retire (next: Egress | null, how: 'close' | 'destroy' = 'close'): Promise<void> {
    const kept = next === null ? new Set<Way>() : new Set(next.#ways.values())
    await Promise.all([...this.#ways.values()].filter((w) => !kept.has(w)).map(async (w) => (how === 'close' ? w.agent.close() : w.agent.destroy())))
  }
}

/**
 * The dispatcher reply-from is registered with (once, in app.ts): each request goes out the way
 * the revision in force says, with its upstream's first-byte and idle timeouts.
 */
export class UpstreamDispatcher extends Dispatcher {
  readonly #egress: () => Egress

  constructor (egress: () => Egress) {
    super()
    this.#egress = egress
  }

  override dispatch (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const route = this.#egress().route(String(opts.origin ?? ''), opts.path)
    return route.dispatcher.dispatch({ ...opts, headersTimeout: route.timeouts.firstByteMs, bodyTimeout: route.timeouts.idleMs }, handler)
  }

  override async close (): Promise<void> {
    await this.#egress().retire(null)
  }

  override async destroy (): Promise<void> {
    await this.#egress().retire(null, 'destroy')
  }
}
