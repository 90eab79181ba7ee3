// The identity verifier: one per config revision. It reads the identity token an application
// forwards (identity.header), picks the issuer by the token's unverified `iss`, checks the
// signature with that issuer's keys only (jose's jwtVerify over a local key set, see
// key-set.ts), its audience, expiry and not-before within identity.clock_skew, and reads
// where the end user is from its claims (claims.ts).
//
//   const verifier = createIdentityVerifier(config.identity, { observer, previous })
//   const r = await verifier.verify(req.headers[verifier.header])
//   if (!r.ok) throw new GatewayError(r.kind, r.reason)       // 401, or 503 without usable keys
//   input.identity = r.identity; input.identityProblem = r.identity === null ? r.reason : undefined
//
// Every failure of a token that was sent is refused (401), whatever identity.required says:
// `required: false` lets a request without a token through as "identity unknown", never one
// with a token that does not verify.
import { decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose'
import type { IdentityConfig } from '../config/identity.js'
import type { ErrorKind } from '../errors.js'
import { readIdentity, type Identity } from './claims.js'
import { fetcher, type FetchOptions } from './key-fetch.js'
import { IssuerKeys, type KeyFetchEvent, type KeySnapshot, type LocalKeySet } from './key-set.js'

export type { Identity } from './claims.js'
export type { FetchLike, FetchOptions } from './key-fetch.js'
export type { KeyFetchEvent, KeyFetchTrigger } from './key-set.js'

/** What became of one request's identity header: a label for metrics and the decision line. */
export type TokenResult =
  | 'ok'
  /** No token, and identity.required is false: the identity is unknown. */
  | 'absent'
  /** No token, and identity.required is true. */
  | 'missing'
  /** The header twice (or two tokens joined by a comma). */
  | 'duplicate'
  /** Not a signed compact JWT, or its header or claims do not parse, or it has no exp. */
  | 'malformed'
  /** Its `iss` is none of identity.issuers. */
  | 'wrong_issuer'
  /** Signed with an algorithm its issuer's `algorithms` does not list (none, HS256, ...). */
  | 'disallowed_algorithm'
  /** Its key is not in the issuer's set, even after a refetch (or within the cooldown). */
  | 'unknown_key'
  | 'bad_signature'
  | 'expired'
  | 'not_yet_valid'
  | 'wrong_audience'
  /** It verifies, but the country (or subdivision, entity, subject) claim cannot be used. */
  | 'unusable_claim'
  /** Its issuer has no keys within identity.max_stale: it cannot be checked (503). */
  | 'keys_unavailable'

export type IdentityResult =
  /** A verified token: where its end user is. */
  | { ok: true, identity: Identity }
  /** No token, and none is required: the identity is unknown (rules that judge it go to policy.unknown_location). */
  | { ok: true, identity: null, reason: string }
  /**
   * Refused: `kind` is 'unauthorized' (401) or 'identity_unavailable' (503, keys_unavailable).
   * `reason` may be shown to the caller (it holds no token content but a bounded claim value).
   */
  | { ok: false, kind: Extract<ErrorKind, 'unauthorized' | 'identity_unavailable'>, result: Exclude<TokenResult, 'ok' | 'absent'>, reason: string, issuer: string | null }

/** Counters for metrics: plain callbacks, called synchronously; they must not throw. */
export interface IdentityObserver {
  /** Once per verify(); `issuer` is a configured issuer or null (a bounded label). */
  onToken?: (result: TokenResult, issuer: string | null) => void
  /** Once per attempt to fetch an issuer's keys. */
  onKeyFetch?: (event: KeyFetchEvent) => void
}

export interface IdentityVerifierOptions extends FetchOptions {
  observer?: IdentityObserver
  /** The previous revision's verifier: key sets of the same issuer and key source are taken over, not fetched again. */
  previous?: IdentityVerifier
}

export interface IdentityVerifier {
  /** The header the token travels in (lower case). The pipeline removes it before forwarding. */
  readonly header: string
  /** Checks the header's value(s) as Node gives them (`req.headers[verifier.header]`). Never throws. */
  verify: (value: string | readonly string[] | undefined) => Promise<IdentityResult>
  /** True once every issuer's keys have been loaded at least once (readiness). */
  ready: () => boolean
  /** Resolves when every issuer's first fetch has settled, succeeded or not. */
  loaded: () => Promise<void>
  /** Stops refreshing keys; verify() keeps working with the keys held. */
  close: () => void
}

/** A compact JWS (three base64url parts; the signature may be empty, which `alg` then refuses). */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/
const MAX_TOKEN_LENGTH = 16 * 1024

const snapshots = new WeakMap<IdentityVerifier, (issuer: string) => KeySnapshot | null>()

export function createIdentityVerifier (config: IdentityConfig, opts: IdentityVerifierOptions = {}): IdentityVerifier {
  const fetchJson = fetcher(opts)
  const observer = opts.observer
  const timing = { maxStaleMs: config.maxStaleMs, refreshMs: config.refreshMs, refetchCooldownMs: config.refetchCooldownMs }
  const taken = opts.previous === undefined ? undefined : snapshots.get(opts.previous)
  const issuers = new Map(config.issuers.map((iss) => [iss.issuer, new IssuerKeys(iss, {
    fetchJson,
    timing,
    ...(observer?.onKeyFetch === undefined ? {} : { onFetch: observer.onKeyFetch }),
  }, taken?.(iss.issuer) ?? undefined)]))
  const clockTolerance = Math.round(config.clockSkewMs / 1000)
  const where = `the identity token (${config.header})`

  const refuse = (result: Exclude<TokenResult, 'ok' | 'absent'>, reason: string, issuer: string | null = null): IdentityResult => {
    observer?.onToken?.(result, issuer)
    return { ok: false, kind: result === 'keys_unavailable' ? 'identity_unavailable' : 'unauthorized', result, reason, issuer }
  }

  async function verify (value: string | readonly string[] | undefined): Promise<IdentityResult> {
    const values = value === undefined ? [] : typeof value === 'string' ? [value] : value
    if (values.length > 1) return refuse('duplicate', `${config.header} was sent more than once`)
    const token = values[0] ?? ''
    if (token === '') {
      if (config.required) return refuse('missing', `an identity token is required (${config.header})`)
      observer?.onToken?.('absent', null)
      return { ok: true, identity: null, reason: `no identity token (${config.header})` }
    }
    // Node joins a repeated header it does not know with ", ".
    if (token.includes(',')) return refuse('duplicate', `${config.header} was sent more than once`)
    if (token.length > MAX_TOKEN_LENGTH || !COMPACT_JWS.test(token)) return refuse('malformed', `${where} is not a signed JWT (compact serialization)`)

    let alg: unknown
    let unverified: JWTPayload
    try {
      alg = decodeProtectedHeader(token).alg
      unverified = decodeJwt(token)
    } catch {
      return refuse('malformed', `${where} cannot be read (its header or claims are not JSON)`)
    }
    const keys = typeof unverified.iss === 'string' ? issuers.get(unverified.iss) : undefined
    if (keys === undefined) return refuse('wrong_issuer', typeof unverified.iss === 'string' ? `${where} is from an issuer the gateway does not accept` : `${where} names no issuer (iss)`)
    const issuer = keys.issuer
    if (typeof alg !== 'string' || !issuer.algorithms.includes(alg)) {
      return refuse('disallowed_algorithm', `${where} is signed with ${JSON.stringify(String(alg)).slice(0, 24)}, which is not accepted for its issuer (${issuer.algorithms.join(', ')})`, issuer.issuer)
    }

    let current = keys.current()
    if ('unavailable' in current) {
      // Join the fetch under way (the first load), or fetch again if the cooldown permits.
      await keys.refetch(keys.loaded ? 'stale' : 'initial')
      current = keys.current()
      if ('unavailable' in current) return refuse('keys_unavailable', `${where} cannot be checked now: ${current.unavailable}`, issuer.issuer)
    }

    const options = { issuer: issuer.issuer, audience: [...issuer.audiences], algorithms: [...issuer.algorithms], clockTolerance, requiredClaims: ['exp'] }
    const attempt = async (set: LocalKeySet): Promise<{ payload: JWTPayload } | { code: string, claim: unknown }> => {
      try {
        return { payload: (await jwtVerify(token, set, options)).payload }
      } catch (err) {
        const e = err as { code?: unknown, claim?: unknown }
        return { code: typeof e.code === 'string' ? e.code : 'ERR_UNKNOWN', claim: e.claim }
      }
    }
    let outcome = await attempt(current.set)
    if ('code' in outcome && outcome.code === 'ERR_JWKS_NO_MATCHING_KEY' && await keys.refetch('unknown_key')) {
      const again = keys.current()
      if ('set' in again) outcome = await attempt(again.set)
    }
    if ('code' in outcome && outcome.code === 'ERR_JWKS_NO_MATCHING_KEY' && keys.lastError !== null) {
      // The key may be a new one the provider cannot be asked about now: not a forgery (401) for sure.
      return refuse('keys_unavailable', `${where} is signed with a key not in the set held, and ${issuer.issuer} cannot be reached for a new one (${keys.lastError})`, issuer.issuer)
    }
    if ('code' in outcome) {
      const [result, why] = failure(outcome.code, typeof outcome.claim === 'string' ? outcome.claim : undefined)
      return refuse(result, `${where} ${why}`, issuer.issuer)
    }
    const identity = readIdentity(outcome.payload, issuer)
    if ('problem' in identity) return refuse('unusable_claim', `${where} cannot be used: ${identity.problem}`, issuer.issuer)
    observer?.onToken?.('ok', issuer.issuer)
    return { ok: true, identity }
  }

  const verifier: IdentityVerifier = {
    header: config.header,
    verify,
    ready: () => [...issuers.values()].every((k) => k.loaded),
    loaded: async () => { await Promise.all([...issuers.values()].map(async (k) => k.settled())) },
    close: () => { for (const k of issuers.values()) k.close() },
  }
  snapshots.set(verifier, (name) => issuers.get(name)?.snapshot() ?? null)
  return verifier
}

/** A jose error code (and the claim it names) -> the result and the words for it. */
function failure (code: string, claim: string | undefined): [Exclude<TokenResult, 'ok' | 'absent'>, string] {
  switch (code) {
    case 'ERR_JWT_EXPIRED': return ['expired', 'has expired']
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED': return ['bad_signature', 'has a signature its issuer\'s keys do not verify']
    case 'ERR_JWKS_NO_MATCHING_KEY': return ['unknown_key', 'is signed with a key its issuer does not publish']
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS': return ['unknown_key', 'names no key (kid), and its issuer publishes several']
    case 'ERR_JOSE_ALG_NOT_ALLOWED': return ['disallowed_algorithm', 'is signed with an algorithm that is not accepted']
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (claim === 'nbf') return ['not_yet_valid', 'is not valid yet (nbf)']
      if (claim === 'aud') return ['wrong_audience', 'is not meant for this gateway (aud)']
      if (claim === 'iss') return ['wrong_issuer', 'is from an issuer the gateway does not accept']
      if (claim === 'exp') return ['malformed', 'has no expiry (exp)']
      return ['malformed', `has an unusable ${claim ?? ''} claim`]
    default: return ['malformed', 'cannot be read as a signed JWT']
  }
}
