// The path below an upstream's mount, checked so that what the policy sees is what the
// upstream receives. Paths that servers disagree about are refused rather than normalised:
// dot segments, empty segments, backslashes and percent-encoding (`%2F`, `%2e`, `%25`) can make
// a proxy and its upstream read two different endpoints.
import { GatewayError } from '../errors.js'

export interface UpstreamPath {
  /** Starts with "/"; exactly as the client sent it. */
  path: string
  /** "" or "?..." exactly as the client sent it. */
  query: string
  /** The path as endpoints are matched: lower case, without a trailing slash. */
  key: string
}

export function upstreamPath (rawUrl: string, mount: string): UpstreamPath {
  const q = rawUrl.indexOf('?')
  const full = q === -1 ? rawUrl : rawUrl.slice(0, q)
  const query = q === -1 ? '' : rawUrl.slice(q)
  const path = full.slice(mount.length)
  if (!full.startsWith(mount) || (path !== '' && !path.startsWith('/'))) {
    throw new GatewayError('not_found', `no upstream is mounted at ${full}`)
  }
  const problem = pathProblem(path)
  if (problem !== null) throw new GatewayError('invalid_request', `the request path is refused: ${problem}`)
  const key = path.length > 1 && path.endsWith('/') ? path.slice(0, -1).toLowerCase() : path.toLowerCase()
  return { path: path === '' ? '/' : path, query, key }
}

function pathProblem (path: string): string | null {
  if (path.includes('%')) return 'it contains percent-encoding'
  if (path.includes('\\')) return 'it contains a backslash'
  if (path.includes('//')) return 'it contains an empty segment (//)'
  for (const segment of path.split('/')) {
    if (segment === '.' || segment === '..') return 'it contains a dot segment (. or ..)'
  }
  return null
}
