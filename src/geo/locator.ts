// Address -> location, through an LRU of canonical address to result: the hot path asks the
// cache and only a miss reaches the databases. Special-purpose addresses are an unknown
// location before any database is asked.
import { LRUCache } from 'lru-cache'
import { isSpecialPurpose } from './address.js'
import type { GeoDatabase } from './databases.js'
import { readRecord } from './record-schema.js'

export type LocationSource = 'geoip' | 'none'

export interface Location {
  country: string | null
  registeredCountry: string | null
  source: LocationSource
  /** Which database answered (its file), when one did. */
  database?: string
  /** Why `country` is null. */
  reason?: 'special-purpose address' | 'not in any database' | 'only a registered country' | 'lookup failed' | 'address unknown'
}

export interface CacheOptions {
  maxEntries: number
  ttlMs: number
}

export interface LocatorStats {
  hits: number
  misses: number
  lookupErrors: number
}

const SPECIAL: Location = Object.freeze({ country: null, registeredCountry: null, source: 'none', reason: 'special-purpose address' })
const NOT_FOUND: Location = Object.freeze({ country: null, registeredCountry: null, source: 'none', reason: 'not in any database' })
const FAILED: Location = Object.freeze({ country: null, registeredCountry: null, source: 'none', reason: 'lookup failed' })

export class Locator {
  readonly databases: readonly GeoDatabase[]
  readonly stats: LocatorStats = { hits: 0, misses: 0, lookupErrors: 0 }
  readonly #cache: LRUCache<string, Location> | null

  constructor (databases: readonly GeoDatabase[], cache: CacheOptions) {
    this.databases = databases
    this.#cache = cache.maxEntries > 0
      ? new LRUCache<string, Location>({ max: cache.maxEntries, ...(cache.ttlMs > 0 ? { ttl: cache.ttlMs } : {}) })
      : null
  }

  /** `ip` must be canonical (geo/address.ts). */
  locate (ip: string): Location {
    const cached = this.#cache?.get(ip)
    if (cached !== undefined) {
      this.stats.hits++
      return cached
    }
    this.stats.misses++
    const location = this.#lookup(ip)
    // A failed lookup is not cached: the next request tries again.
    if (location !== FAILED) this.#cache?.set(ip, location)
    return location
  }

  get cacheSize (): number {
    return this.#cache?.size ?? 0
  }

  #lookup (ip: string): Location {
    if (isSpecialPurpose(ip)) return SPECIAL
    let registeredOnly: Location | null = null
    for (const db of this.databases) {
      let found
      try {
        found = readRecord(db.reader.get(ip))
      } catch {
        this.stats.lookupErrors++
        return FAILED
      }
      if (found === null) continue
      if (found.country !== null) {
        return { country: found.country, registeredCountry: found.registeredCountry, source: 'geoip', database: db.file }
      }
      registeredOnly ??= { country: null, registeredCountry: found.registeredCountry, source: 'geoip', database: db.file, reason: 'only a registered country' }
    }
    return registeredOnly ?? NOT_FOUND
  }
}

export const UNKNOWN_ADDRESS: Location = Object.freeze({ country: null, registeredCountry: null, source: 'none', reason: 'address unknown' })
