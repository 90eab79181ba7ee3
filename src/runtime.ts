// Everything one config revision needs at request time, built once off the hot path: the
// validated config, the compiled policy, the open databases behind a fresh cache, the
// trusted-proxy set. Building it is all-or-nothing: at start a failure stops the start; at
// reload it leaves the running revision in place.
import { ConfigError, type ConfigProblem } from './errors.js'
import { ConfigLoadError, loadConfig, type Config, type FetchedPolicy, type LoadOptions } from './config/load.js'
import { EMBEDDED_DATABASE, type GeoipFiles } from './config/validate.js'
import { AddressSet } from './geo/address.js'
import type { ClientIpOptions } from './geo/client-ip.js'
import { DEFAULT_DATABASE, DatabaseError, openDatabase, type DatabaseKind, type GeoDatabase } from './geo/databases.js'
import { Locator, type LocatorObserver } from './geo/locator.js'
import { clientIpPresenter, subjectPresenter } from './observability/client-ip-privacy.js'
import { compilePolicy, type Policy } from './policy/compile.js'
import { Egress } from './proxy/dispatcher.js'
import type { Signer } from './proxy/sigv4.js'
import type { IdentityObserver, IdentityVerifier } from './identity/verifier.js'

export interface Runtime {
  config: Config
  policy: Policy
  locator: Locator
  clientIp: ClientIpOptions
  /** How a caller's address appears in logs (logging.client_ip), built once per revision. */
  presentIp: (ip: string | null) => string | null
  /** The gateway's SigV4 signer for each upstream with aws_sigv4, by upstream name. */
  signers: ReadonlyMap<string, Signer>
  /** How each upstream is reached (the egress proxy or direct, its TLS and timeouts), and the identity providers. */
  egress: Egress
  /** The identity token verifier (identity:), or null without that section. */
  identity: IdentityVerifier | null
  /** How an identity's subject appears in logs: hashed as client addresses are (logging.client_ip). */
  presentSubject: (subject: string) => string
}

/** The revision in force; a reload replaces `current` in one assignment. */
export interface RuntimeRef {
  current: Runtime
}

export interface RuntimeOptions {
  observer?: LocatorObserver
  identityObserver?: IdentityObserver
  /** The revision in force: key sets it already holds are taken over, not fetched again. */
  previous?: Runtime
  /** False for tools that read a config without serving it (validate, explain, test): no identity keys are fetched. */
  identityKeys?: boolean
  /** Whose signature the config must carry (config/load.ts): the file's own policy_signature by default. */
  policyKeys?: LoadOptions['policyKeys']
  /** For a bootstrap file (policy_source): the fetched policy to build on (the last good one, or a candidate). */
  fetched?: () => FetchedPolicy | null
  /** Loads what the revision needs to serve (app.ts's prepareRevision), before it is returned, so before it is swapped in. */
  prepare?: (runtime: Runtime) => Promise<void>
}

/** Opens every database geoip names; each that cannot be used is a problem at its key. */
async function openDatabases (geoip: GeoipFiles, position: Config['position']): Promise<{ databases: GeoDatabase[], problems: ConfigProblem[] }> {
  const wanted: Array<{ file: string, kind: DatabaseKind, path: Array<string | number> }> =
    geoip.databases.length === 0
      ? [{ file: DEFAULT_DATABASE, kind: 'location', path: ['geoip'] }]
      : geoip.databases.map((f, i) => ({ file: f === EMBEDDED_DATABASE ? DEFAULT_DATABASE : f, kind: 'location', path: ['geoip', 'databases', i] }))
  if (geoip.anonymousIp !== null) wanted.push({ file: geoip.anonymousIp, kind: 'anonymous', path: ['geoip', 'anonymous_ip'] })

  const opened = await Promise.allSettled(wanted.map(async (w) => openDatabase(w.file, w.kind)))
  const problems: ConfigProblem[] = []
  const databases: GeoDatabase[] = []
  opened.forEach((r, i) => {
    const path = wanted[i]?.path ?? ['geoip']
    if (r.status === 'fulfilled') databases.push(r.value)
    else problems.push({ path, message: `cannot use the database ${r.reason instanceof DatabaseError ? r.reason.message : String(r.reason)}`, ...position(path) })
  })
  return { databases, problems }
}

/**
 * The config of a file, as loadConfig reads it; when it has problems, the databases it names
 * are opened too, so that one run reports every problem of the file, databases included.
 */
export async function loadCheckedConfig (file: string, env: NodeJS.ProcessEnv = process.env, opts: LoadOptions = {}): Promise<Config> {
  try {
    return await loadConfig(file, env, opts)
  } catch (err) {
    if (!(err instanceof ConfigLoadError) || err.geoip === null) throw err
    const { problems } = await openDatabases(err.geoip, err.position)
    if (problems.length === 0) throw err
    throw new ConfigError(err.file, [...err.problems, ...problems].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.col ?? 0) - (b.col ?? 0)))
  }
}

export async function createRuntime (config: Config, opts: RuntimeOptions = {}): Promise<Runtime> {
  const { databases, problems } = await openDatabases(config.geoip, config.position)
  const location = databases.filter((d) => d.kind === 'location')
  if (problems.length === 0 && !location.some((d) => d.hasSubdivisions)) {
    // Naming a subdivision no database can see would be a silent pass: refuse it.
    for (const rule of config.policy.rules) {
      for (const path of rule.subdivisionPaths) {
        problems.push({
          path,
          message: `rule "${rule.name}" names subdivisions (ISO 3166-2), but no configured database carries them: add a City database to geoip.databases, or name countries only (built-in groups have a "-countries" variant)`,
          ...config.position(path),
        })
      }
    }
  }
  if (problems.length > 0) throw new ConfigError(config.file, problems)
  const egress = new Egress(config.egress, config.upstreams.values(), opts.previous?.egress)
  // What only some configurations need is loaded when a revision first needs it, never at
  // start otherwise: jose with identity:, the AWS SDK's SigV4 signer with aws_sigv4.
  const sigv4 = [...config.upstreams.values()].filter((u) => u.awsSigv4 !== null)
  const { sigv4Signer } = sigv4.length === 0 ? { sigv4Signer: null } : await import('./proxy/sigv4.js')
  const identity = config.identity === null || opts.identityKeys === false ? null : config.identity
  const { createIdentityVerifier } = identity === null ? { createIdentityVerifier: null } : await import('./identity/verifier.js')
  const runtime: Runtime = {
    config,
    policy: compilePolicy(config),
    locator: new Locator(location, config.geoip.cache, {
      networks: config.networks,
      anonymous: databases.find((d) => d.kind === 'anonymous') ?? null,
      ...(opts.observer === undefined ? {} : { observer: opts.observer }),
    }),
    clientIp: { trusted: new AddressSet(config.clientIp.trustedProxies), headers: config.clientIp.headers },
    presentIp: clientIpPresenter(config.logging.clientIp, config.logging.clientIpKey),
    egress,
    identity: identity === null || createIdentityVerifier === null
      ? null
      : createIdentityVerifier(identity, {
        dispatcher: egress.fallback.dispatcher,
        ...(opts.identityObserver === undefined ? {} : { observer: opts.identityObserver }),
        ...(opts.previous?.identity == null ? {} : { previous: opts.previous.identity }),
      }),
    presentSubject: subjectPresenter(config.logging.clientIp, config.logging.clientIpKey),
    signers: new Map(sigv4.flatMap((u) => (u.awsSigv4 === null || sigv4Signer === null ? [] : [[u.name, sigv4Signer(u.awsSigv4)] as const]))),
  }
  await opts.prepare?.(runtime)
  return runtime
}

export async function loadRuntime (file: string, opts: RuntimeOptions = {}): Promise<Runtime> {
  return createRuntime(await loadCheckedConfig(file, process.env, { policyKeys: opts.policyKeys, fetched: opts.fetched?.() ?? null }), opts)
}
