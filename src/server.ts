// The listening gateway: load and check everything first (nothing listens on a bad config or
// database), then listen and watch for changes; close cleanly on request.
import type { FastifyInstance } from 'fastify'
import type { DestinationStream, Logger } from 'pino'
import { buildApp } from './app.js'
import { createLogger } from './observability/logger.js'
import { Reloader, type ReloaderOptions, type ReloadResult } from './reload.js'
import { loadRuntime, type Runtime, type RuntimeRef } from './runtime.js'

export interface RunningGateway {
  app: FastifyInstance
  /** The revision in force (it changes on reload). */
  readonly runtime: Runtime
  logger: Logger
  /** http://host:port as bound (port 0 in the config picks a free port). */
  url: string
  /** Build and swap in a new revision now (what SIGHUP does). */
  reload: (trigger?: string) => Promise<ReloadResult>
  close: () => Promise<void>
}

export interface StartOptions {
  /** Where log lines go (stdout by default). */
  destination?: DestinationStream
  /** Watching and polling for changes; `false` turns it off. */
  reload?: ReloaderOptions | false
}

export async function startGateway (configFile: string, opts: StartOptions = {}): Promise<RunningGateway> {
  const ref: RuntimeRef = { current: await loadRuntime(configFile) }
  const logger = createLogger(ref.current.config.logging.level, opts.destination)
  const app = await buildApp(ref, { logger })
  const { host, port } = ref.current.config.server
  await app.listen({ host, port })
  const addr = app.server.address()
  const bound = typeof addr === 'object' && addr !== null ? addr : { address: host, port }
  const hostText = bound.address.includes(':') ? `[${bound.address}]` : bound.address
  const url = `http://${hostText}:${bound.port}`
  const reloader = new Reloader(ref, configFile, logger, opts.reload === false ? { pollMs: 0 } : opts.reload)
  if (opts.reload !== false) await reloader.start()
  logger.info({
    url,
    policy_revision: ref.current.policy.revision,
    config: ref.current.config.file,
    databases: ref.current.locator.databases.map((d) => ({ file: d.file, type: d.type, build: d.buildEpoch.toISOString() })),
  }, 'listening')
  return {
    app,
    get runtime () { return ref.current },
    logger,
    url,
    reload: async (trigger = 'api') => reloader.reload(trigger),
    close: async () => {
      reloader.close()
      await app.close()
    },
  }
}
