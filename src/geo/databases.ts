// Opening MaxMind-format databases, and refusing any that cannot serve (fail closed):
// unreadable, gzip, truncated (no metadata), corrupt (a probe lookup throws), or of another
// kind (an ASN or ISP database whose records carry no location).
import { createRequire } from 'node:module'
import maxmind, { type Reader } from 'maxmind'
import { isAnonymousRecord, isLocationRecord } from './record-schema.js'

export type DatabaseKind = 'location' | 'anonymous'

export interface GeoDatabase {
  file: string
  kind: DatabaseKind
  type: string
  /** City-level databases carry ISO 3166-2 subdivisions. */
  hasSubdivisions: boolean
  buildEpoch: Date
  reader: Reader<Record<string, unknown>>
}

/** The embedded default: @ip-location-db/geo-whois-asn-country-mmdb (IPv4 and IPv6 in one file). */
export const DEFAULT_DATABASE = createRequire(import.meta.url)
  .resolve('@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb')

// Addresses spread over the space: a corrupt search tree or data section shows up on some of them.
const PROBES = ['1.1.1.1', '8.8.8.8', '23.1.1.1', '41.1.1.1', '77.88.8.8', '103.1.1.1', '185.1.1.1',
  '200.1.1.1', '2001:4860:4860::8888', '2a00:1450::1', '2400:cb00::1']

export class DatabaseError extends Error {
  readonly file: string
  constructor (file: string, reason: string, options?: { cause?: unknown }) {
    super(`${file}: ${reason}`, options)
    this.name = 'DatabaseError'
    this.file = file
  }
}

export async function openDatabase (file: string, kind: DatabaseKind = 'location'): Promise<GeoDatabase> {
  let reader: Reader<Record<string, unknown>>
  try {
    reader = await maxmind.open<Record<string, unknown>>(file, { cache: { max: 4096 } })
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    const reason = e.code === 'ENOENT'
      ? 'no such file'
      : e.code === 'EACCES' ? 'permission denied' : `not a readable MaxMind database (${e.message})`
    throw new DatabaseError(file, reason, { cause: err })
  }
  for (const ip of PROBES) {
    let record: unknown
    try {
      record = reader.get(ip)
    } catch (err) {
      throw new DatabaseError(file, `corrupt: looking up ${ip} failed (${(err as Error).message})`, { cause: err })
    }
    if (record !== null && kind === 'location' && !isLocationRecord(record)) {
      throw new DatabaseError(file, `not a country database: its records carry no country (database type "${reader.metadata.databaseType}")`)
    }
    if (record !== null && kind === 'anonymous' && !isAnonymousRecord(record)) {
      throw new DatabaseError(file, `not an Anonymous IP database: its records are not anonymity flags (database type "${reader.metadata.databaseType}")`)
    }
  }
  const type = reader.metadata.databaseType
  return { file, kind, type, hasSubdivisions: /city|enterprise/i.test(type), buildEpoch: reader.metadata.buildEpoch, reader }
}
