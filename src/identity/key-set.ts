// One issuer's public keys, fetched off the hot path and kept: fetched at start, again every
// identity.refresh, and again when a token names a key the set does not hold; fetches that
// tokens cause (an unknown key, a set past max_stale) come at most once per
// identity.refetch_cooldown, and concurrent callers share the one in flight. When a
// fetch fails the last good set keeps verifying, for at most identity.max_stale after it was
// fetched; then the issuer's tokens cannot be checked (503), not passed.
// jose's createRemoteJWKSet is not used: it fetches on the request path once its cache is old
// and throws when that fetch fails (no last-good set), and a failed fetch starts no cooldown,
// so with the provider down every unknown key would fetch again.
import { createLocalJWKSet } from 'jose'
import type { IssuerConfig, KeySource } from '../config/identity.js'
import { checkedJwks, jwksUriFrom } from './key-fetch.js'

export type LocalKeySet = ReturnType<typeof createLocalJWKSet>

/** Why keys were fetched: at start, on the refresh timer, for a token's unknown key, or because the set was past max_stale. */
export type KeyFetchTrigger = 'initial' | 'refresh' | 'unknown_key' | 'stale'

/** Told of every attempt to fetch an issuer's keys (the metrics listen here). */
export interface KeyFetchEvent {
  issuer: string
  trigger: KeyFetchTrigger
  result: 'ok' | 'error'
  /** How many keys the new set holds (ok). */
  keys?: number
  /** Why it failed (error); fit for a log line. */
  error?: string
}

export interface KeySetTiming {
  maxStaleMs: number
  refreshMs: number
  refetchCooldownMs: number
}

/** What a new verifier may take over from the previous revision's, for the same issuer and key source. */
export interface KeySnapshot {
  source: string
  set: LocalKeySet
  fetchedAt: number
  jwksUri: string | null
}

export class IssuerKeys {
  readonly issuer: IssuerConfig
  readonly #fetchJson: (url: string, signal: AbortSignal) => Promise<unknown>
  readonly #timing: KeySetTiming
  readonly #onFetch: ((e: KeyFetchEvent) => void) | undefined
  readonly #abort = new AbortController()
  #set: LocalKeySet | null = null
  #fetchedAt = -Infinity
  /** When a token last caused a fetch: the cooldown counts from there. */
  #lastOnDemand = -Infinity
  #lastError: string | null = null
  /** From discovery (cached until a fetch fails) or the config. */
  #jwksUri: string | null
  #inflight: Promise<boolean> | null = null
  #timer: NodeJS.Timeout | null = null

  constructor (issuer: IssuerConfig, deps: { fetchJson: (url: string, signal: AbortSignal) => Promise<unknown>, timing: KeySetTiming, onFetch?: (e: KeyFetchEvent) => void }, previous?: KeySnapshot) {
    this.issuer = issuer
    this.#fetchJson = deps.fetchJson
    this.#timing = deps.timing
    this.#onFetch = deps.onFetch
    this.#jwksUri = issuer.keys.kind === 'jwks_uri' ? issuer.keys.url : null
    if (issuer.keys.kind === 'jwks_file') {
      // Read at load; never stale (a reload reads the file again).
      this.#set = createLocalJWKSet(issuer.keys.jwks as Parameters<typeof createLocalJWKSet>[0])
      this.#fetchedAt = Infinity
    } else if (previous !== undefined && previous.source === sourceKey(issuer.keys)) {
      this.#set = previous.set
      this.#fetchedAt = previous.fetchedAt
      this.#jwksUri = previous.jwksUri ?? this.#jwksUri
      this.#schedule(Math.max(0, previous.fetchedAt + this.#timing.refreshMs - Date.now()))
    } else {
      void this.#fetch('initial')
    }
  }

  /** True once a key set has been had (fetched, read from a file, or taken over). */
  get loaded (): boolean {
    return this.#set !== null
  }

  /** The key set to verify with now, or why there is none usable. */
  current (): { set: LocalKeySet } | { unavailable: string } {
    if (this.#set === null) return { unavailable: `no keys yet from ${this.issuer.issuer}${this.#lastError === null ? '' : ` (${this.#lastError})`}` }
    const age = Date.now() - this.#fetchedAt
    if (age > this.#timing.maxStaleMs) {
      return { unavailable: `the keys of ${this.issuer.issuer} were last fetched ${Math.round(age / 1000)} s ago, past identity.max_stale${this.#lastError === null ? '' : ` (${this.#lastError})`}` }
    }
    return { set: this.#set }
  }

  /** Why the last fetch failed, or null when it succeeded (or none was made). */
  get lastError (): string | null {
    return this.#lastError
  }

  /** Resolves when no fetch is in flight (the first load, at start). */
  async settled (): Promise<void> {
    if (this.#inflight !== null) await this.#inflight
  }

  /**
   * Fetches the keys again for a token, unless a token caused a fetch less than
   * refetch_cooldown ago; a fetch in flight is joined, never doubled. Resolves true when a new
   * key set was taken. (The cooldown does not count scheduled refreshes, so that a key
   * published just after one is still picked up at once.)
   */
  async refetch (trigger: KeyFetchTrigger): Promise<boolean> {
    if (this.#inflight !== null) return this.#inflight
    if (this.issuer.keys.kind === 'jwks_file') return false
    if (Date.now() - this.#lastOnDemand < this.#timing.refetchCooldownMs) return false
    this.#lastOnDemand = Date.now()
    return this.#fetch(trigger)
  }

  snapshot (): KeySnapshot | null {
    if (this.#set === null || this.issuer.keys.kind === 'jwks_file') return null
    return { source: sourceKey(this.issuer.keys), set: this.#set, fetchedAt: this.#fetchedAt, jwksUri: this.#jwksUri }
  }

  /** Stops the refresh timer and any fetch in flight; the keys held keep verifying. */
  close (): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.#abort.abort()
  }

  async #fetch (trigger: KeyFetchTrigger): Promise<boolean> {
    this.#inflight = this.#load().then((keys) => {
      this.#lastError = null
      this.#onFetch?.({ issuer: this.issuer.issuer, trigger, result: 'ok', keys })
      this.#schedule(this.#timing.refreshMs)
      return true
    }, (err: unknown) => {
      if (this.#abort.signal.aborted) return false
      this.#lastError = err instanceof Error ? err.message : String(err)
      // A discovered jwks_uri may have moved: ask discovery again next time.
      if (this.issuer.keys.kind === 'discovery') this.#jwksUri = null
      this.#onFetch?.({ issuer: this.issuer.issuer, trigger, result: 'error', error: this.#lastError })
      this.#schedule(this.#timing.refetchCooldownMs)
      return false
    }).finally(() => { this.#inflight = null })
    return this.#inflight
  }

  async #load (): Promise<number> {
    const signal = this.#abort.signal
    if (this.#jwksUri === null && this.issuer.keys.kind === 'discovery') {
      const url = this.issuer.keys.url
      this.#jwksUri = jwksUriFrom(await this.#fetchJson(url, signal), this.issuer.issuer, url)
    }
    const url = this.#jwksUri ?? ''
    const jwks = checkedJwks(await this.#fetchJson(url, signal), url)
    this.#set = createLocalJWKSet(jwks as Parameters<typeof createLocalJWKSet>[0])
    this.#fetchedAt = Date.now()
    return jwks.keys.length
  }

  #schedule (ms: number): void {
    if (this.#abort.signal.aborted) return
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = setTimeout(() => { if (this.#inflight === null) void this.#fetch('refresh') }, ms)
    this.#timer.unref()
  }
}

function sourceKey (keys: KeySource): string {
  return keys.kind === 'jwks_file' ? `file:${keys.file}` : `${keys.kind}:${keys.url}`
}
