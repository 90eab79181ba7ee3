// The listening gateway: load and check everything first (nothing listens on a bad config or
// database), then listen, and close cleanly on SIGTERM/SIGINT.
import type { FastifyInstance } from 'fastify'
import type { DestinationStream, Logger } from 'pino'
import { buildApp } from './app.js'
import { createLogger } from './observability/logger.js'
import { loadRuntime, type Runtime, type RuntimeRef } from './runtime.js'

export interface RunningGateway {
  app: FastifyInstance
  runtime: Runtime
  logger: Logger
  /** http://host:port as bound (port 0 in the config picks a free port). */
  url: string
  close: () => Promise<void>
}

export interface StartOptions {
  /** Where log lines go (stdout by default). */
  destination?: DestinationStream
}

export async function startGateway (configFile: string, opts: StartOptions = {}): Promise<RunningGateway> {
  const runtime = await loadRuntime(configFile)
  const logger = createLogger(runtime.config.logging.level, opts.destination)
  const ref: RuntimeRef = { current: runtime }
  const app = await buildApp(ref, { logger })
  const { host, port } = runtime.config.server
  await app.listen({ host, port })
  const addr = app.server.address()
  const bound = typeof addr === 'object' && addr !== null ? addr : { address: host, port }
  const hostText = bound.address.includes(':') ? `[${bound.address}]` : bound.address
  const url = `http://${hostText}:${bound.port}`
  logger.info({
    url,
    policy_revision: runtime.policy.revision,
    config: runtime.config.file,
    databases: runtime.locator.databases.map((d) => ({ file: d.file, type: d.type, build: d.buildEpoch.toISOString() })),
  }, 'listening')
  return { app, runtime, logger, url, close: async () => { await app.close() } }
}
