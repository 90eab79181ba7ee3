// The undici dispatchers under @fastify/reply-from and the identity key fetches, built once per
// revision (runtime.ts): one pool Agent per distinct way of reaching an upstream (its connect
// timeout, its TLS, whether it may use the egress proxy), each connecting through
// proxy/egress.ts; first-byte and idle timeouts are applied per request. TLS is verified
// against the system's CAs (and NODE_EXTRA_CA_CERTS) or the upstream's own `tls.ca`.
// (reply-from's own default Agent sets tls.rejectUnauthorized = false, which a gateway holding
// provider keys cannot accept.) A request goes out the way its own revision says for its plan's
// target (transport/forward.ts tags it with `withRoute`). A new revision takes over the Agents
// whose settings did not change, so that a reload keeps warm connections; the others close once
// no request of the revisions that hold them can still be sent.
import { createHash } from 'node:crypto'
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

/** Every way out of one revision: a route per upstream, and one for the rest (identity keys). */
export class Egress {
  readonly #byName = new Map<string, EgressRoute>()
  readonly #byOrigin = new Map<string, Array<{ base: string, route: EgressRoute }>>()
  readonly #ways = new Map<string, Way>()
  /** For what is not an upstream (identity keys): the egress proxy and no_proxy, the system's CAs. */
  readonly fallback: EgressRoute
  readonly config: EgressConfig

  constructor (config: EgressConfig, upstreams: Iterable<UpstreamConfig>, previous?: Egress) {
    this.config = config
    // Everything a connection is made with: the same key is the same way out (kept across reloads).
    const proxies = JSON.stringify(config)
    const way = (direct: boolean, tls: ConnectionOptions, connectMs: number): Way => {
      const key = createHash('sha256').update(JSON.stringify([direct ? null : proxies, connectMs, tls])).digest('hex')
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
      const w = way(up.proxy === 'none', tlsOptions(up), up.timeouts.connectMs)
      const route = { dispatcher: w.agent, connect: w.connect, timeouts: up.timeouts }
      this.#byName.set(up.name, route)
      const u = new URL(up.url)
      const list = this.#byOrigin.get(u.origin) ?? []
      list.push({ base: u.pathname.replace(/\/$/, ''), route })
      this.#byOrigin.set(u.origin, list.sort((a, b) => b.base.length - a.base.length))
    }
    const w = way(false, {}, DEFAULT_TIMEOUTS.connectMs)
    this.fallback = { dispatcher: w.agent, connect: w.connect, timeouts: DEFAULT_TIMEOUTS }
  }

  /** The route of one of this revision's upstreams. */
  routeFor (upstream: UpstreamConfig): EgressRoute {
    return this.#byName.get(upstream.name) ?? this.fallback
  }

  /** For a request not tagged with its route: the upstream its URL (origin, path) belongs to. */
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

  /** Its Agents (some shared with other revisions). */
  get agents (): ReadonlySet<Agent> {
    return new Set([...this.#ways.values()].map((w) => w.agent))
  }
}

/** An upstream's tls: as Node's TLS options; what is not given stays Node's default (the system's CAs). */
function tlsOptions (up: UpstreamConfig): ConnectionOptions {
  const t = up.tls
  if (t === null) return {}
  return {
    ...(t.ca === null ? {} : { ca: t.ca }),
    ...(t.cert === null || t.key === null ? {} : { cert: t.cert, key: t.key }),
    ...(t.servername === null ? {} : { servername: t.servername }),
    ...(t.minVersion === null ? {} : { minVersion: t.minVersion }),
  }
}

const kRoute = Symbol('geofence.egressRoute')

/**
 * Tags outgoing headers with the route they must go out by. A symbol key is never sent (undici
 * reads string keys), and reply-from copies the headers object whole to the dispatcher.
 */
export function withRoute<H extends object> (headers: H, route: EgressRoute): H {
  return Object.assign(headers, { [kRoute]: route })
}

/**
 * The dispatcher reply-from is registered with (once, in app.ts): each request goes out by the
 * route it is tagged with (its own revision's, for its plan's target), with that upstream's
 * first-byte and idle timeouts. It also closes the Agents of replaced revisions: a revision
 * stays live for `graceMs` after it was replaced (the longest a request that started under it
 * can take to be forwarded), and an Agent closes, once its requests finish, when no live
 * revision holds it.
 */
export class UpstreamDispatcher extends Dispatcher {
  readonly #current: () => Egress
  readonly #graceMs: number
  #seen: Egress | null = null
  readonly #replaced = new Set<Egress>()

  constructor (current: () => Egress, graceMs: number) {
    super()
    this.#current = current
    this.#graceMs = graceMs
  }

  override dispatch (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    this.#observe()
    let route: EgressRoute | undefined
    let headers = opts.headers
    if (typeof headers === 'object' && headers !== null && kRoute in headers) {
      const { [kRoute]: tagged, ...rest } = headers as Record<string, string> & { [kRoute]: EgressRoute }
      route = tagged
      headers = rest
    }
    route ??= this.#current().route(String(opts.origin ?? ''), opts.path)
    return route.dispatcher.dispatch({ ...opts, headers, headersTimeout: route.timeouts.firstByteMs, bodyTimeout: route.timeouts.idleMs }, handler)
  }

  /** Notes a new revision: the one it replaced is retired after the grace. */
  #observe (): void {
    const current = this.#current()
    if (this.#seen === current) return
    const replaced = this.#seen
    this.#seen = current
    if (replaced === null) return
    this.#replaced.add(replaced)
    setTimeout(() => {
      this.#replaced.delete(replaced)
      const live = new Set([...this.#current().agents, ...[...this.#replaced].flatMap((e) => [...e.agents])])
      for (const agent of replaced.agents) if (!live.has(agent)) void agent.close()
    }, this.#graceMs).unref()
  }

  override async close (): Promise<void> {
    await Promise.all([...this.#all()].map(async (a) => a.close()))
  }

  override async destroy (): Promise<void> {
    await Promise.all([...this.#all()].map(async (a) => a.destroy()))
  }

  #all (): Set<Agent> {
    return new Set([this.#current(), ...(this.#seen === null ? [] : [this.#seen]), ...this.#replaced].flatMap((e) => [...e.agents]))
  }
}
