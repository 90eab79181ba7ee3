// Hot reload: the config file and every database are watched (their directories, so that a
// replacement by rename, as geoipupdate and Kubernetes ConfigMaps do it, is seen as well as a
// write in place), and SIGHUP asks for a reload. A new revision is built off the hot path and
// swapped in with one assignment; requests in flight keep the revision they started with. A
// revision that cannot be built (bad config, unreadable, truncated or corrupt database) leaves
// the running one in place and is logged with the file and the reason.
import { watch, type FSWatcher } from 'node:fs'
import { stat } from 'node:fs/promises'
import { basename, dirname, resolve } from 'node:path'
import type { Logger } from 'pino'
import { ConfigError } from './errors.js'
import { loadRuntime, type Runtime, type RuntimeOptions, type RuntimeRef } from './runtime.js'

export const DEFAULT_RELOAD_DEBOUNCE_MS = 250
/** Directory events can be missed (network filesystems, some container mounts): stat as well. */
export const DEFAULT_RELOAD_POLL_MS = 5_000

export interface ReloadResult {
  ok: boolean
  changed: boolean
  revision: string
  error?: string
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
    this.#running = this.#attempt(trigger)
    try {
      return await this.#running
    } finally {
      this.#running = null
      if (this.#again && !this.#closed) {
        this.#again = false
        void this.reload(trigger)
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

  async #attempt (trigger: string): Promise<ReloadResult> {
    const previous = this.#ref.current
    // What this attempt is about to read, taken before it reads: a file that changes while the
    // attempt runs then differs from it, and the change is reloaded too instead of being taken
    // for the state just loaded.
    const seen = await this.#fingerprint(this.#files(previous))
    let result: ReloadResult
    try {
      const next = await loadRuntime(this.#file, this.#runtimeOptions)
      this.#ref.current = next
      result = { ok: true, changed: next.policy.revision !== previous.policy.revision, revision: next.policy.revision }
      this.#logger.info({
        trigger,
        policy_revision: next.policy.revision,
        previous_revision: previous.policy.revision,
        databases: next.locator.databases.map((d) => ({ file: d.file, build: d.buildEpoch.toISOString() })),
      }, 'reloaded')
      await this.#rewatch(next, seen)
    } catch (err) {
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

  #files (runtime: Runtime): string[] {
    const dbs = [...runtime.locator.databases, ...(runtime.locator.anonymousDb === null ? [] : [runtime.locator.anonymousDb])]
    return [this.#file, ...dbs.map((d) => d.file)]
  }

  /** Watches the directories of a revision's files; `seen` holds fingerprints taken before it was read. */
  async #rewatch (runtime: Runtime, seen?: ReadonlyMap<string, string>): Promise<void> {
    for (const w of this.#watchers) w.close()
    this.#watchers = []
    if (this.#closed) return
    const files = this.#files(runtime)
    const now = await this.#fingerprint(files)
    this.#fingerprints = new Map(files.map((f) => [f, seen?.get(f) ?? now.get(f) ?? 'missing']))
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
    const now = await this.#fingerprint([...this.#fingerprints.keys()])
    const changed = [...now].filter(([file, fp]) => this.#fingerprints.get(file) !== fp).map(([file]) => basename(file))
    if (changed.length > 0) await this.reload(`changed: ${changed.join(', ')}`)
  }

  /** Identity and size and time of each file (through symlinks, as ConfigMaps mount them). */
  async #fingerprint (files: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>()
    await Promise.all(files.map(async (f) => {
      try {
        const s = await stat(f)
        out.set(f, `${s.ino}:${s.size}:${s.mtimeMs}`)
      } catch {
        out.set(f, 'missing')
      }
    }))
    return out
  }
}
