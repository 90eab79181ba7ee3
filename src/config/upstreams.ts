// Upstreams: where each is mounted, its URL, the credentials the gateway holds for it, and its
// timeouts. Part of config validation (config/validate.ts); problems are reported, not thrown.
import { readFileSync } from 'node:fs'
import type { DialectName } from '../dialects/types.js'
import { modelIdProblem } from '../policy/model-id.js'
import type { RawConfig } from './schema.js'
import { validateUpstreamTls, type UpstreamTls } from './tls.js'

/** LLM calls are slow: a long answer without streaming can take minutes before its first byte. */
export const DEFAULT_TIMEOUTS: UpstreamTimeouts = { connectMs: 10_000, firstByteMs: 300_000, idleMs: 300_000 }
const FORBIDDEN_INJECTED = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'expect'])
/** Upstream and group names: they appear in paths (/NAME/) and in `group:NAME`. */
export const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/

export interface UpstreamTimeouts {
  connectMs: number
  firstByteMs: number
  idleMs: number
}

export interface UpstreamConfig {
  name: string
  /** Origin plus base path, without a trailing slash: `https://api.anthropic.com`. */
  url: string
  dialect: DialectName
  /** Injected on the way out (held credentials), values already resolved. */
  headers: ReadonlyArray<readonly [string, string]>
  stripClientCredentials: boolean
  timeouts: UpstreamTimeouts
  /** Lower-cased names that say nothing of their model (Azure deployments, Bedrock profile ARNs) -> the model. */
  modelAliases: ReadonlyMap<string, string>
  /** Model-less endpoints allowed whatever policy.default says: one RegExp over "METHOD /path", or null. */
  endpoints: RegExp | null
  /** Credentials the gateway signs forwarded requests with (aws_sigv4), or null. */
  awsSigv4: SigV4Credentials | null
  /** `none`: reached directly, whatever egress says (a model inside the bank); else through the egress proxy. */
  proxy: 'egress' | 'none'
  /** CAs, client certificate, servername and minimum version towards it (tls:), or null: the system's CAs. */
  tls: UpstreamTls | null
}

export interface SigV4Credentials {
  region: string
  service: string
  accessKeyId: string
  secretAccessKey: string
  sessionToken?: string
}

type Problem = (path: Array<string | number>, message: string) => void
type Duration = (value: string | number | undefined, fallback: number, path: Array<string | number>) => number

export function validateUpstreams (raw: RawConfig['upstreams'], problem: Problem, duration: Duration): Map<string, UpstreamConfig> {
  const upstreams = new Map<string, UpstreamConfig>()
  for (const [name, up] of Object.entries(raw)) {
    if (!NAME.test(name)) problem(['upstreams', name], `"${name}" cannot be an upstream name: it is mounted at /${name}/, so use letters, digits, "-", "_" and "."`)
    const url = upstreamUrl(up.url)
    const headers: Array<readonly [string, string]> = []
    for (const [header, value] of Object.entries(up.headers ?? {})) {
      const lower = header.toLowerCase()
      if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(lower) || FORBIDDEN_INJECTED.has(lower)) {
        problem(['upstreams', name, 'headers', header], `"${header}" cannot be injected`)
        continue
      }
      const resolved = headerValue(value)
      if (typeof resolved !== 'string') problem(['upstreams', name, 'headers', header], resolved.problem)
      else headers.push([lower, resolved])
    }
    const timeouts: UpstreamTimeouts = {
      connectMs: duration(up.timeouts?.connect, DEFAULT_TIMEOUTS.connectMs, ['upstreams', name, 'timeouts', 'connect']),
      firstByteMs: duration(up.timeouts?.first_byte, DEFAULT_TIMEOUTS.firstByteMs, ['upstreams', name, 'timeouts', 'first_byte']),
      idleMs: duration(up.timeouts?.idle, DEFAULT_TIMEOUTS.idleMs, ['upstreams', name, 'timeouts', 'idle']),
    }
    const modelAliases = new Map<string, string>()
    for (const [alias, model] of Object.entries(up.model_aliases ?? {})) {
      const why = modelIdProblem(model)
      if (why !== null) problem(['upstreams', name, 'model_aliases', alias], `${JSON.stringify(model)} is not a model id (${why})`)
      modelAliases.set(alias.toLowerCase(), model)
    }
    const endpoints = endpointPattern(up.endpoints ?? [], (i, message) => { problem(['upstreams', name, 'endpoints', i], message) })
    let awsSigv4: SigV4Credentials | null = null
    if (up.aws_sigv4 !== undefined) {
      const aws = up.aws_sigv4
      const secret = (key: 'access_key_id' | 'secret_access_key' | 'session_token'): string => {
        const value = aws[key]
        if (value === undefined) return ''
        const resolved = headerValue(value)
        if (typeof resolved === 'string') return resolved
        problem(['upstreams', name, 'aws_sigv4', key], resolved.problem)
        return ''
      }
      const sessionToken = secret('session_token')
      awsSigv4 = { region: aws.region, service: aws.service ?? 'bedrock', accessKeyId: secret('access_key_id'), secretAccessKey: secret('secret_access_key'), ...(sessionToken === '' ? {} : { sessionToken }) }
    }
    const tls = up.tls === undefined || typeof url !== 'string' ? null : validateUpstreamTls(up.tls, url, ['upstreams', name, 'tls'], problem)
    if (typeof url !== 'string') problem(['upstreams', name, 'url'], url.problem)
    else upstreams.set(name, { name, url, dialect: up.dialect, headers, stripClientCredentials: up.strip_client_credentials ?? false, timeouts, modelAliases, endpoints, awsSigv4, proxy: up.proxy ?? 'egress', tls })
  }
  return upstreams
}

/** A header value as written, or read from `file:PATH` (as Kubernetes mounts secrets). */
function headerValue (value: string): string | { problem: string } {
  let out = value
  if (value.startsWith('file:')) {
    try {
      out = readFileSync(value.slice(5), 'utf8').replace(/\r?\n$/, '')
    } catch (err) {
      return { problem: `cannot read ${value.slice(5)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }
    }
  }
  if (out === '' || /[\r\n\0]/.test(out)) return { problem: 'the value is empty or holds a line break' }
  return out
}

function upstreamUrl (text: string): string | { problem: string } {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return { problem: `"${text}" is not a URL (write e.g. https://api.anthropic.com)` }
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { problem: `"${text}": only http and https upstreams are supported` }
  if (url.username !== '' || url.password !== '') return { problem: 'credentials do not belong in the upstream URL' }
  if (url.search !== '' || url.hash !== '') return { problem: `"${text}": an upstream URL has no query or fragment` }
  return url.origin + url.pathname.replace(/\/+$/, '')
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])

/**
 * `endpoints: ["GET /v1/models", "GET /v1/models/*", "DELETE /v1/files/*"]` as one anchored,
 * case-insensitive RegExp over "METHOD /decoded/path"; `*` stands for one path segment.
 */
function endpointPattern (entries: readonly string[], problem: (i: number, message: string) => void): RegExp | null {
  const alternatives: string[] = []
  for (const [i, entry] of entries.entries()) {
    const m = /^([A-Z]+) (\/[^\s?#]*)$/.exec(entry)
    if (m === null || !METHODS.has(m[1] ?? '')) {
      problem(i, `"${entry}" is not an endpoint (write a method and a path: "GET /v1/models", "GET /v1/models/*")`)
      continue
    }
    const path = m[2] === '/' ? '/' : (m[2] ?? '').replace(/\/$/, '')
    if (path.split('/').slice(1).some((s) => s === '' || s === '.' || s === '..' || s.includes('%'))) {
      problem(i, `"${entry}": write the path decoded, without empty or dot segments`)
      continue
    }
    alternatives.push(`${m[1] ?? ''} ${path.split('*').map((p) => p.replace(/[\\^$.|+?()[\]{}]/g, '\\$&')).join('[^/]+')}`)
  }
  return alternatives.length === 0 ? null : new RegExp(`^(?:${alternatives.join('|')})$`, 'i')
}
