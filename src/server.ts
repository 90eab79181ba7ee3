// The listening gateway: load and check everything first (nothing listens on a bad config or
// database), then listen on the proxy and admin ports and watch for changes. Shutdown is
// graceful: readiness turns false, the listener stops accepting, requests and streams in
// flight finish up to server.shutdown_grace, and whatever is left is cut and logged.
import type { Http2Session } from 'node:http2'
import type { Socket } from 'node:net'
import type { Server as TlsServer } from 'node:tls'
import type { FastifyInstance } from 'fastify'
import type { DestinationStream, Logger } from 'pino'
import { buildApp, secureContext } from './app.js'
import type { ServerTls } from './config/validate.js'
import { buildAdmin, type AdminState } from './observability/admin.js'
import { createLogger, processDestination } from './observability/logger.js'
import { Metrics } from './observability/metrics.js'
import { Reloader, type ReloaderOptions, type ReloadResult } from './reload.js'
import type { IdentityObserver } from './identity/verifier.js'
import { loadRuntime, type Runtime, type RuntimeOptions, type RuntimeRef } from './runtime.js'
import { loadBootstrap } from './config/load.js'
import { PolicySource } from './policy-source.js'

export interface RunningGateway {
  app: FastifyInstance
  admin: FastifyInstance
  /** The revision in force (it changes on reload). */
  readonly runtime: Runtime
  logger: Logger
  metrics: Metrics
  /** http://host:port (https:// with server.tls) of the proxy listener as bound (port 0 in the config picks a free port). */
  url: string
  /** http://host:port of the admin listener. */
  adminUrl: string
  /** Build and swap in a new revision now (what SIGHUP does). */
  reload: (trigger?: string) => Promise<ReloadResult>
  /** Graceful: stop accepting, let requests in flight finish up to the grace, then cut. */
  close: () => Promise<void>
}

export interface StartOptions {
  /** Where log lines go (stdout, asynchronously, by default). */
  destination?: DestinationStream
  /** Watching and polling for changes; `false` turns it off. */
  reload?: ReloaderOptions | false
  /** The admin listener; off in cluster workers (the primary serves it for all). */
  admin?: boolean
  /** The policy_signature keys read at start (a cluster worker gets the primary's); default: the file's own. */
  policyKeys?: RuntimeOptions['policyKeys']
}

function listenUrl (app: FastifyInstance, host: string, port: number, scheme = 'http'): string {
  const addr = app.server.address()
  const bound = typeof addr === 'object' && addr !== null ? addr : { address: host, port }
  const hostText = bound.address.includes(':') ? `[${bound.address}]` : bound.address
  return `${scheme}://${hostText}:${bound.port}`
}

/**
 * The TLS listener's connections, for shutdown (an HTTP/2 server tracks none): `goAway` tells
 * every HTTP/2 client to go (GOAWAY; streams under way finish), and any that connects after
 * it; the sockets are what a cut destroys.
 */
function tlsConnections (app: FastifyInstance): { sockets: Set<Socket>, goAway: () => void } {
  const sockets = new Set<Socket>()
  const sessions = new Set<Http2Session>()
  let going = false
  app.server.on('secureConnection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => { sockets.delete(socket) })
  })
  app.server.on('session', (session: Http2Session) => {
    if (going) {
      session.close()
      return
    }
    sessions.add(session)
    session.once('close', () => { sessions.delete(session) })
  })
  return {
    sockets,
    goAway: () => {
      going = true
      for (const session of sessions) session.close()
    },
  }
}

/**
 * The listener's certificate, key and client CAs follow each revision (a renewed certificate
 * renamed into place is served to new connections without a restart); turning TLS on or off,
 * or changing client_certificate, needs one.
 */
function tlsFollower (app: FastifyInstance, atStart: ServerTls | null, logger: Logger): (next: ServerTls | null) => void {
  let applied = atStart
  return (next) => {
    if (next === applied || (next !== null && applied !== null && next.cert === applied.cert && next.key === applied.key && next.clientCa === applied.clientCa && next.clientCertificate === applied.clientCertificate)) return
    if (atStart === null || next === null || next.clientCertificate !== atStart.clientCertificate) {
      logger.warn({ at_start: atStart?.clientCertificate ?? 'no tls', now: next?.clientCertificate ?? 'no tls' }, 'server.tls is turned on or off, and client_certificate changed, only by a restart')
      if (atStart === null || next === null) return
    }
    (app.server as unknown as TlsServer).setSecureContext(secureContext(next))
    applied = next
    logger.info({ files: next.files }, 'listener certificate reloaded')
  }
}

export async function startGateway (configFile: string, opts: StartOptions = {}): Promise<RunningGateway> {
  const ref = { current: null as unknown as Runtime } satisfies RuntimeRef
  const metrics = new Metrics(ref)
  const observer = {
    hit: () => { metrics.cache.inc({ result: 'hit' }) },
    miss: () => { metrics.cache.inc({ result: 'miss' }) },
    error: () => { metrics.lookupErrors.inc() },
  }
  let log: Logger | undefined
  const identityObserver: IdentityObserver = {
    onToken: (result, issuer) => { metrics.identityTokens.inc({ result, issuer: issuer ?? 'none' }) },
    onKeyFetch: (e) => {
      metrics.identityKeyFetches.inc({ issuer: e.issuer, trigger: e.trigger, result: e.result })
      if (e.result === 'ok') metrics.identityKeysFetched.set({ issuer: e.issuer }, Date.now() / 1000)
      else log?.warn({ issuer: e.issuer, trigger: e.trigger, error: e.error }, 'identity keys could not be fetched')
    },
  }
  // A bootstrap file (policy_source): the policy is fetched (or read from cache_dir) first.
  const bootstrap = await loadBootstrap(configFile, process.env, { policyKeys: opts.policyKeys ?? 'own' })
  const source = bootstrap === null
    ? null
    : new PolicySource(bootstrap.policySource, Array.isArray(opts.policyKeys) ? opts.policyKeys : bootstrap.policySignature?.keys ?? [], configFile, {
      onFetch: (result) => { metrics.policySource.fetched(result) },
      onConfirmed: (epochMs) => { metrics.policySource.confirmed(epochMs) },
    })
  const startOptions: RuntimeOptions = { observer, identityObserver, policyKeys: opts.policyKeys ?? 'own' }
  ref.current = source === null
    ? await loadRuntime(configFile, startOptions)
    : await source.start(async (fetched) => loadRuntime(configFile, { ...startOptions, fetched: () => fetched }))
  if (bootstrap !== null) metrics.policySource.polling(bootstrap.policySource.pollMs)
  // policy_signature is read at start only: every reload must be signed with these keys.
  const policyKeys = opts.policyKeys === undefined || opts.policyKeys === 'own' ? ref.current.config.policySignature?.keys ?? null : opts.policyKeys
  const { config } = ref.current
  const sink = opts.destination ?? processDestination()
  // logging.integrity: every line chained, checkpoints signed (read at start only).
  const { integrity } = config.logging
  // The chain (evidence/log-chain.ts) is loaded only where a config asks for it.
  const chain = integrity === null ? null : await import('./evidence/log-chain.js').then(async ({ currentSlot, openLogChain }) => openLogChain(sink, { integrity, slot: currentSlot(), config: config.file, policyRevision: ref.current.policy.revision }))
  const logger = createLogger(config.logging.level, chain ?? sink)
  log = logger
  const app = await buildApp(ref, { logger, metrics })
  const state: AdminState = {
    ready: false,
    waitingFor: () => (ref.current.identity === null || ref.current.identity.ready() ? null : 'the identity issuers\' keys'),
  }
  const admin = await buildAdmin(metrics, state)
  await listenOrSay(app, 'server', config.server.host, config.server.port)
  if (opts.admin !== false) {
    try {
      await listenOrSay(admin, 'admin', config.admin.host, config.admin.port)
    } catch (err) {
      await app.close()
      throw err
    }
  }
  const url = listenUrl(app, config.server.host, config.server.port, config.server.tls === null ? 'http' : 'https')
  const connections = tlsConnections(app)
  const followTls = tlsFollower(app, config.server.tls, logger)
  const adminUrl = opts.admin === false ? '' : listenUrl(admin, config.admin.host, config.admin.port)
  const reloadOptions: ReloaderOptions = {
    ...(opts.reload === false ? { pollMs: 0 } : opts.reload),
    // A new revision has what it needs loaded (the WebSocket adapter) before it is swapped in.
    runtime: { observer, identityObserver, policyKeys, ...(source === null ? {} : { fetched: () => source.current }), prepare: async (runtime) => app.prepareRevision(runtime) },
    onResult: (r) => {
      metrics.reloads.inc({ result: r.ok ? 'success' : 'failure' })
      if (r.ok) followTls(ref.current.config.server.tls)
    },
  }
  const reloader = new Reloader(ref, configFile, logger, reloadOptions)
  if (opts.reload !== false) await reloader.start()
  if (source !== null) {
    source.attach(logger)
    source.poll(async (fetched, accept) => reloader.reloadWith('policy_source', fetched, accept))
  }
  state.ready = true
  logger.info({
    url,
    admin: adminUrl,
    policy_revision: ref.current.policy.revision,
    ...(ref.current.config.policyKey === null ? {} : { policy_key: ref.current.config.policyKey }),
    config: configFile,
    ...(ref.current.config.policySource === null ? {} : { policy_source: ref.current.config.policySource.url }),
    databases: ref.current.locator.databases.map((d) => ({ file: d.file, type: d.type, build: d.buildEpoch.toISOString() })),
    egress: ref.current.egress.describe(ref.current.config.upstreams.values()),
  }, 'listening')

  let closing: Promise<void> | null = null
  const close = async (): Promise<void> => {
    closing ??= (async () => {
      state.ready = false
      reloader.close()
      source?.close()
      const grace = ref.current.config.server.shutdownGraceMs
      let timer: NodeJS.Timeout | undefined
      const graceOver = new Promise<'cut'>((resolve) => { timer = setTimeout(() => { resolve('cut') }, grace) })
      // HTTP/2 clients are told to go (GOAWAY) at once; their streams under way finish.
      connections.goAway()
      const outcome = await Promise.race([app.close().then(() => 'done' as const), graceOver])
      clearTimeout(timer)
      if (outcome === 'cut') {
        const left = await metrics.inflight.get()
        logger.warn({ requests: left.values[0]?.value ?? 0, grace_ms: grace }, 'shutdown grace over: cutting the requests still in flight')
        // An HTTP/2 server (the TLS listener) has no closeAllConnections: its sockets are cut one by one.
        if (typeof app.server.closeAllConnections === 'function') app.server.closeAllConnections()
        for (const socket of connections.sockets) socket.destroy()
        for (const socket of app.tunnels) socket.destroy()
        await app.close()
      }
      await admin.close()
      logger.info({ outcome }, 'stopped')
      chain?.close()
      logger.flush()
    })()
    return closing
  }

  return {
    app,
    admin,
    get runtime () { return ref.current },
    logger,
    metrics,
    url,
    adminUrl,
    reload: async (trigger = 'api') => reloader.reload(trigger),
    close,
  }
}

/** A listener that cannot be opened, said as a person can act on it: the setting, the address, the cause. */
export class ListenError extends Error {
  constructor (readonly setting: 'server' | 'admin', host: string, port: number, code: string | undefined) {
    const why = code === 'EADDRINUSE'
      ? 'the port is already in use (another gateway, or another program)'
      : code === 'EACCES'
        ? 'this user may not open the port (ports below 1024 need privileges)'
        : code === 'EADDRNOTAVAIL'
          ? 'no interface of this machine has that address'
          : `it cannot be opened (${code ?? 'unknown error'})`
    super(`${setting}.host/${setting}.port: cannot listen on ${host.includes(':') ? `[${host}]` : host}:${port}: ${why}`)
    this.name = 'ListenError'
  }
}

async function listenOrSay (app: { listen: (o: { host: string, port: number }) => Promise<string> }, setting: 'server' | 'admin', host: string, port: number): Promise<void> {
  try {
    await app.listen({ host, port })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new ListenError(setting, host, port, code)
    throw err
  }
}
