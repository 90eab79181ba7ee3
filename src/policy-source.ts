// One policy for a fleet (policy_source in a bootstrap file): the policy published at a URL,
// and its signature at URL.sig, fetched over HTTPS (policy_source.ca, through the egress proxy
// the environment or policy_source.proxy names), with If-None-Match, every `poll` less up to a
// quarter (jitter, so that a fleet started together does not fetch together, and a change is
// still picked up within one poll). A fetched policy is verified (the signature, with the keys
// the bootstrap read at start), then applied like a reload (reload.ts builds and checks the
// revision); until then, and whenever the server is down, answers 404 or 5xx, or serves a
// policy that is wrongly signed or invalid, the last good policy stays in force: counted by
// result, logged once per distinct problem, never applied. The last good copy is kept in memory
// and, with cache_dir, on disk (document, signature and ETag in one file, replaced by a
// rename), verified again when read, so that a restart while the server is down starts on an
// approved policy.
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { Agent, request, type Dispatcher } from 'undici'
import { ConfigError } from './errors.js'
import type { FetchedPolicy } from './config/load.js'
import { MAX_POLICY_BYTES, MAX_SIGNATURE_BYTES, POLICY_FETCH_TIMEOUT_MS, type FetchResult, type PolicySourceConfig } from './config/policy-source.js'
import { verifyFetchedPolicy } from './config/policy-signature.js'
import type { SigningKey } from './config/signing-keys.js'
import { egressConnector } from './proxy/egress.js'


export interface PolicySourceObserver {
  onFetch: (result: FetchResult) => void
  /** The source confirmed the policy in force (a verified 200 applied, or a 304), at `epochMs`. */
  onConfirmed: (epochMs: number) => void
}

/** A fetched policy with what the server said of it. */
interface Copy extends FetchedPolicy {
  etag: string | null
  /** When the source last confirmed it (ms since the epoch). */
  confirmedAt: number
}

/** The cache file's format (one JSON object). */
const CACHE_FORMAT = 'llm-geofence policy cache 1'
/** Each wait is `poll` times a factor in [1 - JITTER, 1]. */
const JITTER = 0.25

type Exchange = { status: number, etag: string | null, body: Buffer } | { error: string, tooLarge?: boolean }

export class PolicySource {
  readonly #config: PolicySourceConfig
  readonly #keys: readonly SigningKey[]
  readonly #bootstrapFile: string
  readonly #observer: PolicySourceObserver | undefined
  readonly #dispatcher: Dispatcher
  #logger: Logger | null = null
  readonly #early: Array<{ level: 'info' | 'warn' | 'error', obj: object, msg: string }> = []
  #current: Copy | null = null
  #timer: NodeJS.Timeout | null = null
  #closed = false
  /** The last problem logged, so that a server down for an hour is one line, not one per poll. */
  #lastProblem: string | null = null
  /** The last document a reload refused (sha256 of it and its signature). */
  #refused: { id: string } | null = null

  constructor (config: PolicySourceConfig, keys: readonly SigningKey[], bootstrapFile: string, observer?: PolicySourceObserver) {
    this.#config = config
    this.#keys = keys
    this.#bootstrapFile = bootstrapFile
    this.#observer = observer
    const connect = egressConnector({ egress: config.egress, direct: false, tls: config.ca === null ? {} : { ca: config.ca }, connectMs: POLICY_FETCH_TIMEOUT_MS })
    this.#dispatcher = new Agent({ connect: connect as never, headersTimeout: POLICY_FETCH_TIMEOUT_MS, bodyTimeout: POLICY_FETCH_TIMEOUT_MS, connections: 2 })
  }

  /** The last good policy (what reloads build on), or null before the first. */
  get current (): FetchedPolicy | null {
    return this.#current
  }

  /** Log lines written before the logger existed go out now (the logger is built from the bootstrap's logging). */
  attach (logger: Logger): void {
    this.#logger = logger
    for (const e of this.#early.splice(0)) logger[e.level](e.obj, e.msg)
  }

  /**
   * At start: the policy from the server or, when it cannot give an approved one, the cached
   * copy (checked by `load` as any other: signature, then the whole config). `load` builds the
   * revision; what it throws refuses the candidate. Without either: a ConfigError naming
   * policy_source.url, and nothing starts.
   */
  async start<T> (load: (fetched: FetchedPolicy) => Promise<T>): Promise<T> {
    const cached = await this.#readCache()
    const polled = await this.#fetch(cached)
    let result: FetchResult
    let reason: string
    if ('copy' in polled) {
      try {
        const loaded = await load(polled.copy)
        this.#accept(polled.copy, polled.result)
        this.#say('info', this.#described(polled.copy, { result: polled.result }), polled.result === 'not_modified' ? 'policy source: the cached policy is current' : 'policy source: policy fetched')
        return loaded
      } catch (err) {
        result = 'invalid'
        reason = polled.copy === cached ? `the cached copy is refused: ${(err as Error).message}` : (err as Error).message
      }
    } else {
      ({ result, reason } = polled)
    }
    this.#observer?.onFetch(result)
    const cacheTried = 'copy' in polled && polled.copy === cached
    if (cached !== null && !cacheTried) {
      try {
        const loaded = await load(cached)
        this.#current = cached
        this.#observer?.onConfirmed(cached.confirmedAt)
        this.#say('warn', this.#described(cached, { result, reason, cached_at: new Date(cached.confirmedAt).toISOString() }), 'policy source: no approved policy from the server; starting on the cached copy')
        this.#lastProblem = `${result}:${reason}`
        return loaded
      } catch (err) {
        throw this.#refusal(`${reason}; the copy in cache_dir is refused too: ${(err as Error).message}`)
      }
    }
    throw this.#refusal(`${reason}${this.#config.cacheDir === null ? '; with cache_dir set, a gateway starts on the last approved copy when the server is down' : '; cache_dir holds no approved copy'}`)
  }

  /** Polls from now on; each new policy goes to `apply` (a reload), and becomes the last good one when `accept` is called. */
  poll (apply: (fetched: FetchedPolicy, accept: () => void) => Promise<{ ok: boolean, error?: string }>): void {
    const next = (): void => {
      if (this.#closed) return
      this.#timer = setTimeout(() => { void this.#once(apply).finally(next) }, this.#config.pollMs * (1 - JITTER * Math.random()))
      this.#timer.unref()
    }
    next()
  }

  close (): void {
    this.#closed = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    void this.#dispatcher.close()
  }

  async #once (apply: (fetched: FetchedPolicy, accept: () => void) => Promise<{ ok: boolean, error?: string }>): Promise<void> {
    const polled = await this.#fetch(this.#current)
    let result: FetchResult
    let reason: string
    if ('copy' in polled) {
      const { copy } = polled
      if (polled.result === 'not_modified') {
        this.#accept(copy, 'not_modified')
        return
      }
      // The same refused document again (the server still serves it): refused again, not rebuilt.
      const id = candidateId(copy)
      if (this.#refused?.id === id) {
        this.#observer?.onFetch('invalid')
        return
      }
      let accepted = false
      const applied = await apply(copy, () => {
        accepted = true
        this.#accept(copy, 'updated')
      })
      if (applied.ok && accepted) {
        this.#say('info', this.#described(copy, { result: 'updated' }), 'policy source: new policy applied')
        return
      }
      result = 'invalid'
      reason = applied.error ?? 'the revision could not be built'
      this.#refused = { id }
    } else {
      ({ result, reason } = polled)
    }
    this.#observer?.onFetch(result)
    const problem = `${result}:${reason}`
    if (problem !== this.#lastProblem) {
      this.#lastProblem = problem
      this.#say(result === 'unreachable' || result === 'server_error' || result === 'not_found' ? 'warn' : 'error', {
        url: this.#config.url,
        result,
        reason,
        policy_revision: this.#current === null ? null : revisionOf(this.#current),
      }, 'policy source: not applied; the last good policy stays in force')
    }
  }

  /** The policy in force is `copy`, confirmed now: kept in memory and, with cache_dir, on disk. */
  #accept (copy: Copy, result: 'updated' | 'not_modified'): void {
    copy.confirmedAt = Date.now()
    const changed = this.#current === null || revisionOf(this.#current) !== revisionOf(copy)
    this.#current = copy
    this.#lastProblem = null
    this.#observer?.onFetch(result)
    this.#observer?.onConfirmed(copy.confirmedAt)
    if (changed || result === 'updated') void this.#writeCache(copy)
  }

  /**
   * One poll: the document (If-None-Match the copy in force), then, when it changed, its
   * signature, verified. A copy to apply, or why there is none.
   */
  async #fetch (have: Copy | null): Promise<{ copy: Copy, result: 'updated' | 'not_modified' } | { result: FetchResult, reason: string }> {
    const { url, signatureUrl } = this.#config
    const doc = await this.#get(url, MAX_POLICY_BYTES, have?.etag ?? null)
    if ('error' in doc) return { result: doc.tooLarge === true ? 'invalid' : 'unreachable', reason: doc.error }
    if (doc.status === 304 && have !== null) return { copy: have, result: 'not_modified' }
    if (doc.status === 404) return { result: 'not_found', reason: `${url} answered 404` }
    if (doc.status !== 200) return { result: 'server_error', reason: `${url} answered ${doc.status}` }
    // A server that sends no ETag: the same bytes are the same policy.
    if (have !== null && doc.body.equals(have.bytes)) return { copy: { ...have, etag: doc.etag ?? have.etag }, result: 'not_modified' }
    const sig = await this.#get(signatureUrl, MAX_SIGNATURE_BYTES, null)
    if ('error' in sig) return { result: sig.tooLarge === true ? 'bad_signature' : 'unreachable', reason: sig.error }
    if (sig.status === 404) return { result: 'bad_signature', reason: `the policy is not signed: ${signatureUrl} answered 404 (publish it with geofence sign --key KEY FILE)` }
    if (sig.status !== 200) return { result: 'server_error', reason: `${signatureUrl} answered ${sig.status}` }
    const copy: Copy = { url, bytes: doc.body, signature: sig.body, etag: doc.etag, confirmedAt: Date.now() }
    const verified = await verifyFetchedPolicy(copy, this.#keys)
    if ('problem' in verified) return { result: 'bad_signature', reason: verified.problem }
    return { copy, result: 'updated' }
  }

  /** One GET, its body read up to `limit` bytes (a larger one is abandoned unread). */
  async #get (url: string, limit: number, etag: string | null): Promise<Exchange> {
    try {
      const res = await request(url, {
        dispatcher: this.#dispatcher,
        method: 'GET',
        headers: { accept: 'application/yaml, text/yaml, application/json, */*', 'user-agent': 'llm-geofence', ...(etag === null ? {} : { 'if-none-match': etag }) },
        signal: AbortSignal.timeout(POLICY_FETCH_TIMEOUT_MS),
      })
      const chunks: Buffer[] = []
      let size = 0
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length
        if (size > limit) {
          res.body.destroy()
          return { error: `${url} is larger than ${limit} bytes`, tooLarge: true }
        }
        chunks.push(chunk as Buffer)
      }
      const tag = res.headers['etag']
      return { status: res.statusCode, etag: typeof tag === 'string' ? tag : null, body: Buffer.concat(chunks) }
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException }
      return { error: `${url} could not be fetched: ${e.cause?.message ?? e.code ?? e.message}` }
    }
  }

  get #cacheFile (): string | null {
    const dir = this.#config.cacheDir
    return dir === null ? null : join(dir, `policy-${createHash('sha256').update(this.#config.url).digest('hex').slice(0, 16)}.json`)
  }

  /** The cached copy (verified again by whoever loads it), or null: none, another URL's, or unreadable (said). */
  async #readCache (): Promise<Copy | null> {
    const file = this.#cacheFile
    if (file === null) return null
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#say('warn', { file, reason: (err as Error).message }, 'policy source: the cached copy cannot be read')
      return null
    }
    try {
      const c = JSON.parse(text) as { format?: unknown, url?: unknown, etag?: unknown, confirmed_at?: unknown, document?: unknown, signature?: unknown }
      if (c.format !== CACHE_FORMAT || c.url !== this.#config.url || typeof c.document !== 'string' || typeof c.signature !== 'string' || typeof c.confirmed_at !== 'string') throw new Error(`not a ${CACHE_FORMAT} for ${this.#config.url}`)
      return { url: this.#config.url, bytes: Buffer.from(c.document, 'base64'), signature: Buffer.from(c.signature), etag: typeof c.etag === 'string' ? c.etag : null, confirmedAt: Date.parse(c.confirmed_at) }
    } catch (err) {
      this.#say('warn', { file, reason: (err as Error).message }, 'policy source: the cached copy is not usable')
      return null
    }
  }

  /** Document, signature and ETag in one file, replaced by a rename: never a document with another's signature. */
  async #writeCache (copy: Copy): Promise<void> {
    const file = this.#cacheFile
    if (file === null || this.#config.cacheDir === null) return
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
    try {
      await mkdir(this.#config.cacheDir, { recursive: true })
      await writeFile(tmp, `${JSON.stringify({ format: CACHE_FORMAT, url: copy.url, etag: copy.etag, confirmed_at: new Date(copy.confirmedAt).toISOString(), document: copy.bytes.toString('base64'), signature: copy.signature.toString('utf8') })}\n`, { mode: 0o600 })
      await rename(tmp, file)
    } catch (err) {
      await rm(tmp, { force: true })
      this.#say('warn', { file, reason: (err as Error).message }, 'policy source: the approved copy cannot be written to cache_dir')
    }
  }

  #refusal (reason: string): ConfigError {
    return new ConfigError(this.#bootstrapFile, [{ path: ['policy_source', 'url'], message: `no approved policy from ${this.#config.url}: ${reason}` }])
  }

  #described (copy: Copy, extra: object): object {
    return { url: this.#config.url, policy_revision: revisionOf(copy), etag: copy.etag, ...extra }
  }

  #say (level: 'info' | 'warn' | 'error', obj: object, msg: string): void {
    if (this.#logger === null) this.#early.push({ level, obj, msg })
    else this.#logger[level](obj, msg)
  }
}

/** A document with its signature, as one id. */
function candidateId (copy: FetchedPolicy): string {
  return createHash('sha256').update(copy.bytes).update('\0').update(copy.signature).digest('hex')
}

/** A policy's revision: the sha256 of its bytes, as config/load.ts names it. */
function revisionOf (copy: FetchedPolicy): string {
  return createHash('sha256').update(copy.bytes).digest('hex')
}
