// Everything one config revision needs at request time, built once off the hot path:
// the validated config, the compiled policy, the open databases behind their cache, the
// trusted-proxy set. A start with anything unusable throws and nothing listens.
import { ConfigError } from './errors.js'
import { loadConfig, type Config } from './config/load.js'
import { AddressSet } from './geo/address.js'
import type { ClientIpOptions } from './geo/client-ip.js'
import { DatabaseError, openDatabase } from './geo/databases.js'
import { DEFAULT_DATABASE } from './geo/databases.js'
import { Locator } from './geo/locator.js'
import { compilePolicy, type Policy } from './policy/compile.js'

export interface Runtime {
  config: Config
  policy: Policy
  locator: Locator
  clientIp: ClientIpOptions
}

export async function createRuntime (config: Config): Promise<Runtime> {
  const files = config.geoip.databases.length === 0 ? [DEFAULT_DATABASE] : config.geoip.databases
  const opened = await Promise.allSettled(files.map(openDatabase))
  const problems = opened.flatMap((r, i) => {
    if (r.status === 'fulfilled') return []
    const path = config.geoip.databases.length === 0 ? ['geoip'] : ['geoip', 'databases', i]
    const message = r.reason instanceof DatabaseError ? r.reason.message : String(r.reason)
    return [{ path, message: `cannot use the database ${message}`, ...config.position(path) }]
  })
  if (problems.length > 0) throw new ConfigError(config.file, problems)
  const databases = opened.map((r) => (r as PromiseFulfilledResult<Awaited<ReturnType<typeof openDatabase>>>).value)
  return {
    config,
    policy: compilePolicy(config),
    locator: new Locator(databases, config.geoip.cache),
    clientIp: { trusted: new AddressSet(config.clientIp.trustedProxies), headers: config.clientIp.headers },
  }
}

export async function loadRuntime (file: string): Promise<Runtime> {
  return createRuntime(await loadConfig(file))
}
