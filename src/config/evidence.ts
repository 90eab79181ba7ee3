// The config of the compliance evidence: the tamper-evident decision log (logging.integrity)
// and the keys a signed policy must verify with (policy_signature; config/policy-signature.ts).
import { resolve } from 'node:path'
import type { RawIntegrity } from './schema.js'
import { readPrivateKey, readPublicKey, type SigningKey } from './signing-keys.js'

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

/** policy_signature: the config (and the trust files it names) must be signed by one of these keys. */
export interface PolicySignatureConfig {
  keys: readonly SigningKey[]
}

export function validatePolicySignature (raw: { public_keys: string[] } | undefined, problem: Problem): PolicySignatureConfig | null {
  if (raw === undefined) return null
  const keys: SigningKey[] = []
  for (const [i, value] of raw.public_keys.entries()) {
    const key = readPublicKey(value)
    if ('problem' in key) problem(['policy_signature', 'public_keys', i], `${key.problem} (write "file:/etc/llm-geofence/policy-signing.pub")`)
    else keys.push(key)
  }
  return keys.length === raw.public_keys.length ? { keys } : null
}
