// The meaning of a config whose shape already passed: every reference resolves, every country
// code is a country, every CIDR parses, every name is unique. All problems are collected.
import { availableParallelism } from 'node:os'
import { resolve } from 'node:path'
import type { ConfigProblem } from '../errors.js'
import { DIALECTS } from '../dialects/registry.js'
import { parseCidr } from '../geo/address.js'
import type { ForwardingHeader } from '../geo/client-ip.js'
import type { CacheOptions } from '../geo/locator.js'
import { BUILTIN_GROUPS, isSubdivisionCode } from '../policy/builtin-groups.js'
import { countryCodeProblem } from '../policy/countries.js'
import type { JurisdictionSource, PolicySettings, RuleAction, RuleConfig } from '../policy/rules.js'
import { validateCertificateClient, type CertificateClient } from './client-certificates.js'
import { validateEgress, type EgressConfig } from './egress.js'
import { DEFAULT_JURISDICTION, isEntityEntry, jurisdictionSources, ruleEntities, validateIdentity, type IdentityConfig } from './identity.js'
import type { RawBootstrap, RawConfig } from './schema.js'
import { validatePolicySource, type PolicySourceConfig } from './policy-source.js'
import { validateServerTls, type ServerTls } from './tls.js'
import { parseDuration, parseSize } from './units.js'
import { validateIntegrity, validatePolicySignature, type IntegrityConfig, type PolicySignatureConfig } from './evidence.js'
import { NAME, validateUpstreams, type UpstreamConfig } from './upstreams.js'

export { DEFAULT_TIMEOUTS, type UpstreamConfig, type UpstreamTimeouts } from './upstreams.js'
export type { IdentityConfig, IssuerConfig } from './identity.js'
export type { EgressConfig, ProxyConfig } from './egress.js'
export type { CertificateClient } from './client-certificates.js'
export type { ServerTls } from './tls.js'

export const DEFAULT_HOST = '127.0.0.1'
export const DEFAULT_PORT = 8080
export const DEFAULT_BODY_LIMIT = 32 * 1024 * 1024
/** Anthropic accepts message batches up to 256 MB (messages: 32 MB). */
export const DEFAULT_BATCH_BODY_LIMIT = 256 * 1024 * 1024
export const DEFAULT_CACHE: CacheOptions = { maxEntries: 100_000, ttlMs: 3_600_000 }
export const DEFAULT_FORWARDING_HEADERS: readonly ForwardingHeader[] = ['x-forwarded-for', 'forwarded']
export const DEFAULT_ADMIN_HOST = '127.0.0.1'
export const DEFAULT_ADMIN_PORT = 9090
export const DEFAULT_BODY_TIMEOUT_MS = 60_000
/** Past 1 MiB, a compressed body may decode to at most this many times its size on the wire. */
export const DEFAULT_MAX_EXPANSION_RATIO = 100
/** The most requests a batch body may hold: Anthropic's documented maximum (OpenAI's, 50,000, is in a file the gateway does not read). */
export const DEFAULT_BATCH_MAX_ITEMS = 100_000
/** How many bodies past 1 MiB are read at once. */
export const DEFAULT_MAX_CONCURRENT_LARGE_BODIES = 4
export const DEFAULT_SHUTDOWN_GRACE_MS = 30_000
export const DEFAULT_MAX_EVENT_LOOP_DELAY_MS = 1_000


const GROUP_PREFIX = 'group:'
/** In geoip.databases, the embedded default database. */
export const EMBEDDED_DATABASE = 'embedded'

/** The database files geoip names, relative paths resolved from the working directory. */
export function geoipFiles (geoip: { databases?: readonly string[], anonymous_ip?: string } | undefined): GeoipFiles {
  return {
    databases: (geoip?.databases ?? []).map((f) => (f === EMBEDDED_DATABASE ? f : resolve(f))),
    anonymousIp: geoip?.anonymous_ip === undefined ? null : resolve(geoip.anonymous_ip),
  }
}

export interface GeoipFiles {
  databases: readonly string[]
  anonymousIp: string | null
}

export interface NetworkConfig {
  name: string
  cidr: readonly [string, number]
  country: string
  subdivision: string | null
}

export interface Config {
  file: string
  /** sha256 of the file's bytes. */
  revision: string
  /** bodyLimit bounds every body but a batch's (batchBodyLimit). */
  /** `tls`: the listener's certificate and client certificate policy (server.tls), or null: plain HTTP. */
  server: { host: string, port: number, bodyLimit: number, batchBodyLimit: number, bodyTimeoutMs: number, shutdownGraceMs: number, maxEventLoopDelayMs: number, workers: number, maxExpansionRatio: number, batchMaxItems: number, maxConcurrentLargeBodies: number, tls: ServerTls | null }
  admin: { host: string, port: number }
  /** sha256 (hex) of each client token -> client name; empty when no client has a token. */
  clients: ReadonlyMap<string, string>
  /** Clients named by their TLS client certificate (clients.NAME.certificate). */
  clientCertificates: readonly CertificateClient[]
  /** Every configured client's name, however it authenticates. */
  clientNames: ReadonlySet<string>
  clientIp: { trustedProxies: ReadonlyArray<readonly [string, number]>, headers: readonly ForwardingHeader[] }
  /** Database files, absolute; EMBEDDED_DATABASE stands for the embedded default. */
  geoip: { databases: readonly string[], anonymousIp: string | null, cache: CacheOptions }
  networks: readonly NetworkConfig[]
  groups: ReadonlyMap<string, ReadonlySet<string>>
  upstreams: ReadonlyMap<string, UpstreamConfig>
  policy: PolicySettings
  /** Whose identity tokens are believed (identity:), or null without that section. */
  identity: IdentityConfig | null
  /** The keys this file requires its signature to verify with (policy_signature), or null. */
  policySignature: PolicySignatureConfig | null
  /** The key that signed this file, once a signature was checked (config/load.ts); else null. */
  policyKey: string | null
  /** Where the policy was fetched from (policy_source in the bootstrap file `file`), or null: from `file` itself. */
  policySource: PolicySourceConfig | null
  /** integrity: the decision log chained and its checkpoints signed (read at start only), or null. */
  /** The forward proxy outbound connections go through (egress:, else the environment). */
  egress: EgressConfig
  /** Certificate, key and CA files the revision read (server.tls, upstreams' tls:), absolute: a reload watches them. */
  tlsFiles: readonly string[]
  /** integrity: the decision log chained and its checkpoints signed (read at start only), or null. */
  logging: { level: string, clientIp: 'full' | 'truncated' | 'hashed', clientIpKey: string | null, integrity: IntegrityConfig | null }
  /** Line and column of a key path in the file, for errors found after loading (databases). */
  position: (path: ReadonlyArray<string | number>) => { line: number, col: number } | undefined
}

export interface ValidateContext {
  file: string
  revision: string
  /** The environment the egress proxy is read from when egress.proxy is not set. */
  env: NodeJS.ProcessEnv
  position: (path: ReadonlyArray<string | number>) => { line: number, col: number } | undefined
}

/** The sections that belong to each gateway, not to a fleet's policy (a bootstrap file holds only these). */
export type SiteConfig = Pick<Config, 'server' | 'admin' | 'clientIp' | 'logging' | 'policySignature'>
type SiteRaw = Pick<RawConfig, 'server' | 'admin' | 'client_ip' | 'logging' | 'policy_signature'>
type Problem = (path: Array<string | number>, message: string) => void
type Duration = (value: string | number | undefined, fallback: number, path: Array<string | number>) => number

/** A duration reader that reports what is not a duration. */
function durations (problem: Problem): Duration {
  return (value, fallback, path) => {
    if (value === undefined) return fallback
    const ms = parseDuration(value)
    if (ms === null) problem(path, `"${String(value)}" is not a duration (write e.g. 1h, 30m, 90s or 500ms)`)
    return ms ?? fallback
  }
}

/** server, admin, client_ip, logging and policy_signature; null when one of them cannot be used. */
export function validateSite (raw: SiteRaw, problem: Problem, duration: Duration): SiteConfig | null {
  const bodyLimit = raw.server?.body_limit === undefined ? DEFAULT_BODY_LIMIT : parseSize(raw.server.body_limit)
  if (bodyLimit === null || bodyLimit === 0) problem(['server', 'body_limit'], `"${String(raw.server?.body_limit)}" is not a size (write e.g. 32mb, 512kb or a number of bytes)`)
  const batchBodyLimit = raw.server?.batch_body_limit === undefined ? Math.max(DEFAULT_BATCH_BODY_LIMIT, bodyLimit ?? 0) : parseSize(raw.server.batch_body_limit)
  if (batchBodyLimit === null || batchBodyLimit === 0) problem(['server', 'batch_body_limit'], `"${String(raw.server?.batch_body_limit)}" is not a size (write e.g. 256mb)`)
  const server = {
    bodyTimeoutMs: duration(raw.server?.body_timeout, DEFAULT_BODY_TIMEOUT_MS, ['server', 'body_timeout']),
    shutdownGraceMs: duration(raw.server?.shutdown_grace, DEFAULT_SHUTDOWN_GRACE_MS, ['server', 'shutdown_grace']),
    maxEventLoopDelayMs: duration(raw.server?.max_event_loop_delay, DEFAULT_MAX_EVENT_LOOP_DELAY_MS, ['server', 'max_event_loop_delay']),
    workers: raw.server?.workers === 'auto' ? availableParallelism() : raw.server?.workers ?? 1,
    maxExpansionRatio: raw.server?.max_expansion_ratio ?? DEFAULT_MAX_EXPANSION_RATIO,
    batchMaxItems: raw.server?.batch_max_items ?? DEFAULT_BATCH_MAX_ITEMS,
    maxConcurrentLargeBodies: raw.server?.max_concurrent_large_bodies ?? DEFAULT_MAX_CONCURRENT_LARGE_BODIES,
  }
  const serverTls = raw.server?.tls === undefined ? null : validateServerTls(raw.server.tls, problem)

  let clientIpKey: string | null = raw.logging?.client_ip_key ?? null
  if (raw.logging?.client_ip === 'hashed' && (clientIpKey === null || clientIpKey.length < 16)) {
    problem(['logging', 'client_ip_key'], 'client_ip: hashed needs a secret key of at least 16 characters (write client_ip_key: "${GEOFENCE_IP_KEY}")')
    clientIpKey = null
  }
  const integrity = validateIntegrity(raw.logging?.integrity, problem, duration)
  const policySignature = validatePolicySignature(raw.policy_signature, problem)

  const trustedProxies: Array<readonly [string, number]> = []
  for (const [i, text] of (raw.client_ip?.trusted_proxies ?? []).entries()) {
    const cidr = parseCidr(text)
    if (cidr === null) problem(['client_ip', 'trusted_proxies', i], `"${text}" is not a CIDR (write e.g. 10.0.0.0/8, 192.0.2.7 or "::1/128")`)
    else trustedProxies.push(cidr)
  }
  if (bodyLimit === null || batchBodyLimit === null) return null
  return {
    server: { host: raw.server?.host ?? DEFAULT_HOST, port: raw.server?.port ?? DEFAULT_PORT, bodyLimit, batchBodyLimit, ...server, tls: serverTls },
    admin: { host: raw.admin?.host ?? DEFAULT_ADMIN_HOST, port: raw.admin?.port ?? DEFAULT_ADMIN_PORT },
    clientIp: { trustedProxies, headers: raw.client_ip?.headers ?? DEFAULT_FORWARDING_HEADERS },
    logging: { level: raw.logging?.level ?? 'info', clientIp: raw.logging?.client_ip ?? 'full', clientIpKey, integrity },
    policySignature,
  }
}

/** A bootstrap file: the gateway's own sections and where its policy is fetched from (config/policy-source.ts). */
export interface BootstrapConfig extends SiteConfig {
  file: string
  /** sha256 of the bootstrap file's bytes. */
  revision: string
  policySource: PolicySourceConfig
  /** The key that signed the bootstrap file (it must be signed). */
  policyKey: string | null
}

export function validateBootstrap (raw: RawBootstrap, ctx: ValidateContext): { config: BootstrapConfig | null, problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = []
  const problem: Problem = (path, message) => { problems.push({ path, message }) }
  const duration = durations(problem)
  const site = validateSite(raw, problem, duration)
  const policySource = validatePolicySource(raw.policy_source, raw.policy_signature !== undefined, ctx.env, problem, duration)
  if (problems.length > 0 || site === null || policySource === null) return { config: null, problems }
  return { problems, config: { ...site, file: ctx.file, revision: ctx.revision, policySource, policyKey: null } }
}

export function validate (raw: RawConfig, ctx: ValidateContext): { config: Config | null, problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = []
  const problem: Problem = (path, message) => { problems.push({ path, message }) }
  const duration = durations(problem)
  const site = validateSite(raw, problem, duration)
  const ttl = duration(raw.geoip?.cache?.ttl, DEFAULT_CACHE.ttlMs, ['geoip', 'cache', 'ttl'])
  const serverTls = site?.server.tls ?? null

  const clients = new Map<string, string>()
  const clientCertificates: CertificateClient[] = []
  for (const [name, client] of Object.entries(raw.clients ?? {})) {
    if (client.token_sha256 === undefined && client.certificate === undefined) problem(['clients', name], 'say how the client is known: token_sha256, certificate, or both')
    if (client.token_sha256 !== undefined) {
      const hash = client.token_sha256.toLowerCase()
      if (!/^[0-9a-f]{64}$/.test(hash)) problem(['clients', name, 'token_sha256'], 'must be the sha256 of the token, 64 hex digits (printf %s "$TOKEN" | sha256sum)')
      else if (clients.has(hash)) problem(['clients', name, 'token_sha256'], `the same token as client "${clients.get(hash) ?? ''}"`)
      else clients.set(hash, name)
    }
    if (client.certificate !== undefined) {
      const byCert = validateCertificateClient(name, client.certificate, problem)
      const same = byCert === null ? undefined : clientCertificates.find((c) => c.subject === byCert.subject && c.sanUri === byCert.sanUri)
      if (same !== undefined) problem(['clients', name, 'certificate'], `the same certificate as client "${same.name}"`)
      else if (byCert !== null) clientCertificates.push(byCert)
      if (raw.server?.tls?.client_certificate === undefined || raw.server.tls.client_certificate === 'none') {
        problem(['clients', name, 'certificate'], 'the listener asks for no client certificate: set server.tls with client_ca and client_certificate: request or require')
      }
    }
  }
  const clientNames = new Set(Object.keys(raw.clients ?? {}))

  const groups = resolveGroups(raw.groups ?? {}, problem)
  /** Expands a list to codes; where it names subdivisions is added to `subdivisionPaths`. */
  const codes = (list: readonly string[] | undefined, path: Array<string | number>, subdivisionPaths: Array<Array<string | number>>): ReadonlySet<string> | null => {
    if (list === undefined) return null
    // A list of entity:NAME entries only restricts the entity, not the location.
    if (list.length > 0 && list.every(isEntityEntry)) return null
    const out = new Set<string>()
    for (const [i, entry] of list.entries()) {
      if (isEntityEntry(entry)) continue
      if (entry.startsWith(GROUP_PREFIX)) {
        const name = entry.slice(GROUP_PREFIX.length)
        const members = groups.get(name) ?? BUILTIN_GROUPS.get(name)?.members
        if (members === undefined) {
          problem([...path, i], unknownGroup(name, groups.keys()))
          continue
        }
        for (const c of members) out.add(c)
        if ([...members].some(isSubdivisionCode)) subdivisionPaths.push([...path, i])
      } else {
        const why = codeProblem(entry)
        if (why !== null) problem([...path, i], why)
        else out.add(entry)
        if (isSubdivisionCode(entry)) subdivisionPaths.push([...path, i])
      }
    }
    return out
  }

  const upstreams = validateUpstreams(raw.upstreams, problem, duration)
  const egress = validateEgress(raw.egress, ctx.env, problem)
  const identity = raw.identity === undefined ? null : validateIdentity(raw.identity, problem, duration, codeProblem)
  const jurisdiction = jurisdictionSources(raw.policy.jurisdiction, ['policy', 'jurisdiction'], identity !== null, problem) ?? DEFAULT_JURISDICTION

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
    let action: RuleAction = { kind: 'block' }
    if (typeof rule.action === 'object') {
      const { upstream, model } = rule.action.route
      action = { kind: 'route', upstream, model }
      const target = raw.upstreams[upstream]
      if (target === undefined) {
        problem(at('action', 'route', 'upstream'), `unknown upstream "${upstream}"${known(Object.keys(raw.upstreams))}`)
      } else {
        for (const from of rule.upstreams ?? Object.keys(raw.upstreams)) {
          const dialect = raw.upstreams[from]?.dialect
          if (dialect === undefined) continue
          if (DIALECTS[dialect].signed === true && target.aws_sigv4 === undefined) {
            problem(at('action', 'route'), `this rule applies to "${from}", which speaks ${dialect}: its requests are signed over path and body, so they can be routed only to an upstream the gateway signs for (give "${upstream}" aws_sigv4), else write action: block`)
          } else if (DIALECTS[dialect].family !== DIALECTS[target.dialect].family) {
            problem(at('action', 'route', 'upstream'), `upstream "${upstream}" speaks ${target.dialect}, but this rule applies to "${from}", which speaks ${dialect}: a request can only be routed to an upstream of the same wire format`)
          }
        }
      }
    }
    for (const [j, client] of (rule.clients ?? []).entries()) {
      if (!clientNames.has(client)) problem(at('clients', j), `unknown client "${client}"${known(clientNames)}`)
    }
    const subdivisionPaths: Array<Array<string | number>> = []
    const allow = codes(rule.allow, at('allow'), subdivisionPaths)
    const deny = codes(rule.deny, at('deny'), subdivisionPaths)
    const judged = jurisdictionSources(rule.jurisdiction, at('jurisdiction'), identity !== null, problem) ?? jurisdiction
    rules.push({
      name: rule.name,
      upstreams: rule.upstreams ?? null,
      models: rule.models ?? ['*'],
      modelsListed: rule.models !== undefined,
      allow,
      deny,
      action,
      mode: rule.mode ?? raw.policy.mode ?? 'enforce',
      anonymous: rule.anonymous ?? raw.policy.anonymous ?? 'allow',
      clients: rule.clients ?? null,
      // Subdivisions the identity token names need no City database.
      subdivisionPaths: judged.includes('network') ? subdivisionPaths : [],
      jurisdiction: judged,
      allowEntities: ruleEntities(rule.allow, at('allow'), judged, identity, problem),
      denyEntities: ruleEntities(rule.deny, at('deny'), judged, identity, problem),
    })
  }

  const networks: NetworkConfig[] = []
  const networkNames = new Map<string, number>()
  for (const [i, net] of (raw.networks ?? []).entries()) {
    const at = (key: string): Array<string | number> => ['networks', i, key]
    const cidr = parseCidr(net.cidr)
    if (cidr === null) problem(at('cidr'), `"${net.cidr}" is not a CIDR (write e.g. 10.20.0.0/16 or "2001:db8:20::/48")`)
    const countryWhy = countryCodeProblem(net.country)
    if (countryWhy !== null) problem(at('country'), countryWhy)
    if (net.subdivision !== undefined) {
      const why = codeProblem(net.subdivision)
      if (why !== null) problem(at('subdivision'), why)
      else if (!net.subdivision.startsWith(`${net.country}-`)) problem(at('subdivision'), `"${net.subdivision}" is not a subdivision of ${net.country}`)
    }
    const other = networkNames.get(net.name)
    if (other !== undefined) problem(at('name'), `duplicate network name "${net.name}" (also networks[${other}])`)
    networkNames.set(net.name, i)
    if (cidr !== null) networks.push({ name: net.name, cidr, country: net.country, subdivision: net.subdivision ?? null })
  }

  if (problems.length > 0 || site === null) return { config: null, problems }
  return {
    problems,
    config: {
      file: ctx.file,
      revision: ctx.revision,
      ...site,
      clients,
      clientCertificates,
      clientNames,
      geoip: {
        ...geoipFiles(raw.geoip),
        cache: { maxEntries: raw.geoip?.cache?.max_entries ?? DEFAULT_CACHE.maxEntries, ttlMs: ttl },
      },
      networks,
      groups,
      upstreams,
      policy: {
        mode: raw.policy.mode ?? 'enforce',
        default: raw.policy.default ?? 'block',
        unknownLocation: raw.policy.unknown_location ?? 'block',
        unknownModel: raw.policy.unknown_model ?? 'block',
        unknownEndpoint: raw.policy.unknown_endpoint ?? 'block',
        anonymous: raw.policy.anonymous ?? 'allow',
        location: raw.policy.location ?? 'country',
        jurisdiction,
        rules,
      },
      identity,
      policyKey: null,
      policySource: null,
      egress,
      tlsFiles: [...new Set([...(serverTls?.files ?? []), ...[...upstreams.values()].flatMap((u) => u.tls?.files ?? [])])],
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
        const builtin = BUILTIN_GROUPS.get(ref)
        if (raw[ref] === undefined && builtin !== undefined) for (const c of builtin.members) set.add(c)
        else if (raw[ref] === undefined) problem(['groups', name, i], unknownGroup(ref, Object.keys(raw)))
        else if (visiting.has(ref)) problem(['groups', name, i], `group "${name}" includes itself through "${ref}"`)
        else for (const c of expand(ref)) set.add(c)
      } else {
        const why = codeProblem(entry)
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
    if (BUILTIN_GROUPS.has(name)) problem(['groups', name], `"${name}" is a built-in group (geofence groups lists them); give yours another name`)
    expand(name)
  }
  return out
}

/** A country code (ISO 3166-1) or a subdivision code (ISO 3166-2, e.g. UA-43) with a valid country. */
function codeProblem (code: string): string | null {
  if (!code.includes('-')) return countryCodeProblem(code)
  if (!isSubdivisionCode(code)) return `"${code}" is not an ISO 3166-2 subdivision code (write e.g. UA-43)`
  const why = countryCodeProblem(code.slice(0, 2))
  return why === null ? null : `"${code}": ${why}`
}

function unknownGroup (name: string, userGroups: Iterable<string>): string {
  const mine = [...userGroups]
  return `unknown group "${name}" (${mine.length === 0 ? 'no groups are defined' : `groups: ${mine.join(', ')}`}; "geofence groups" lists the built-in ones)`
}

function known (names: Iterable<string>): string {
  const list = [...names]
  return list.length === 0 ? ' (none is defined)' : ` (known: ${list.join(', ')})`
}
