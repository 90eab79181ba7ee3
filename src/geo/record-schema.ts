// The record shapes a database may carry, read into one small location.
//   MaxMind GeoIP2 / GeoLite2 / DB-IP country and city:
//     { country: { iso_code }, registered_country: { iso_code }, subdivisions: [{ iso_code }] }
//   ip-location-db (the embedded default): { country_code }
//   MaxMind GeoIP2 Anonymous IP: { is_anonymous: true, is_anonymous_vpn: true, ... } (keys only when true)
// A code that is not an ISO 3166-1 country (the old EU/AP pseudo-codes, ZZ, "") reads as absent.
import { COUNTRY_CODES } from './countries.js'

export interface RecordLocation {
  country: string | null
  registeredCountry: string | null
  /** ISO 3166-2 codes, largest first (City databases only). */
  subdivisions: string[]
}

interface GeoRecord {
  country_code?: unknown
  country?: { iso_code?: unknown }
  registered_country?: { iso_code?: unknown }
  subdivisions?: unknown
}

function code (value: unknown): string | null {
  return typeof value === 'string' && COUNTRY_CODES.has(value) ? value : null
}

/** Null when the record is absent or carries no location at all. */
export function readRecord (record: unknown): RecordLocation | null {
  if (record === null || typeof record !== 'object') return null
  const r = record as GeoRecord
  const country = code(r.country_code) ?? code(r.country?.iso_code)
  const registeredCountry = code(r.registered_country?.iso_code)
  if (country === null && registeredCountry === null) return null
  const subdivisions: string[] = []
  if (country !== null && Array.isArray(r.subdivisions)) {
    for (const s of r.subdivisions as Array<{ iso_code?: unknown }>) {
      if (typeof s?.iso_code === 'string' && /^[A-Z0-9]{1,3}$/.test(s.iso_code)) subdivisions.push(`${country}-${s.iso_code}`)
    }
  }
  return { country, registeredCountry, subdivisions }
}

/** True when a record has one of the location shapes above. */
export function isLocationRecord (record: unknown): boolean {
  if (record === null || typeof record !== 'object') return false
  const r = record as GeoRecord
  return 'country_code' in r || 'country' in r || 'registered_country' in r || 'continent' in r
}

export const ANONYMOUS_FLAGS = ['is_anonymous', 'is_anonymous_vpn', 'is_hosting_provider', 'is_public_proxy',
  'is_residential_proxy', 'is_tor_exit_node'] as const

/** The anonymity flags set to true in an Anonymous IP record (empty when none or no record). */
export function readAnonymous (record: unknown): string[] {
  if (record === null || typeof record !== 'object') return []
  const r = record as Record<string, unknown>
  return ANONYMOUS_FLAGS.filter((flag) => r[flag] === true)
}

/** True when a record has the Anonymous IP shape: flags only. */
export function isAnonymousRecord (record: unknown): boolean {
  if (record === null || typeof record !== 'object') return false
  return Object.keys(record).every((k) => (ANONYMOUS_FLAGS as readonly string[]).includes(k))
}
