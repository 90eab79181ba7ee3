// A verified token's claims -> where the end user is: the country (ISO 3166-1), subdivisions
// (ISO 3166-2), legal entity and subject, read from the claim paths the issuer's config names.
// A claim value that is not a code is looked up in the issuer's `values` (site codes); anything
// else is refused, never guessed at (fail closed).
import type { JWTPayload } from 'jose'
import type { ClaimPath, IssuerConfig } from '../config/identity.js'
import { isSubdivisionCode } from '../policy/builtin-groups.js'
import { COUNTRY_CODES } from '../policy/countries.js'

/** The end user, as a verified identity token states it. */
export interface Identity {
  /** The token's `iss`, as configured. */
  issuer: string
  /** The subject claim (default `sub`). Log it hashed: it names a person. */
  subject: string
  /** ISO 3166-1 alpha-2. */
  country: string
  /** ISO 3166-2 codes of `country`; empty when the token names none. */
  subdivisions: readonly string[]
  /** The legal entity (rules match it as entity:NAME); null when the token names none. */
  entity: string | null
  /** The claim path the country was read from (`ctry`). */
  sourceClaim: string
  /** The token's id, when it has one (to find a token again in the provider's logs). */
  jti: string | null
}

const MAX_ENTITY = 128

export function readIdentity (claims: JWTPayload, issuer: IssuerConfig): Identity | { problem: string } {
  const subject = read(claims, issuer.claims.subject)
  if (typeof subject !== 'string' || subject === '') return { problem: `the token has no subject (${issuer.claims.subject.text})` }

  const countryPath = issuer.claims.country
  const rawCountry = read(claims, countryPath)
  if (rawCountry === undefined) return { problem: `the token has no ${countryPath.text} claim` }
  if (typeof rawCountry !== 'string') return { problem: `the ${countryPath.text} claim is not a string` }
  const mapped = issuer.values.get(rawCountry) ?? rawCountry
  let country: string
  const subdivisions: string[] = []
  if (COUNTRY_CODES.has(mapped)) {
    country = mapped
  } else if (isSubdivisionCode(mapped) && COUNTRY_CODES.has(mapped.slice(0, 2))) {
    // A site code may map to a subdivision (KYIV-HQ: UA-30): its country comes with it.
    country = mapped.slice(0, 2)
    subdivisions.push(mapped)
  } else {
    return { problem: `the ${countryPath.text} claim ${quote(rawCountry)} is not an ISO 3166-1 country code, nor a value ${issuer.path}.values maps` }
  }

  if (issuer.claims.subdivision !== null) {
    const path = issuer.claims.subdivision
    const raw = read(claims, path)
    const list = raw === undefined ? [] : Array.isArray(raw) ? raw as unknown[] : [raw]
    for (const item of list) {
      if (typeof item !== 'string') return { problem: `the ${path.text} claim is not a string or a list of strings` }
      const code = issuer.values.get(item) ?? item
      if (!isSubdivisionCode(code) || !code.startsWith(`${country}-`)) {
        return { problem: `the ${path.text} claim ${quote(item)} is not an ISO 3166-2 subdivision code of ${country}, nor a value ${issuer.path}.values maps to one` }
      }
      if (!subdivisions.includes(code)) subdivisions.push(code)
    }
  }

  let entity: string | null = null
  if (issuer.claims.entity !== null) {
    const raw = read(claims, issuer.claims.entity)
    if (raw !== undefined) {
      if (typeof raw !== 'string' || raw === '' || raw.length > MAX_ENTITY || /[\u0000-\u001f\u007f]/.test(raw)) {
        return { problem: `the ${issuer.claims.entity.text} claim is not a name (a string of 1 to ${MAX_ENTITY} characters)` }
      }
      entity = raw
    }
  }

  return {
    issuer: issuer.issuer,
    subject,
    country,
    subdivisions,
    entity,
    sourceClaim: countryPath.text,
    jti: typeof claims.jti === 'string' ? claims.jti : null,
  }
}

/** The value at a claim path, through own properties only; undefined when it is not there. */
function read (claims: JWTPayload, path: ClaimPath): unknown {
  let at: unknown = claims
  for (const name of path.segments) {
    if (typeof at !== 'object' || at === null || Array.isArray(at) || !Object.hasOwn(at, name)) return undefined
    at = (at as Record<string, unknown>)[name]
  }
  return at
}

/** A claim value in a message: the caller's own token, but bounded. */
function quote (value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}...` : value)
}
