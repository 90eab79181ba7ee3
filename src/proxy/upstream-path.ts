// The path below an upstream's mount, decoded once, so that what the policy sees is what the
// upstream reads. Each segment is percent-decoded exactly once (Bedrock model ids arrive as
// `anthropic.claude-...-v1%3A0`, Vertex ones as `claude-sonnet-4%4020250514`); every form that
// servers read differently is refused instead of normalised: empty segments (`//`), dot
// segments (also `%2e`), backslashes (also `%5C`), a percent sign left after decoding (`%25`,
// double encoding) and control characters. An encoded slash (`%2F`) is recorded: only a
// dialect that reads that very segment as one model id (a Bedrock ARN) accepts it.
// The path is forwarded exactly as the client sent it (a SigV4 signature covers it).
// The query is parsed once too, strictly: every name and value must percent-decode (`+` is a
// space, as form decoding and URLSearchParams read it) to text without control characters; a
// semicolon (some servers split on it, others do not) and a fragment (`#`, which no client
// sends and forwarders drop) anywhere in the target are refused. What is forwarded is built
// from these parameters (pipeline/plan.ts), never parsed again by another parser.
import type { QueryParam, UpstreamPath } from '../dialects/types.js'
import { GatewayError } from '../errors.js'

export type { QueryParam, UpstreamPath }

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/
/** Anything a path without percent-encoding can hold that is refused: then each segment says why. */
// eslint-disable-next-line no-control-regex
const REFUSED_PLAIN = /\/\/|\\|\/\.\.?(?:\/|$)|[\u0000-\u001f\u007f]/
const NO_SLASHES: readonly number[] = []

/** The first path segment of a request target: the name of the upstream mounted there. */
export function mountName (url: string): string {
  const end = url.slice(1).search(/[/?]/)
  return end === -1 ? url.slice(1) : url.slice(1, end + 1)
}

export function upstreamPath (rawUrl: string, mount: string): UpstreamPath {
  if (rawUrl.includes('#')) throw new GatewayError('invalid_request', 'the request target is refused: it contains a fragment (#)')
  const q = rawUrl.indexOf('?')
  const full = q === -1 ? rawUrl : rawUrl.slice(0, q)
  const query = q === -1 ? '' : rawUrl.slice(q)
  const params = query.length <= 1 ? NO_PARAMS : queryParams(query.slice(1))
  const path = full.slice(mount.length)
  if (!full.startsWith(mount) || (path !== '' && !path.startsWith('/'))) {
    throw new GatewayError('not_found', `no upstream is mounted at ${full}`)
  }
  const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(1, -1) : path.slice(1)
  const raw = trimmed === '' ? [] : trimmed.split('/')
  // The common case, no percent sign: nothing to decode, one scan for what is refused.
  if (!path.includes('%') && !REFUSED_PLAIN.test(path) && !raw.includes('')) {
    return { path: path === '' ? '/' : path, query, params, raw, segments: raw, key: `/${trimmed}`.toLowerCase(), encodedSlashes: NO_SLASHES }
  }
  const segments: string[] = []
  const encodedSlashes: number[] = []
  for (const [i, segment] of raw.entries()) {
    const decoded = decodeSegment(segment)
    if (decoded.includes('/')) encodedSlashes.push(i)
    segments.push(decoded)
  }
  return { path: path === '' ? '/' : path, query, params, raw, segments, key: `/${segments.join('/')}`.toLowerCase(), encodedSlashes }
}

const NO_PARAMS: readonly QueryParam[] = []

/** The query's parameters, each decoded once; anything that does not decode is refused. */
function queryParams (text: string): QueryParam[] {
  if (text.includes(';')) refuseQuery('it contains a semicolon, which servers read as a separator or as text')
  const params: QueryParam[] = []
  for (const raw of text.split('&')) {
    if (raw === '') continue
    const eq = raw.indexOf('=')
    const name = decodeQueryPart(eq === -1 ? raw : raw.slice(0, eq))
    const value = eq === -1 ? '' : decodeQueryPart(raw.slice(eq + 1))
    params.push({ name, value, raw })
  }
  return params
}

function decodeQueryPart (part: string): string {
  let decoded: string
  try {
    decoded = decodeURIComponent(part.replaceAll('+', ' '))
  } catch {
    refuseQuery('a percent sign in it is not a valid escape')
  }
  if (CONTROL.test(decoded)) refuseQuery('it contains control characters')
  return decoded
}

function refuseQuery (problem: string): never {
  throw new GatewayError('invalid_request', `the request query is refused: ${problem}`)
}

/** A query rebuilt from parameters: each kept as the client wrote it, "" when none is left. */
export function queryOf (params: readonly QueryParam[]): string {
  return params.length === 0 ? '' : `?${params.map((p) => p.raw).join('&')}`
}

function refuse (problem: string): never {
  throw new GatewayError('invalid_request', `the request path is refused: ${problem}`)
}

function decodeSegment (segment: string): string {
  if (segment === '') refuse('it contains an empty segment (//)')
  if (segment.includes('\\')) refuse('it contains a backslash')
  let decoded = segment
  if (segment.includes('%')) {
    try {
      decoded = decodeURIComponent(segment)
    } catch {
      refuse('it contains a percent sign that is not a valid escape')
    }
    if (decoded.includes('%')) refuse('it is percent-encoded twice (%25)')
    if (decoded.includes('\\')) refuse('it contains an encoded backslash')
  }
  if (decoded === '.' || decoded === '..') refuse('it contains a dot segment (. or ..)')
  // An encoded slash makes one segment several for a server that decodes before it splits.
  if (decoded.includes('/') && decoded.split('/').some((part) => part === '' || part === '.' || part === '..')) {
    refuse('an encoded slash in it makes an empty or dot segment')
  }
  if (CONTROL.test(decoded)) refuse('it contains control characters')
  return decoded
}

/** A decoded segment written for a path: unreserved characters and ":" and "@" as they are. */
export function encodeSegment (segment: string): string {
  return encodeURIComponent(segment).replace(/%3A/gi, ':').replace(/%40/g, '@')
}
