// The meaning of a config whose shape already passed: every reference resolves, every country
// code is a country, every CIDR parses, every name is unique. All problems are collected.
import { resolve } from 'node:path'
import type { ConfigProblem } from '../errors.js'
import { parseCidr } from '../geo/address.js'
import type { ForwardingHeader } from '../geo/client-ip.js'
import type { CacheOptions } from '../geo/locator.js'
import { countryCodeProblem } from '../policy/countries.js'
import type { DialectName, RawConfig } from './schema.js'
import { parseDuration, parseSize } from './units.js'

export const DEFAULT_HOST = '127.0.0.1'
export const DEFAULT_PORT = 8080
export const DEFAULT_BODY_LIMIT = 32 * 1024 * 1024
export const DEFAULT_CACHE: CacheOptions = { maxEntries: 100_000, ttlMs: 3_600_000 }
export const DEFAULT_FORWARDING_HEADERS: readonly ForwardingHeader[] = ['x-forwarded-for', 'forwarded']

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/
const GROUP_PREFIX = 'group:'

export type Mode = 'enforce' | 'dry-run'
export type Verdict = 'block' | 'allow'

export interface UpstreamConfig {
  name: string
  /** Origin plus base path, without a trailing slash: `https://api.anthropic.com`. */
  url: string
  dialect: DialectName
}

export interface RuleConfig {
  name: string
  /** Null: every upstream. */
  upstreams: readonly string[] | null
  models: readonly string[]
  /** Country codes after groups are expanded; null when the rule has no such list. */
  allow: ReadonlySet<string> | null
  deny: ReadonlySet<string> | null
  action: 'block'
  mode: Mode
}

export interface Config {
  file: string
  /** sha256 of the file's bytes. */
  revision: string
  server: { host: string, port: number, bodyLimit: number }
  clientIp: { trustedProxies: ReadonlyArray<readonly [string, number]>, headers: readonly ForwardingHeader[] }
  geoip: { databases: readonly string[], cache: CacheOptions }
  groups: ReadonlyMap<string, ReadonlySet<string>>
  upstreams: ReadonlyMap<string, UpstreamConfig>
  policy: { mode: Mode, default: Verdict, unknownLocation: Verdict, rules: readonly RuleConfig[] }
  logging: { level: string }
  /** Line and column of a key path in the file, for errors found after loading (databases). */
  position: (path: ReadonlyArray<string | number>) => { line: number, col: number } | undefined
}

export interface ValidateContext {
  file: string
  revision: string
  position: (path: ReadonlyArray<string | number>) => { line: number, col: number } | undefined
}

export function validate (raw: RawConfig, ctx: ValidateContext): { config: Config | null, problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = []
  const problem = (path: Array<string | number>, message: string): void => { problems.push({ path, message }) }

  const bodyLimit = raw.server?.body_limit === undefined ? DEFAULT_BODY_LIMIT : parseSize(raw.server.body_limit)
  if (bodyLimit === null || bodyLimit === 0) problem(['server', 'body_limit'], `"${String(raw.server?.body_limit)}" is not a size (write e.g. 32mb, 512kb or a number of bytes)`)

  const ttl = raw.geoip?.cache?.ttl === undefined ? DEFAULT_CACHE.ttlMs : parseDuration(raw.geoip.cache.ttl)
  if (ttl === null) problem(['geoip', 'cache', 'ttl'], `"${String(raw.geoip?.cache?.ttl)}" is not a duration (write e.g. 1h, 30m, 90s or 500ms)`)

  const trustedProxies: Array<readonly [string, number]> = []
  for (const [i, text] of (raw.client_ip?.trusted_proxies ?? []).entries()) {
    const cidr = parseCidr(text)
    if (cidr === null) problem(['client_ip', 'trusted_proxies', i], `"${text}" is not a CIDR (write e.g. 10.0.0.0/8, 192.0.2.7 or "::1/128")`)
    else trustedProxies.push(cidr)
  }

  const groups = resolveGroups(raw.groups ?? {}, problem)
  const countries = (list: readonly string[] | undefined, path: Array<string | number>): ReadonlySet<string> | null => {
    if (list === undefined) return null
    const out = new Set<string>()
    for (const [i, entry] of list.entries()) {
      if (entry.startsWith(GROUP_PREFIX)) {
        const members = groups.get(entry.slice(GROUP_PREFIX.length))
        if (members === undefined) problem([...path, i], `unknown group "${entry.slice(GROUP_PREFIX.length)}"${known(groups.keys())}`)
        else for (const c of members) out.add(c)
      } else {
        const why = countryCodeProblem(entry)
        if (why !== null) problem([...path, i], why)
        else out.add(entry)
      }
    }
    return out
  }

  const upstreams = new Map<string, UpstreamConfig>()
  for (const [name, up] of Object.entries(raw.upstreams)) {
    if (!NAME.test(name)) problem(['upstreams', name], `"${name}" cannot be an upstream name: it is mounted at /${name}/, so use letters, digits, "-", "_" and "."`)
    const url = upstreamUrl(up.url)
    if (typeof url !== 'string') problem(['upstreams', name, 'url'], url.problem)
    else upstreams.set(name, { name, url, dialect: up.dialect })
  }

  const seen = new Map<string, number>()
  const rules: RuleConfig[] = []
  for (const [i, rule] of raw.policy.rules.entries()) {
    const at = (...rest: Array<string | number>): Array<string | number> => ['policy', 'rules', i, ...rest]
    const first = seen.get(rule.name)
    if (first !== undefined) problem(at('name'), `duplicate rule name "${rule.name}" (also rule ${first})`)
    else seen.set(rule.name, i)
    for (const [j, up] of (rule.upstreams ?? []).entries()) {
      if (raw.upstreams[up] === undefined) problem(at('upstreams', j), `unknown upstream "${up}"${known(Object.keys(raw.upstreams))}`)
    }
    if (rule.models !== undefined && rule.models.length === 0) problem(at('models'), 'an empty list matches no model; leave the key out to match every model')
    for (const [j, glob] of (rule.models ?? []).entries()) {
      if (glob.trim() === '') problem(at('models', j), 'an empty model pattern')
    }
    if (rule.allow === undefined && rule.deny === undefined) {
      problem(at(), 'a rule needs "allow", "deny" or both (write deny: [] to let every location through)')
    }
    rules.push({
      name: rule.name,
      upstreams: rule.upstreams ?? null,
      models: rule.models ?? ['*'],
      allow: countries(rule.allow, at('allow')),
      deny: countries(rule.deny, at('deny')),
      action: rule.action,
      mode: rule.mode ?? raw.policy.mode ?? 'enforce',
    })
  }

  if (problems.length > 0 || bodyLimit === null || ttl === null) return { config: null, problems }
  return {
    problems,
    config: {
      file: ctx.file,
      revision: ctx.revision,
      server: { host: raw.server?.host ?? DEFAULT_HOST, port: raw.server?.port ?? DEFAULT_PORT, bodyLimit },
      clientIp: { trustedProxies, headers: raw.client_ip?.headers ?? DEFAULT_FORWARDING_HEADERS },
      geoip: {
        databases: (raw.geoip?.databases ?? []).map((f) => resolve(f)),
        cache: { maxEntries: raw.geoip?.cache?.max_entries ?? DEFAULT_CACHE.maxEntries, ttlMs: ttl },
      },
      groups,
      upstreams,
      policy: {
        mode: raw.policy.mode ?? 'enforce',
        default: raw.policy.default ?? 'block',
        unknownLocation: raw.policy.unknown_location ?? 'block',
        rules,
      },
      logging: { level: raw.logging?.level ?? 'info' },
      position: ctx.position,
    },
  }
}

/** Expands every group to its countries; members may be codes or other groups (no cycles). */
function resolveGroups (raw: Record<string, string[]>, problem: (path: Array<string | number>, message: string) => void): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>()
  const visiting = new Set<string>()
  const expand = (name: string): Set<string> => {
    const done = out.get(name)
    if (done !== undefined) return done
    const set = new Set<string>()
    visiting.add(name)
    for (const [i, entry] of (raw[name] ?? []).entries()) {
      if (entry.startsWith(GROUP_PREFIX)) {
        const ref = entry.slice(GROUP_PREFIX.length)
        if (raw[ref] === undefined) problem(['groups', name, i], `unknown group "${ref}"${known(Object.keys(raw))}`)
        else if (visiting.has(ref)) problem(['groups', name, i], `group "${name}" includes itself through "${ref}"`)
        else for (const c of expand(ref)) set.add(c)
      } else {
        const why = countryCodeProblem(entry)
        if (why !== null) problem(['groups', name, i], why)
        else set.add(entry)
      }
    }
    visiting.delete(name)
    out.set(name, set)
    return set
  }
  for (const name of Object.keys(raw)) {
    if (!NAME.test(name)) problem(['groups', name], `"${name}" cannot be a group name: use letters, digits, "-", "_" and "."`)
    expand(name)
  }
  return out
}

function upstreamUrl (text: string): string | { problem: string } {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return { problem: `"${text}" is not a URL (write e.g. https://api.anthropic.com)` }
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { problem: `"${text}": only http and https upstreams are supported` }
  if (url.username !== '' || url.password !== '') return { problem: 'credentials do not belong in the upstream URL' }
  if (url.search !== '' || url.hash !== '') return { problem: `"${text}": an upstream URL has no query or fragment` }
  return url.origin + url.pathname.replace(/\/+$/, '')
}

function known (names: Iterable<string>): string {
  const list = [...names]
  return list.length === 0 ? ' (none is defined)' : ` (known: ${list.join(', ')})`
}
