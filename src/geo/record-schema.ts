// The two record shapes a country database may carry, read into one small location.
//   MaxMind GeoIP2 / GeoLite2 / DB-IP: { country: { iso_code }, registered_country: { iso_code } }
//   ip-location-db (the embedded default): { country_code }
// A code that is not an ISO 3166-1 country (the old EU/AP pseudo-codes, ZZ, "") reads as absent.
import { COUNTRY_CODES } from '../policy/countries.js'

export interface RecordLocation {
  country: string | null
  registeredCountry: string | null
}

interface GeoRecord {
  country_code?: unknown
  country?: { iso_code?: unknown }
  registered_country?: { iso_code?: unknown }
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
  return { country, registeredCountry }
}

/** True when a record has one of the shapes above (used to refuse a database of another kind). */
export function isLocationRecord (record: unknown): boolean {
  if (record === null || typeof record !== 'object') return false
  const r = record as GeoRecord
  return 'country_code' in r || 'country' in r || 'registered_country' in r || 'continent' in r
}
