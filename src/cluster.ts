// server.workers > 1: a primary process that forks the gateway N times (node:cluster; the
// workers share the proxy port) and keeps the admin listener for all of them: health,
// readiness (every worker listening, not shutting down) and the workers' metrics aggregated
// (prom-client's AggregatorRegistry). Signals go to the primary and are passed on; a worker
// that dies outside a shutdown is replaced.
import cluster, { type Worker } from 'node:cluster'
import { AggregatorRegistry } from 'prom-client'
import fastify from 'fastify'
import type { Config } from './config/load.js'
import { createLogger } from './observability/logger.js'

export const READY_MESSAGE = 'geofence:ready'

export async function runPrimary (config: Config): Promise<void> {
  const logger = createLogger(config.logging.level)
  const aggregator = new AggregatorRegistry()
  const ready = new Set<number>()
  let stopping = false

  const fork = (): Worker => {
    const worker = cluster.fork()
    worker.on('message', (msg: unknown) => {
      if (msg === READY_MESSAGE) ready.add(worker.id)
    })
    return worker
  }
  cluster.on('exit', (worker, code, signal) => {
    ready.delete(worker.id)
    if (stopping) return
    logger.error({ worker: worker.id, code, signal }, 'worker died; starting another')
    fork()
  })

  const admin = fastify({ logger: false })
  admin.get('/healthz', async () => ({ status: 'ok' }))
  admin.get('/readyz', async (_req, reply) => {
    const ok = !stopping && ready.size === config.server.workers
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not ready', workers_ready: ready.size, workers: config.server.workers })
  })
  admin.get('/metrics', async (_req, reply) => {
    reply.type(aggregator.contentType)
    return aggregator.clusterMetrics()
  })
  await admin.listen({ host: config.admin.host, port: config.admin.port })
  for (let i = 0; i < config.server.workers; i++) fork()
  logger.info({ workers: config.server.workers, admin: `http://${config.admin.host}:${String((admin.server.address() as { port: number }).port)}` }, 'primary started')

  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return
    stopping = true
    logger.info({ signal }, 'shutting down the workers')
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined)
    let left = workers.length
    if (left === 0) process.exit(0)
    for (const w of workers) {
      w.once('exit', () => {
        if (--left === 0) void admin.close().then(() => { logger.flush(); process.exit(0) })
      })
      w.process.kill(signal)
    }
  }
  process.once('SIGTERM', () => { stop('SIGTERM') })
  process.once('SIGINT', () => { stop('SIGINT') })
  process.on('SIGHUP', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGHUP')
  })
}
