// The admin listener, on its own host and port and never reachable through the proxy port:
// /healthz (the process is alive), /readyz (a valid revision is in force and the gateway is
// not shutting down), /metrics (Prometheus text format).
import fastify, { type FastifyInstance } from 'fastify'
import type { Metrics } from './metrics.js'

export interface AdminState {
  ready: boolean
}

export async function buildAdmin (metrics: Metrics, state: AdminState): Promise<FastifyInstance> {
  const admin = fastify({ logger: false })
  admin.get('/healthz', async () => ({ status: 'ok' }))
  admin.get('/readyz', async (_req, reply) => {
    if (!state.ready) return reply.code(503).send({ status: 'not ready' })
    return { status: 'ready' }
  })
  admin.get('/metrics', async (_req, reply) => {
    reply.type(metrics.registry.contentType)
    return metrics.registry.metrics()
  })
  return admin
}
