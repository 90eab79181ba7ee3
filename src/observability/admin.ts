// The admin listener, on its own host and port and never reachable through the proxy port:
// /healthz (the process is alive), /readyz (a valid revision is in force and the gateway is
// not shutting down, and every identity issuer's keys were loaded once), /metrics (Prometheus text format).
import fastify, { type FastifyInstance } from 'fastify'
import type { Metrics } from './metrics.js'

export interface AdminState {
  /** A valid revision is in force and the gateway is not shutting down. */
  ready: boolean
  /** What else readiness waits for (every identity issuer's keys loaded once); null when ready. */
  waitingFor?: () => string | null
}

export async function buildAdmin (metrics: Metrics, state: AdminState): Promise<FastifyInstance> {
  const admin = fastify({ logger: false })
  admin.get('/healthz', async () => ({ status: 'ok' }))
  admin.get('/readyz', async (_req, reply) => {
    if (!state.ready) return reply.code(503).send({ status: 'not ready' })
    const waiting = state.waitingFor?.() ?? null
    if (waiting !== null) return reply.code(503).send({ status: 'not ready', waiting_for: waiting })
    return { status: 'ready' }
  })
  admin.get('/metrics', async (_req, reply) => {
    reply.type(metrics.registry.contentType)
    return metrics.registry.metrics()
  })
  return admin
}
