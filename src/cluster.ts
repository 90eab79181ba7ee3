// server.workers > 1: a primary process that forks the gateway N times (node:cluster; the
// workers share the proxy port) and keeps the admin listener for all of them: health,
// readiness (every worker listening, not shutting down) and the workers' metrics aggregated
// (prom-client's AggregatorRegistry). Signals go to the primary and are passed on; a worker
// that dies outside a shutdown is replaced. With a bootstrap file (policy_source) each worker
// fetches, verifies and applies the policy itself, as each loads and reloads its own revision
// from a file (the primary holds no revision, and the metrics of every fetch are the workers',
// summed by the aggregator); an unchanged poll is a bodyless 304. The CLI checks first, in the
// primary, that an approved policy can be had, so that a host without one does not start.
import cluster, { type Worker } from 'node:cluster'
import { AggregatorRegistry } from 'prom-client'
import fastify from 'fastify'
import type { Config } from './config/load.js'
import { createLogger, processDestination } from './observability/logger.js'
import { SLOT_ENV, openLogChain } from './evidence/log-chain.js'

export const READY_MESSAGE = 'geofence:ready'
/** The policy_signature keys the primary read at start (SPKI PEMs, JSON; null: none), for every worker it forks. */
export const POLICY_KEYS_ENV = 'GEOFENCE_POLICY_KEYS'

export async function runPrimary (config: Pick<Config, 'file' | 'revision' | 'server' | 'admin' | 'logging' | 'policySignature'>): Promise<void> {
  const { integrity } = config.logging
  const chain = integrity === null ? null : await openLogChain(processDestination(), { integrity, slot: 'primary', config: config.file, policyRevision: config.revision })
  const logger = createLogger(config.logging.level, chain ?? undefined)
  const aggregator = new AggregatorRegistry()
  const ready = new Set<number>()
  let stopping = false

  // A worker started later (a replacement) requires what the primary required at start, whatever the file says by then.
  const policyKeys = JSON.stringify(config.policySignature?.keys.map((k) => k.key.export({ type: 'spki', format: 'pem' })) ?? null)
  // Each worker keeps its slot across replacements: its new log chain names the last one's checkpoint.
  const slots = new Map<number, string>()
  const fork = (slot: string): Worker => {
    const worker = cluster.fork({ [SLOT_ENV]: slot, [POLICY_KEYS_ENV]: policyKeys })
    slots.set(worker.id, slot)
    worker.on('message', (msg: unknown) => {
      if (msg === READY_MESSAGE) ready.add(worker.id)
    })
    return worker
  }
  cluster.on('exit', (worker, code, signal) => {
    ready.delete(worker.id)
    if (stopping) return
    logger.error({ worker: worker.id, code, signal }, 'worker died; starting another')
    fork(slots.get(worker.id) ?? `worker-${String(worker.id)}`)
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
  for (let i = 1; i <= config.server.workers; i++) fork(`worker-${String(i)}`)
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
        if (--left === 0) void admin.close().then(() => { chain?.close(); logger.flush(); process.exit(0) })
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
