// The config of the compliance evidence: the tamper-evident decision log (logging.integrity).
import { resolve } from 'node:path'
import type { RawIntegrity } from './schema.js'
import { readPrivateKey, type SigningKey } from './signing-keys.js'

export const DEFAULT_CHECKPOINT_EVERY = 10_000
export const DEFAULT_CHECKPOINT_INTERVAL_MS = 60_000

/** logging.integrity: every log line chained to the one before it, checkpoints signed with `key`. */
export interface IntegrityConfig {
  key: SigningKey
  /** A checkpoint after this many lines... */
  checkpointEvery: number
  /** ...and this long after the last one, if a line was written since. */
  checkpointIntervalMs: number
  /** Every checkpoint is also appended here (absolute); a restart's new chain names the last one. */
  checkpointFile: string | null
}

type Problem = (path: Array<string | number>, message: string) => void
type Duration = (value: string | number | undefined, fallback: number, path: Array<string | number>) => number

export function validateIntegrity (raw: RawIntegrity | undefined, problem: Problem, duration: Duration): IntegrityConfig | null {
  if (raw === undefined) return null
  const at = (key: string): Array<string | number> => ['logging', 'integrity', key]
  const key = readPrivateKey(raw.key)
  if ('problem' in key) problem(at('key'), `${key.problem} (write key: "file:/etc/llm-geofence/log-signing.pem")`)
  const checkpointIntervalMs = duration(raw.checkpoint_interval, DEFAULT_CHECKPOINT_INTERVAL_MS, at('checkpoint_interval'))
  if (checkpointIntervalMs <= 0) problem(at('checkpoint_interval'), 'must be longer than 0 (write e.g. 60s)')
  if ('problem' in key) return null
  return {
    key,
    checkpointEvery: raw.checkpoint_every ?? DEFAULT_CHECKPOINT_EVERY,
    checkpointIntervalMs,
    checkpointFile: raw.checkpoint_file === undefined ? null : resolve(raw.checkpoint_file),
  }
}
