// The tamper-evident log (logging.integrity): a pino destination that chains every line the
// process writes. Each line gets `chain` (this chain's id), `seq` (0, 1, 2, ...) and `prev`: the
// SHA-256 (hex) of the previous line's canonical bytes, which are the line exactly as written,
// without its newline. The chain starts with a genesis line ("log chain started") naming the
// process, the config and its revision, the key, and (with a checkpoint file) the previous
// chain's last checkpoint. Every `checkpoint_every` lines, every `checkpoint_interval` in which
// a line was written, and at a graceful stop (closed: true), a checkpoint line carries a
// signature over (chain, its own seq, its prev): it vouches for every line before it. A
// checkpoint is also appended to `checkpoint_file` when one is configured.
//
// The chaining is done where lines are serialized: pino hands each line over as one string,
// and three fields are written into it before its closing brace. The cost per line is a hash.
import crypto, { randomBytes } from 'node:crypto'
import { appendFileSync } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import { hostname } from 'node:os'
import type { DestinationStream } from 'pino'
import type { IntegrityConfig } from '../config/evidence.js'
import { signBytes } from '../config/signing-keys.js'
import { eachLine } from './lines.js'

/** Set by the cluster primary for each worker it forks (worker-1, ...), so that a replacement continues the slot. */
export const SLOT_ENV = 'GEOFENCE_LOG_SLOT'

/** This process's slot: main (no workers), primary, or the worker's. */
export function currentSlot (): string {
  return process.env[SLOT_ENV] ?? 'main'
}

export const CHAIN_STARTED = 'log chain started'
export const CHECKPOINT = 'log checkpoint'
export const CHAIN_CLOSED = 'log chain closed'

/** The bytes a checkpoint's signature covers. */
export function checkpointMessage (chain: string, seq: number, prev: string | null, closed: boolean): string {
  return `llm-geofence log checkpoint 1\nchain ${chain}\nseq ${seq}\nprev ${prev ?? 'null'}\n${closed ? 'closed' : 'open'}\n`
}

/** SHA-256 (hex) of a line's canonical bytes: as written, without the newline. */
export function lineHash (line: string | Buffer): string {
  // crypto.hash (Node 20.12+) hashes in one call, twice as fast as a Hash object per line.
  return typeof crypto.hash === 'function' ? crypto.hash('sha256', line, 'hex') : crypto.createHash('sha256').update(line).digest('hex')
}

/** A checkpoint as appended to the checkpoint file. */
export interface CheckpointRecord {
  time: string
  chain: string
  /** Which process of the deployment: main, primary, worker-1, ... (a restart continues the slot). */
  slot: string
  seq: number
  prev: string | null
  closed: boolean
  key: string
  signature: string
}

export interface ChainOptions {
  integrity: IntegrityConfig
  slot: string
  config: string
  policyRevision: string
}

export class LogChain implements DestinationStream {
  readonly id = randomBytes(8).toString('hex')
  readonly #inner: DestinationStream
  readonly #opts: ChainOptions
  readonly #timer: NodeJS.Timeout
  readonly #host = JSON.stringify(hostname())
  #seq = 0
  #prev: string | null = null
  #since = 0
  #closed = false

  constructor (inner: DestinationStream, opts: ChainOptions, previous: CheckpointRecord | null) {
    this.#inner = inner
    this.#opts = opts
    const { integrity } = opts
    const start = {
      slot: opts.slot,
      config: opts.config,
      policy_revision: opts.policyRevision,
      key: integrity.key.id,
      checkpoint_every: integrity.checkpointEvery,
      checkpoint_interval_ms: integrity.checkpointIntervalMs,
      previous: previous === null ? null : { chain: previous.chain, seq: previous.seq, prev: previous.prev, closed: previous.closed, time: previous.time },
    }
    this.#append(`${this.#head()},"chain_start":${JSON.stringify(start)},"msg":"${CHAIN_STARTED}"`)
    this.#timer = setInterval(() => { if (this.#since > 0) this.checkpoint() }, integrity.checkpointIntervalMs)
    this.#timer.unref()
  }

  /** One line from pino ("{...}\n"): chained, then handed on. */
  write (s: string): void {
    let end = s.length
    if (s.charCodeAt(end - 1) === 10) end--
    // Not a JSON object (pino writes nothing else): passed on unchained; verify-log names it.
    if (s.charCodeAt(end - 1) !== 125) {
      this.#inner.write(s)
      return
    }
    this.#append(s.slice(0, end - 1))
    if (this.#since >= this.#opts.integrity.checkpointEvery) this.checkpoint()
  }

  /** A signed checkpoint now: it vouches for every line written before it. */
  checkpoint (closed = false): void {
    const { key, checkpointFile } = this.#opts.integrity
    const seq = this.#seq
    const prev = this.#prev
    const signature = signBytes(key, checkpointMessage(this.id, seq, prev, closed)).toString('base64')
    this.#append(`${this.#head()},"checkpoint":{"key":"${key.id}","signature":"${signature}"},"msg":"${closed ? CHAIN_CLOSED : CHECKPOINT}"`)
    this.#since = 0
    if (checkpointFile !== null) {
      const record: CheckpointRecord = { time: new Date().toISOString(), chain: this.id, slot: this.#opts.slot, seq, prev, closed, key: key.id, signature }
      // Synchronous and appended: a checkpoint is on disk before the lines after it are written.
      appendFileSync(checkpointFile, `${JSON.stringify(record)}\n`)
    }
  }

  /** The closing checkpoint (at a graceful stop): verify-log then knows the chain ended here. */
  close (): void {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#timer)
    this.checkpoint(true)
  }

  /** pino's logger.flush(cb) lands here. */
  flush (cb?: (err?: Error) => void): void {
    const inner = this.#inner as { flush?: (cb?: (err?: Error) => void) => void }
    if (typeof inner.flush === 'function') inner.flush(cb)
    else cb?.()
  }

  flushSync (): void {
    (this.#inner as { flushSync?: () => void }).flushSync?.()
  }

  /** `body` is a line without its closing brace. */
  #append (body: string): void {
    const line = `${body},"chain":"${this.id}","seq":${this.#seq},"prev":${this.#prev === null ? 'null' : `"${this.#prev}"`}}`
    this.#prev = lineHash(line)
    this.#seq++
    this.#since++
    this.#inner.write(`${line}\n`)
  }

  #head (): string {
    return `{"level":30,"time":"${new Date().toISOString()}","pid":${process.pid},"hostname":${this.#host}`
  }
}

/** Starts a chain over `inner`; with a checkpoint file, its genesis names this slot's last checkpoint. */
export async function openLogChain (inner: DestinationStream, opts: ChainOptions): Promise<LogChain> {
  const file = opts.integrity.checkpointFile
  const previous = file === null ? null : await lastCheckpoint(file, opts.slot)
  return new LogChain(inner, opts, previous)
}

const TAIL = 1 << 20

/** The last checkpoint of `slot` in the checkpoint file (its last MiB, else the whole file), or null. */
export async function lastCheckpoint (file: string, slot: string): Promise<CheckpointRecord | null> {
  let size: number
  try {
    size = (await stat(file)).size
  } catch {
    return null
  }
  let found: CheckpointRecord | null = null
  const consider = (text: string): void => {
    const r = checkpointRecord(text)
    if (r !== null && r.slot === slot) found = r
  }
  const handle = await open(file, 'r')
  try {
    const length = Math.min(size, TAIL)
    const buf = Buffer.alloc(length)
    await handle.read(buf, 0, length, size - length)
    // The first line of the tail may be cut: it is only read when the tail is the whole file.
    const lines = buf.toString('utf8').split('\n')
    for (const l of size > TAIL ? lines.slice(1) : lines) consider(l)
  } finally {
    await handle.close()
  }
  if (found === null && size > TAIL) await eachLine(file, consider)
  return found
}

export function checkpointRecord (text: string): CheckpointRecord | null {
  if (text.trim() === '') return null
  try {
    const r = JSON.parse(text) as Partial<CheckpointRecord>
    if (typeof r.chain !== 'string' || typeof r.seq !== 'number' || typeof r.slot !== 'string' || typeof r.signature !== 'string' || typeof r.key !== 'string') return null
    return { time: String(r.time), chain: r.chain, slot: r.slot, seq: r.seq, prev: typeof r.prev === 'string' ? r.prev : null, closed: r.closed === true, key: r.key, signature: r.signature }
  } catch {
    return null
  }
}
