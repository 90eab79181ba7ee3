// The undici dispatcher under @fastify/reply-from: per-upstream connect, first-byte and idle
// timeouts, and TLS verified against the system's CAs. (reply-from's own default Agent sets
// tls.rejectUnauthorized = false, which a gateway holding provider keys cannot accept.)
import { Agent, Dispatcher } from 'undici'
import type { UpstreamTimeouts } from '../config/validate.js'

export const POOL_OPTIONS = { connections: 128, pipelining: 1, keepAliveTimeout: 30_000 } as const

export class UpstreamDispatcher extends Dispatcher {
  readonly #lookup: (origin: string, path: string) => UpstreamTimeouts
  /** One Agent (pools for every origin) per connect timeout in use. */
  readonly #agents = new Map<number, Agent>()

  constructor (lookup: (origin: string, path: string) => UpstreamTimeouts) {
    super()
    this.#lookup = lookup
  }

  override dispatch (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const t = this.#lookup(String(opts.origin ?? ''), opts.path)
    let agent = this.#agents.get(t.connectMs)
    if (agent === undefined) {
      agent = new Agent({ ...POOL_OPTIONS, connect: { timeout: t.connectMs } })
      this.#agents.set(t.connectMs, agent)
    }
    return agent.dispatch({ ...opts, headersTimeout: t.firstByteMs, bodyTimeout: t.idleMs }, handler)
  }

  override async close (): Promise<void> {
    await Promise.all([...this.#agents.values()].map(async (a) => a.close()))
  }

  override async destroy (): Promise<void> {
    await Promise.all([...this.#agents.values()].map(async (a) => a.destroy()))
  }
}
