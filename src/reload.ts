// Hot reload: the config file and every database are watched (their directories, so that a
// replacement by rename, as geoipupdate and Kubernetes ConfigMaps do it, is seen as well as a
// write in place), and SIGHUP asks for a reload. A new revision is built off the hot path and
// swapped in with one assignment; requests in flight keep the revision they started with.
// Whatever asks for it (an event, the poll, SIGHUP), a reload reads the files only once they
// have stopped changing (the same identity, size, time and content for a whole debounce window)
// and applies what it read only if they still hold that content afterwards: a file caught
// between two writes is never a revision, even when its first part alone is a valid config. A
// revision that cannot be built (bad config, unreadable, truncated or corrupt database) leaves
// the running one in place and is logged with the file and the reason.
import { createHash } from 'node:crypto'
import { createReadStream, watch, type FSWatcher } from 'node:fs'
import { stat } from 'node:fs/promises'
import { basename, dirname, resolve } from 'node:path'
import type { Logger } from 'pino'
import { ConfigError } from './errors.js'
import { loadRuntime, type Runtime, type RuntimeOptions, type RuntimeRef } from './runtime.js'
import { signatureFileOf } from './config/policy-signature.js'
import type { FetchedPolicy } from './config/load.js'

/** A policy fetched from policy_source, and what to do once it is in force. */
interface Candidate {
  fetched: FetchedPolicy
  accept: () => void
}

/** How long every file must stay unchanged before a reload reads it (and the wait after an event). */
export const DEFAULT_RELOAD_DEBOUNCE_MS = 250
/** Directory events can be missed (network filesystems, some container mounts): stat as well. */
export const DEFAULT_RELOAD_POLL_MS = 5_000

export interface ReloadResult {
  ok: boolean
  changed: boolean
  revision: string
  error?: string
}

/** A file as a reload sees it: `stat` (identity, size, time) is what watching compares. */
interface FileState {
  stat: string
  sha256: string
}

export interface ReloaderOptions {
  debounceMs?: number
  pollMs?: number
  /** Called after every attempt (for metrics). */
  onResult?: (result: ReloadResult) => void
  /** Passed to each new revision's locator. */
  runtime?: RuntimeOptions
}

export class Reloader {
  readonly #ref: RuntimeRef
  readonly #file: string
  readonly #logger: Logger
  readonly #debounceMs: number
  readonly #onResult: ((r: ReloadResult) => void) | undefined
  readonly #runtimeOptions: RuntimeOptions
  #watchers: FSWatcher[] = []
  #fingerprints = new Map<string, string>()
  #timer: NodeJS.Timeout | null = null
  #poll: NodeJS.Timeout | null = null
  #running: Promise<ReloadResult> | null = null
  #again = false
  #recheck = false
  #closed = false

  constructor (ref: RuntimeRef, configFile: string, logger: Logger, opts: ReloaderOptions = {}) {
    this.#ref = ref
    this.#file = resolve(configFile)
    this.#logger = logger
    this.#debounceMs = opts.debounceMs ?? DEFAULT_RELOAD_DEBOUNCE_MS
    this.#onResult = opts.onResult
    this.#runtimeOptions = opts.runtime ?? {}
    const pollMs = opts.pollMs ?? DEFAULT_RELOAD_POLL_MS
    if (pollMs > 0) {
      this.#poll = setInterval(() => { this.#schedule() }, pollMs)
      this.#poll.unref()
    }
  }

  /** Starts watching the files of the revision in force. */
  async start (): Promise<void> {
    await this.#rewatch(this.#ref.current)
  }

  /**
   * Builds and swaps in a new revision now. Concurrent calls share one attempt, and a call made
   * while an attempt runs causes one more attempt after it (so no change is missed).
   */
  async reload (trigger: string): Promise<ReloadResult> {
    if (this.#running !== null) {
      this.#again = true
      return this.#running
    }
    return this.#run(trigger)
  }

  /**
   * A policy fetched from policy_source, applied like a reload: after any attempt under way,
   * never merged into it. `accept` is called, before any other attempt can start, once a
   * revision built on it is in force (it becomes the policy later reloads build on).
   */
  async reloadWith (trigger: string, fetched: FetchedPolicy, accept: () => void): Promise<ReloadResult> {
    while (this.#running !== null) await this.#running
    return this.#run(trigger, { fetched, accept })
  }

  async #run (trigger: string, candidate?: Candidate): Promise<ReloadResult> {
    this.#running = this.#attempt(trigger, candidate)
    try {
      return await this.#running
    } finally {
      this.#running = null
      if (this.#again && !this.#closed) {
        this.#again = false
        this.#recheck = false
        void this.reload(trigger)
      } else if (this.#recheck && !this.#closed) {
        // A change seen while the attempt ran: reload only if the attempt did not take it in.
        this.#recheck = false
        void this.#reloadIfChanged()
      }
    }
  }

  close (): void {
    this.#closed = true
    for (const w of this.#watchers) w.close()
    this.#watchers = []
    if (this.#timer !== null) clearTimeout(this.#timer)
    if (this.#poll !== null) clearInterval(this.#poll)
  }

  async #attempt (trigger: string, candidate?: Candidate): Promise<ReloadResult> {
    const previous = this.#ref.current
    // The files are read once they have settled, and what was read is kept only if they still
    // hold the settled content afterwards; else (a write landed meanwhile) they settle again.
    // A new config may name databases the running one does not: they must settle too.
    let files = this.#files(previous)
    let settled = await this.#settle(files)
    let outcome: { next: Runtime } | { err: unknown }
    for (;;) {
      if (this.#closed) return { ok: false, changed: false, revision: previous.policy.revision, error: 'the reloader is closed' }
      try {
        const fetched = candidate === undefined ? {} : { fetched: () => candidate.fetched }
        outcome = { next: await loadRuntime(this.#file, { ...this.#runtimeOptions, previous, ...fetched }) }
      } catch (err) {
        outcome = { err }
      }
      const wanted = 'next' in outcome ? [...new Set([...files, ...this.#files(outcome.next)])] : files
      const after = await this.#states(wanted, true)
      if (wanted.every((f) => same(settled.get(f), after.get(f)))) break
      // Read while a file was changing: discarded, and its key refreshes with it.
      if ('next' in outcome) outcome.next.identity?.close()
      files = wanted
      settled = await this.#settle(files)
    }
    // What was seen, for watching: a change after it is reloaded, a change before it is in.
    const seen = new Map([...settled].map(([f, state]) => [f, state.stat]))
    let result: ReloadResult
    if ('next' in outcome) {
      const { next } = outcome
      this.#ref.current = next
      candidate?.accept()
      // The replaced revision's key refreshes stop; requests still holding it keep its keys.
      if (previous.identity !== next.identity) previous.identity?.close()
      result = { ok: true, changed: next.policy.revision !== previous.policy.revision, revision: next.policy.revision }
      this.#warnIfSignatureSectionChanged(next)
      this.#logger.info({
        trigger,
        policy_revision: next.policy.revision,
        ...(next.config.policyKey === null ? {} : { policy_key: next.config.policyKey }),
        ...(next.config.policySource === null ? {} : { policy_source: next.config.policySource.url }),
        previous_revision: previous.policy.revision,
        databases: next.locator.databases.map((d) => ({ file: d.file, build: d.buildEpoch.toISOString() })),
      }, 'reloaded')
      await this.#rewatch(next, seen)
    } else {
      const { err } = outcome
      const file = err instanceof ConfigError ? err.file : this.#file
      const reason = err instanceof Error ? err.message : String(err)
      result = { ok: false, changed: false, revision: previous.policy.revision, error: reason }
      this.#logger.error({ trigger, file, reason, policy_revision: previous.policy.revision }, 'reload failed; the running revision stays in force')
      // Remember what was seen, so that the same broken files are not retried on every poll.
      this.#fingerprints = seen
    }
    this.#onResult?.(result)
    return result
  }

  /**
   * Waits until `files` have stayed the same for a whole debounce window, and returns that
   * state. A file still being written (in several writes, or downloaded in place) is waited for.
   */
  async #settle (files: readonly string[]): Promise<Map<string, FileState>> {
    let before = await this.#states(files, true)
    let logged = false
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, this.#debounceMs).unref())
      const now = await this.#states(files, true)
      const changing = files.filter((f) => !same(before.get(f), now.get(f)))
      if (changing.length === 0 || this.#closed) return now
      if (!logged) {
        this.#logger.info({ files: changing, debounce_ms: this.#debounceMs }, 'reload waits: files are still changing')
        logged = true
      }
      before = now
    }
  }

  #files (runtime: Runtime): string[] {
    const dbs = [...runtime.locator.databases, ...(runtime.locator.anonymousDb === null ? [] : [runtime.locator.anonymousDb])]
    const jwks = runtime.config.identity?.issuers.flatMap((i) => (i.keys.kind === 'jwks_file' ? [i.keys.file] : [])) ?? []
    // A signed policy: a new signature is a change too, and settles with the config.
    const signature = Array.isArray(this.#runtimeOptions.policyKeys) ? [signatureFileOf(this.#file)] : []
    return [this.#file, ...signature, ...dbs.map((d) => d.file), ...jwks, ...runtime.config.tlsFiles]
  }

  /** policy_signature is read at start only: a reload that changes it is applied without that change, and says so. */
  #warnIfSignatureSectionChanged (next: Runtime): void {
    const required = this.#runtimeOptions.policyKeys
    const atStart = (Array.isArray(required) ? required as ReadonlyArray<{ id: string }> : []).map((k) => k.id).join(',')
    const now = (next.config.policySignature?.keys ?? []).map((k) => k.id).join(',')
    if (atStart !== now) {
      this.#logger.warn({ policy_signature_at_start: atStart === '' ? null : atStart.split(','), policy_signature_in_file: now === '' ? null : now.split(',') }, 'policy_signature is read at start only: the keys read at start still decide which signatures are accepted')
    }
  }

  /** Watches the directories of a revision's files; `seen` holds fingerprints taken before it was read. */
  async #rewatch (runtime: Runtime, seen?: ReadonlyMap<string, string>): Promise<void> {
    for (const w of this.#watchers) w.close()
    this.#watchers = []
    if (this.#closed) return
    const files = this.#files(runtime)
    const now = await this.#fingerprint(files)
    this.#fingerprints = new Map(files.map((f) => [f, seen?.get(f) ?? now.get(f) ?? MISSING]))
    for (const dir of new Set(files.map((f) => dirname(f)))) {
      try {
        const w = watch(dir, { persistent: false }, () => { this.#schedule() })
        w.on('error', () => { /* the directory went away; polling still covers it */ })
        this.#watchers.push(w)
      } catch (err) {
        this.#logger.warn({ dir, reason: (err as Error).message }, 'cannot watch directory; relying on polling')
      }
    }
  }

  /** Debounced: a file written in several steps is read once, after the last step. */
  #schedule (): void {
    if (this.#closed) return
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#timer = null
      void this.#reloadIfChanged()
    }, this.#debounceMs)
    this.#timer.unref()
  }

  async #reloadIfChanged (): Promise<void> {
    if (this.#running !== null) {
      this.#recheck = true
      return
    }
    const now = await this.#fingerprint([...this.#fingerprints.keys()])
    const changed = [...now].filter(([file, fp]) => this.#fingerprints.get(file) !== fp).map(([file]) => basename(file))
    if (changed.length > 0) await this.reload(`changed: ${changed.join(', ')}`)
  }

  /** Identity and size and time of each file (through symlinks, as ConfigMaps mount them). */
  async #fingerprint (files: readonly string[]): Promise<Map<string, string>> {
    const states = await this.#states(files, false)
    return new Map([...states].map(([f, state]) => [f, state.stat]))
  }

  /** Each file's stat and, with `content`, the sha256 of its bytes (streamed: a large database does not stall requests). */
  async #states (files: readonly string[], content: boolean): Promise<Map<string, FileState>> {
    const out = new Map<string, FileState>()
    await Promise.all(files.map(async (f) => {
      let state: FileState = { stat: MISSING, sha256: MISSING }
      try {
        const s = await stat(f)
        state = { stat: `${s.ino}:${s.size}:${s.mtimeMs}`, sha256: content ? await sha256(f) : '' }
      } catch { /* missing or unreadable: a reload reports it */ }
      out.set(f, state)
    }))
    return out
  }
}

const MISSING = 'missing'

function same (a: FileState | undefined, b: FileState | undefined): boolean {
  return a !== undefined && b !== undefined && a.stat === b.stat && a.sha256 === b.sha256
}

async function sha256 (file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer)
  return hash.digest('hex')
}
