// Address -> location, through an LRU of canonical address to result: the hot path asks the
// cache and only a miss does the work. On a miss: configured networks first (longest prefix
// wins: office subnets no public database knows), then special-purpose ranges (an unknown
// location), then the databases in order, and the Anonymous IP database for its flags.
// One Locator per config revision: a reload builds a new one, so the cache starts empty.
import { LRUCache } from 'lru-cache'
import { AddressSet, isSpecialPurpose } from './address.js'
import type { GeoDatabase } from './databases.js'
import { readAnonymous, readRecord } from './record-schema.js'

export type LocationSource = 'geoip' | 'network' | 'none'

export interface Location {
  country: string | null
  registeredCountry: string | null
  /** ISO 3166-2 codes (UA-43), from a City database or a network's subdivision. */
  subdivisions: readonly string[]
  /** Anonymous IP flags that are true (is_anonymous_vpn, is_tor_exit_node, ...). */
  anonymous: readonly string[]
  source: LocationSource
  /** Which database answered (its file), when one did. */
  database?: string
  /** Which configured network matched. */
  network?: string
  /** Why `country` is null. */
  reason?: 'special-purpose address' | 'not in any database' | 'only a registered country' | 'lookup failed' | 'address unknown'
}

export interface CacheOptions {
  maxEntries: number
  ttlMs: number
}

export interface NetworkLocation {
  name: string
  cidr: readonly [string, number]
  country: string
  subdivision: string | null
}

/** Told of every cache hit, miss and lookup error (the metrics listen here). */
export interface LocatorObserver {
  hit: () => void
  miss: () => void
  error: () => void
}

export interface LocatorStats {
  hits: number
  misses: number
  lookupErrors: number
}

const NO_DETAIL = { registeredCountry: null, subdivisions: [], anonymous: [] } as const
const SPECIAL: Location = Object.freeze({ ...NO_DETAIL, country: null, source: 'none', reason: 'special-purpose address' })
const NOT_FOUND: Location = Object.freeze({ ...NO_DETAIL, country: null, source: 'none', reason: 'not in any database' })
const FAILED: Location = Object.freeze({ ...NO_DETAIL, country: null, source: 'none', reason: 'lookup failed' })
export const UNKNOWN_ADDRESS: Location = Object.freeze({ ...NO_DETAIL, country: null, source: 'none', reason: 'address unknown' })

interface CompiledNetwork { set: AddressSet, location: Location }

export class Locator {
  readonly databases: readonly GeoDatabase[]
  readonly anonymousDb: GeoDatabase | null
  readonly stats: LocatorStats = { hits: 0, misses: 0, lookupErrors: 0 }
  readonly #cache: LRUCache<string, Location> | null
  readonly #networks: readonly CompiledNetwork[]
  readonly #observer: LocatorObserver | undefined
  /** One frozen Location per distinct answer: the cache holds 100,000 pointers to a few hundred objects. */
  readonly #interned = new Map<string, Location>()

  constructor (databases: readonly GeoDatabase[], cache: CacheOptions, opts: { networks?: readonly NetworkLocation[], anonymous?: GeoDatabase | null, observer?: LocatorObserver } = {}) {
    this.databases = databases
    this.#observer = opts.observer
    this.anonymousDb = opts.anonymous ?? null
    this.#cache = cache.maxEntries > 0
      ? new LRUCache<string, Location>({ max: cache.maxEntries, ...(cache.ttlMs > 0 ? { ttl: cache.ttlMs } : {}) })
      : null
    // Longest prefix first, so the first match is the most specific.
    this.#networks = [...(opts.networks ?? [])]
      .sort((a, b) => b.cidr[1] - a.cidr[1])
      .map((n) => ({
        set: new AddressSet([n.cidr]),
        location: Object.freeze({ ...NO_DETAIL, country: n.country, subdivisions: n.subdivision === null ? [] : [n.subdivision], source: 'network', network: n.name }),
      }))
  }

  /** `ip` must be canonical (geo/address.ts). */
  locate (ip: string): Location {
    const cached = this.#cache?.get(ip)
    if (cached !== undefined) {
      this.stats.hits++
      this.#observer?.hit()
      return cached
    }
    this.stats.misses++
    this.#observer?.miss()
    const location = this.#intern(this.#lookup(ip))
    // A failed lookup is not cached: the next request tries again.
    if (location !== FAILED) this.#cache?.set(ip, location)
    return location
  }

  get cacheSize (): number {
    return this.#cache?.size ?? 0
  }

  #intern (l: Location): Location {
    if (Object.isFrozen(l)) return l
    const key = `${l.country ?? ''}|${l.registeredCountry ?? ''}|${l.subdivisions.join(',')}|${l.anonymous.join(',')}|${l.database ?? ''}|${l.reason ?? ''}`
    let shared = this.#interned.get(key)
    if (shared === undefined) {
      shared = Object.freeze({ ...l, subdivisions: Object.freeze([...l.subdivisions]), anonymous: Object.freeze([...l.anonymous]) })
      this.#interned.set(key, shared)
    }
    return shared
  }

  #lookup (ip: string): Location {
    for (const n of this.#networks) if (n.set.has(ip)) return n.location
    if (isSpecialPurpose(ip)) return SPECIAL
    let anonymous: string[] = []
    let registeredOnly: Location | null = null
    try {
      if (this.anonymousDb !== null) anonymous = readAnonymous(this.anonymousDb.reader.get(ip))
      for (const db of this.databases) {
        const found = readRecord(db.reader.get(ip))
        if (found === null) continue
        if (found.country !== null) return { ...found, anonymous, source: 'geoip', database: db.file }
        registeredOnly ??= { ...found, anonymous, source: 'geoip', database: db.file, reason: 'only a registered country' }
      }
    } catch {
      this.stats.lookupErrors++
      this.#observer?.error()
      return FAILED
    }
    if (registeredOnly !== null) return registeredOnly
    return anonymous.length === 0 ? NOT_FOUND : { ...NOT_FOUND, anonymous }
  }
}
