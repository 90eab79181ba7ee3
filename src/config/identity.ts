// The identity section: which identity providers' tokens the gateway believes, where their keys
// are, and which claims say where the end user is; plus the policy's `jurisdiction` lists and
// the `entity:NAME` entries of a rule. Part of config validation (config/validate.ts); problems
// are reported, not thrown. The verifier that uses this is src/identity/.
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { canonicalAddress } from '../geo/address.js'
import type { JurisdictionSource } from '../policy/rules.js'
import type { RawIdentity, RawIssuer } from './schema.js'

export const DEFAULT_IDENTITY_HEADER = 'x-geofence-identity'
export const DEFAULT_CLOCK_SKEW_MS = 60_000
/** How long the last key set that was fetched keeps verifying while its provider cannot be reached. */
export const DEFAULT_MAX_STALE_MS = 24 * 3_600_000
/** How often an issuer's keys are fetched again when nothing asks for it sooner. */
export const DEFAULT_REFRESH_MS = 10 * 60_000
/** The least time between two fetches of one issuer's keys (as jose's createRemoteJWKSet: 30 s). */
export const DEFAULT_REFETCH_COOLDOWN_MS = 30_000
export const DEFAULT_ALGORITHMS: readonly string[] = ['RS256', 'ES256', 'EdDSA']
/** Asymmetric signature algorithms jose verifies on Node 20. */
export const SUPPORTED_ALGORITHMS: readonly string[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']
export const DEFAULT_JURISDICTION: readonly JurisdictionSource[] = ['network']
export const ENTITY_PREFIX = 'entity:'

/** Headers the identity token cannot travel in: they carry credentials or addresses the gateway reads otherwise. */
const RESERVED_HEADERS = new Set(['authorization', 'x-api-key', 'api-key', 'x-goog-api-key', 'cookie', 'host', 'content-length', 'content-type',
  'transfer-encoding', 'connection', 'x-forwarded-for', 'forwarded', 'x-real-ip'])
/** A claim path: claim names joined by dots (`address.country`). */
const CLAIM_PATH = /^[A-Za-z0-9_$:-]+(?:\.[A-Za-z0-9_$:-]+)*$/
const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'prototype', 'constructor'])
const ENTITY_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/

export interface IdentityConfig {
  /** Lower case. */
  header: string
  /** True: a request without a token is refused (401); false: its identity is unknown. */
  required: boolean
  clockSkewMs: number
  maxStaleMs: number
  refreshMs: number
  refetchCooldownMs: number
  issuers: readonly IssuerConfig[]
}

/** Where an issuer's public keys come from. */
export type KeySource =
  /** `{issuer}/.well-known/openid-configuration`, whose `jwks_uri` is then fetched. */
  | { kind: 'discovery', url: string }
  | { kind: 'jwks_uri', url: string }
  /** Read at load (a reload reads it again); never fetched. */
  | { kind: 'jwks_file', file: string, jwks: { keys: ReadonlyArray<Record<string, unknown>> } }

export interface IssuerConfig {
  /** Exactly as the tokens' `iss`. */
  issuer: string
  keys: KeySource
  audiences: readonly string[]
  algorithms: readonly string[]
  claims: {
    country: ClaimPath
    subdivision: ClaimPath | null
    entity: ClaimPath | null
    subject: ClaimPath
  }
  /** Claim values that are not ISO codes (site codes) -> an ISO 3166-1 or 3166-2 code. */
  values: ReadonlyMap<string, string>
  /** Where the issuer is in the file (identity.issuers[i]), for messages. */
  path: string
}

/** A claim as configured (`address.country`) and its names. */
export interface ClaimPath {
  text: string
  segments: readonly string[]
}

type Problem = (path: Array<string | number>, message: string) => void
type Duration = (value: string | number | undefined, fallback: number, path: Array<string | number>) => number
/** Why a text is not an ISO 3166-1 or 3166-2 code, or null (config/validate.ts). */
type CodeProblem = (code: string) => string | null

export function validateIdentity (raw: RawIdentity, problem: Problem, duration: Duration, codeProblem: CodeProblem): IdentityConfig {
  const header = (raw.header ?? DEFAULT_IDENTITY_HEADER).toLowerCase()
  if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(header)) problem(['identity', 'header'], `"${raw.header ?? ''}" is not a header name`)
  else if (RESERVED_HEADERS.has(header)) problem(['identity', 'header'], `"${header}" carries something else the gateway reads or forwards: use a header of its own (default ${DEFAULT_IDENTITY_HEADER})`)

  const refreshMs = duration(raw.refresh, DEFAULT_REFRESH_MS, ['identity', 'refresh'])
  const maxStaleMs = duration(raw.max_stale, DEFAULT_MAX_STALE_MS, ['identity', 'max_stale'])
  if (maxStaleMs < refreshMs) problem(['identity', 'max_stale'], `shorter than identity.refresh (${String(raw.refresh ?? '10m')}): the keys would go stale between two refreshes`)
  const refetchCooldownMs = duration(raw.refetch_cooldown, DEFAULT_REFETCH_COOLDOWN_MS, ['identity', 'refetch_cooldown'])
  if (refetchCooldownMs === 0) problem(['identity', 'refetch_cooldown'], 'must be more than 0: every token with an unknown key could then make the gateway fetch the keys')

  const issuers: IssuerConfig[] = []
  const seen = new Map<string, number>()
  for (const [i, iss] of raw.issuers.entries()) {
    const at = (...rest: Array<string | number>): Array<string | number> => ['identity', 'issuers', i, ...rest]
    const other = seen.get(iss.issuer)
    if (other !== undefined) problem(at('issuer'), `duplicate issuer "${iss.issuer}" (also identity.issuers[${other}]): a token is checked against its own issuer's settings only`)
    seen.set(iss.issuer, i)
    const keys = keySource(iss, (message, key) => { problem(key === undefined ? at() : at(key), message) })
    const algorithms = iss.algorithms ?? DEFAULT_ALGORITHMS
    if (algorithms.length === 0) problem(at('algorithms'), `an empty list accepts no token; leave the key out for the default (${DEFAULT_ALGORITHMS.join(', ')})`)
    for (const [j, alg] of algorithms.entries()) {
      const why = algorithmProblem(alg)
      if (why !== null) problem(at('algorithms', j), why)
    }
    for (const [j, aud] of iss.audiences.entries()) if (aud.trim() === '') problem(at('audiences', j), 'an empty audience')
    const claim = (key: 'country' | 'subdivision' | 'entity' | 'subject'): ClaimPath | null => {
      const text = iss.claims[key]
      if (text === undefined) return null
      const segments = text.split('.')
      if (!CLAIM_PATH.test(text) || segments.some((s) => FORBIDDEN_SEGMENTS.has(s))) {
        problem(at('claims', key), `"${text}" is not a claim path (write a claim's name, or names joined by dots for a nested claim: address.country)`)
      }
      return { text, segments }
    }
    const values = new Map<string, string>()
    for (const [from, to] of Object.entries(iss.values ?? {})) {
      const why = codeProblem(to)
      if (why !== null) problem(at('values', from), `${why}: a value must map to an ISO 3166-1 country code (HK) or an ISO 3166-2 subdivision code (UA-30)`)
      else values.set(from, to)
    }
    if (keys !== null) {
      issuers.push({
        issuer: iss.issuer,
        keys,
        audiences: iss.audiences,
        algorithms,
        claims: { country: claim('country') ?? { text: 'country', segments: ['country'] }, subdivision: claim('subdivision'), entity: claim('entity'), subject: claim('subject') ?? { text: 'sub', segments: ['sub'] } },
        values,
        path: `identity.issuers[${i}]`,
      })
    }
  }
  return {
    header,
    required: raw.required ?? true,
    clockSkewMs: duration(raw.clock_skew, DEFAULT_CLOCK_SKEW_MS, ['identity', 'clock_skew']),
    maxStaleMs,
    refreshMs,
    refetchCooldownMs,
    issuers,
  }
}

/** Exactly one of discovery, jwks_uri, jwks_file; URLs over https unless they are on this machine. */
function keySource (iss: RawIssuer, problem: (message: string, key?: string) => void): KeySource | null {
  const given = [iss.discovery === true ? 'discovery' : null, iss.jwks_uri === undefined ? null : 'jwks_uri', iss.jwks_file === undefined ? null : 'jwks_file'].filter((k) => k !== null)
  if (given.length !== 1) {
    problem(given.length === 0
      ? 'say where the keys are: discovery: true (from {issuer}/.well-known/openid-configuration), jwks_uri: URL, or jwks_file: PATH'
      : `give one of discovery, jwks_uri and jwks_file, not ${given.join(' and ')}`)
    return null
  }
  if (iss.discovery === true) {
    const why = keyUrlProblem(iss.issuer)
    if (why !== null) {
      problem(`discovery needs the issuer to be its URL: ${why}`, 'issuer')
      return null
    }
    return { kind: 'discovery', url: `${iss.issuer.replace(/\/$/, '')}/.well-known/openid-configuration` }
  }
  if (iss.jwks_uri !== undefined) {
    const why = keyUrlProblem(iss.jwks_uri)
    if (why !== null) {
      problem(why, 'jwks_uri')
      return null
    }
    return { kind: 'jwks_uri', url: iss.jwks_uri }
  }
  const file = resolve(iss.jwks_file ?? '')
  let jwks: unknown
  try {
    jwks = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    problem(err instanceof SyntaxError ? `${file} is not JSON: ${err.message}` : `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'jwks_file')
    return null
  }
  const why = jwksProblem(jwks)
  if (why !== null) {
    problem(`${file}: ${why}`, 'jwks_file')
    return null
  }
  return { kind: 'jwks_file', file, jwks: jwks as { keys: Array<Record<string, unknown>> } }
}

/**
 * Why a URL the gateway fetches keys (or discovery) from cannot be used, or null. Keys decide
 * whom the gateway believes, so they come over TLS (verified), except from this machine
 * (a loopback address or localhost), where there is no network to trust.
 */
export function keyUrlProblem (text: string): string | null {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return `"${text}" is not a URL`
  }
  if (url.username !== '' || url.password !== '') return 'credentials do not belong in the URL'
  if (url.hash !== '') return `"${text}": a URL to fetch has no fragment`
  if (url.protocol === 'https:') return null
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return null
  return `"${text}": keys are fetched over https only (plain http only from a loopback address)`
}

function isLoopbackHost (hostname: string): boolean {
  if (hostname === 'localhost') return true
  const ip = canonicalAddress(hostname.replace(/^\[|\]$/g, ''))
  return ip !== null && (ip === '::1' || ip.startsWith('127.'))
}

/** Why a JSON Web Key Set cannot be used, or null: public signing keys only. */
export function jwksProblem (jwks: unknown): string | null {
  if (typeof jwks !== 'object' || jwks === null || !Array.isArray((jwks as { keys?: unknown }).keys)) return 'not a JSON Web Key Set ({"keys": [...]})'
  for (const [i, key] of ((jwks as { keys: unknown[] }).keys).entries()) {
    if (typeof key !== 'object' || key === null || typeof (key as { kty?: unknown }).kty !== 'string') return `keys[${i}] is not a JSON Web Key`
    const k = key as Record<string, unknown>
    if (k['kty'] === 'oct') return `keys[${i}] is a shared secret (kty oct): only public keys verify tokens here`
    if (k['d'] !== undefined) return `keys[${i}] holds a private key: publish only the public keys`
  }
  return null
}

function algorithmProblem (alg: string): string | null {
  if (SUPPORTED_ALGORITHMS.includes(alg)) return null
  if (alg.toLowerCase() === 'none') return '"none" is never accepted: an unsigned token proves nothing'
  if (/^hs\d+$/i.test(alg)) return `"${alg}" is never accepted: its key is a shared secret, so whoever can check a token can mint one (and a public key taken for the secret is a known forgery)`
  const upper = SUPPORTED_ALGORITHMS.find((a) => a.toLowerCase() === alg.toLowerCase())
  if (upper !== undefined) return `"${alg}" must be written ${upper}`
  return `unknown algorithm "${alg}" (known: ${SUPPORTED_ALGORITHMS.join(', ')})`
}

/**
 * A `jurisdiction` list as sources; naming `identity` without an identity section is a
 * problem. Undefined when the key is not there.
 */
export function jurisdictionSources (list: readonly JurisdictionSource[] | undefined, path: Array<string | number>, identity: boolean, problem: Problem): readonly JurisdictionSource[] | undefined {
  if (list === undefined) return undefined
  const at = list.indexOf('identity')
  if (at !== -1 && !identity) problem([...path, at], 'the identity source needs an identity section (identity: { issuers: [...] }) that says whose tokens to believe')
  return list
}

/**
 * The `entity:NAME` entries of a rule's allow or deny list, or null when it has none. They
 * are the identity token's legal entity, so the rule must judge the identity source, and some
 * issuer must say which claim holds it.
 */
export function ruleEntities (list: readonly string[] | undefined, path: Array<string | number>, judged: readonly JurisdictionSource[], identity: IdentityConfig | null, problem: Problem): ReadonlySet<string> | null {
  if (list === undefined) return null
  const out = new Set<string>()
  for (const [i, entry] of list.entries()) {
    if (!entry.startsWith(ENTITY_PREFIX)) continue
    const name = entry.slice(ENTITY_PREFIX.length)
    if (!ENTITY_NAME.test(name)) problem([...path, i], `"${entry}": an entity name is letters, digits, "-", "_", "." and ":", up to 128`)
    else if (identity === null) problem([...path, i], 'an entity is read from the identity token: add an identity section, and jurisdiction: [network, identity] or [identity]')
    else if (!judged.includes('identity')) problem([...path, i], 'an entity is read from the identity token, which this rule does not judge: write jurisdiction: [network, identity] or [identity]')
    else if (!identity.issuers.some((iss) => iss.claims.entity !== null)) problem([...path, i], 'no issuer says which claim holds the entity (identity.issuers[].claims.entity)')
    out.add(name)
  }
  return out.size === 0 ? null : out
}

/** True for an `entity:NAME` entry (config/validate.ts skips them when it reads codes). */
export function isEntityEntry (entry: string): boolean {
  return entry.startsWith(ENTITY_PREFIX)
}
