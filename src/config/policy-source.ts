// One policy for a fleet: a bootstrap file (server, admin, client_ip, logging, policy_signature,
// policy_source), signed like any config, names where the rest of the config is published. The
// fetched document is a complete config without policy_signature and policy_source, signed
// with `geofence sign` (URL.sig), and without the sections the bootstrap holds: those belong to
// each gateway (its ports, its listener's certificate, its log keys), never to the fleet's
// policy. This module checks the bootstrap's policy_source section and the fetched document's
// top-level keys; src/policy-source.ts fetches, and config/load.ts combines the two.
import { resolve } from 'node:path'
import { validateEgress, type EgressConfig } from './egress.js'
import { readPem } from './tls.js'

/** The only top-level keys a bootstrap file holds. */
export const BOOTSTRAP_KEYS = ['server', 'admin', 'client_ip', 'logging', 'policy_signature', 'policy_source'] as const
/** Set in the bootstrap only (so a fetched policy cannot change how it is itself checked). */
const SIGNATURE_KEYS: ReadonlySet<string> = new Set(['policy_signature', 'policy_source'])

export const DEFAULT_POLICY_POLL_MS = 30_000
/** A fetch (connect, headers and body) gives up after this long; the next poll tries again. */
export const POLICY_FETCH_TIMEOUT_MS = 10_000
/** The largest policy document (and signature) accepted: a bigger answer is refused, unread. */
export const MAX_POLICY_BYTES = 4 * 1024 * 1024
export const MAX_SIGNATURE_BYTES = 64 * 1024

/** What one poll came to (the label of geofence_policy_source_fetches_total). */
export const FETCH_RESULTS = ['updated', 'not_modified', 'not_found', 'server_error', 'unreachable', 'bad_signature', 'invalid'] as const
export type FetchResult = typeof FETCH_RESULTS[number]

export const POLICY_SOURCE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['url'],
  properties: {
    url: { type: 'string', minLength: 1 },
    poll: { type: ['string', 'integer'] },
    ca: { type: 'string', minLength: 1 },
    cache_dir: { type: 'string', minLength: 1 },
    proxy: { type: 'string', minLength: 1 },
  },
} as const

export interface RawPolicySource {
  url: string
  poll?: string | number
  ca?: string
  cache_dir?: string
  proxy?: string
}

export interface PolicySourceConfig {
  /** https:// only; its signature is at the same URL plus `.sig`. */
  url: string
  signatureUrl: string
  pollMs: number
  /** PEM text: replaces the system's CAs for this server (policy_source.ca), or null. */
  ca: string | null
  /** Where the last approved copy is kept across restarts (absolute), or null: memory only. */
  cacheDir: string | null
  /** How the server is reached: policy_source.proxy, else the environment (HTTPS_PROXY, NO_PROXY). */
  egress: EgressConfig
}

type Problem = (path: Array<string | number>, message: string) => void
type Duration = (value: string | number | undefined, fallback: number, path: Array<string | number>) => number

/**
 * policy_source. Its connections go through `policy_source.proxy` (a URL, or none) or else the
 * environment's HTTPS_PROXY/NO_PROXY, not the fetched policy's `egress:`: how the policy is
 * fetched cannot depend on a policy that has not been fetched yet, and a fetched egress that
 * goes wrong would cut the fleet off from the policy that mends it.
 */
export function validatePolicySource (raw: RawPolicySource, hasSignature: boolean, env: NodeJS.ProcessEnv, problem: Problem, duration: Duration): PolicySourceConfig | null {
  const at = (...rest: string[]): Array<string | number> => ['policy_source', ...rest]
  let failed = false
  const counted: Problem = (path, message) => { failed = true; problem(path, message) }
  if (!hasSignature) counted(at(), 'a policy fetched from a URL must be signed: set policy_signature: { public_keys: [file:...] } in this file')
  let url: URL | null = null
  try {
    url = new URL(raw.url)
  } catch {
    counted(at('url'), `"${raw.url}" is not a URL (write e.g. https://policy.bank.internal/llm-geofence/fleet.yaml)`)
  }
  if (url !== null && url.protocol !== 'https:') counted(at('url'), 'must be an https:// URL: the policy is fetched over TLS only')
  if (url !== null && (url.username !== '' || url.password !== '')) counted(at('url'), 'must not carry credentials')
  if (url !== null && url.search !== '') counted(at('url'), 'must have no query: its signature is at the same URL plus .sig')
  const pollMs = duration(raw.poll, DEFAULT_POLICY_POLL_MS, at('poll'))
  if (pollMs <= 0) counted(at('poll'), 'must be longer than 0 (write e.g. 30s)')
  const ca = raw.ca === undefined ? null : readPem(raw.ca, 'certificates', at('ca'), counted)
  const egress = validateEgress(raw.proxy === undefined ? undefined : { proxy: raw.proxy }, env, (path, message) => { counted(path[0] === 'egress' && path.length > 1 ? at('proxy') : at(), message) })
  if (failed || url === null) return null
  return {
    url: url.href,
    signatureUrl: `${url.href}.sig`,
    pollMs,
    ca: ca?.text ?? null,
    cacheDir: raw.cache_dir === undefined ? null : resolve(raw.cache_dir),
    egress,
  }
}

/** Problems with a bootstrap file's top-level keys (it holds only BOOTSTRAP_KEYS). */
export function bootstrapKeyProblems (raw: Record<string, unknown>, problem: Problem): void {
  for (const key of Object.keys(raw)) {
    if (!(BOOTSTRAP_KEYS as readonly string[]).includes(key)) {
      problem([key], `a bootstrap file (with policy_source) holds only ${BOOTSTRAP_KEYS.join(', ')}: ${key} belongs in the policy published at policy_source.url`)
    }
  }
}

/** Problems with a fetched policy's top-level keys: none of the bootstrap's. */
export function fetchedKeyProblems (raw: Record<string, unknown>, problem: Problem): void {
  for (const key of Object.keys(raw)) {
    if (SIGNATURE_KEYS.has(key)) problem([key], `a fetched policy cannot set ${key}: it is read from each gateway's bootstrap file`)
    else if ((BOOTSTRAP_KEYS as readonly string[]).includes(key)) problem([key], `a fetched policy cannot set ${key}: it is each gateway's own, set in its bootstrap file`)
  }
}
