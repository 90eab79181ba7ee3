// The path below an upstream's mount, decoded once, so that what the policy sees is what the
// upstream reads. Each segment is percent-decoded exactly once (Bedrock model ids arrive as
// `anthropic.claude-...-v1%3A0`, Vertex ones as `claude-sonnet-4%4020250514`); every form that
// servers read differently is refused instead of normalised: empty segments (`//`), dot
// segments (also `%2e`), backslashes (also `%5C`), a percent sign left after decoding (`%25`,
// double encoding) and control characters. An encoded slash (`%2F`) is recorded: only a
// dialect that reads that very segment as one model id (a Bedrock ARN) accepts it.
// The path is forwarded exactly as the client sent it (a SigV4 signature covers it).
import type { UpstreamPath } from '../dialects/types.js'
import { GatewayError } from '../errors.js'

export type { UpstreamPath }

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
  const q = rawUrl.indexOf('?')
  const full = q === -1 ? rawUrl : rawUrl.slice(0, q)
  const query = q === -1 ? '' : rawUrl.slice(q)
  const path = full.slice(mount.length)
  if (!full.startsWith(mount) || (path !== '' && !path.startsWith('/'))) {
    throw new GatewayError('not_found', `no upstream is mounted at ${full}`)
  }
  const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(1, -1) : path.slice(1)
  const raw = trimmed === '' ? [] : trimmed.split('/')
  // The common case, no percent sign: nothing to decode, one scan for what is refused.
  if (!path.includes('%') && !REFUSED_PLAIN.test(path) && !raw.includes('')) {
    return { path: path === '' ? '/' : path, query, raw, segments: raw, key: `/${trimmed}`.toLowerCase(), encodedSlashes: NO_SLASHES }
  }
  const segments: string[] = []
  const encodedSlashes: number[] = []
  for (const [i, segment] of raw.entries()) {
    const decoded = decodeSegment(segment)
    if (decoded.includes('/')) encodedSlashes.push(i)
    segments.push(decoded)
  }
  return { path: path === '' ? '/' : path, query, raw, segments, key: `/${segments.join('/')}`.toLowerCase(), encodedSlashes }
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
  if (CONTROL.test(decoded)) refuse('it contains control characters')
  return decoded
}

/** A decoded segment written for a path: unreserved characters and ":" and "@" as they are. */
export function encodeSegment (segment: string): string {
  return encodeURIComponent(segment).replace(/%3A/gi, ':').replace(/%40/g, '@')
}
