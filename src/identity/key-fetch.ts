// Fetching an identity provider's discovery document and key set: one GET, no redirects, a
// timeout, a size bound, JSON. The fetch function is injectable, so that the pipeline can send
// it through an egress proxy (an undici Dispatcher) or a test can count calls.
import { fetch as undiciFetch, type Dispatcher } from 'undici'
import { jwksProblem, keyUrlProblem } from '../config/identity.js'

/** The part of WHATWG `fetch` the verifier uses; global fetch and undici's fetch both fit. */
export type FetchLike = (url: string, init: {
  method: 'GET'
  headers: Record<string, string>
  redirect: 'manual'
  signal: AbortSignal
}) => Promise<{
  status: number
  headers: { get: (name: string) => string | null }
  body: ReadableStream<Uint8Array> | null
}>

export interface FetchOptions {
  /** Default: global fetch (TLS verified against the system's CAs). */
  fetch?: FetchLike
  /** Sent through this dispatcher (undici's fetch), e.g. a ProxyAgent to the egress proxy; ignored with `fetch`. */
  dispatcher?: Dispatcher
  /** Default 5 s, as jose's createRemoteJWKSet. */
  timeoutMs?: number
}

export const DEFAULT_FETCH_TIMEOUT_MS = 5_000
/** A key set or discovery document is a few kilobytes; a megabyte is a misconfiguration. */
export const MAX_DOCUMENT_BYTES = 1024 * 1024

/** Why a fetch failed, in words fit for a log line (no secrets: the URLs are configured). */
export class KeyFetchError extends Error {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'KeyFetchError'
  }
}

export function fetcher (opts: FetchOptions): (url: string, signal: AbortSignal) => Promise<unknown> {
  const dispatcher = opts.dispatcher
  const fetchImpl: FetchLike = opts.fetch ?? (dispatcher === undefined
    ? (url, init) => fetch(url, init)
    : async (url, init) => undiciFetch(url, { ...init, dispatcher }) as unknown as Awaited<ReturnType<FetchLike>>)
  const timeoutMs = opts.timeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS
  return async (url, signal) => {
    const both = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)])
    let res: Awaited<ReturnType<FetchLike>>
    try {
      res = await fetchImpl(url, { method: 'GET', headers: { accept: 'application/json, application/jwk-set+json' }, redirect: 'manual', signal: both })
    } catch (err) {
      throw new KeyFetchError(`GET ${url}: ${both.aborted && !signal.aborted ? `no answer in ${timeoutMs} ms` : describe(err)}`, { cause: err })
    }
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => {})
      throw new KeyFetchError(`GET ${url}: status ${res.status}${res.status >= 300 && res.status < 400 ? ' (redirects are not followed)' : ''}`)
    }
    const declared = Number(res.headers.get('content-length') ?? '0')
    if (declared > MAX_DOCUMENT_BYTES) {
      await res.body?.cancel().catch(() => {})
      throw new KeyFetchError(`GET ${url}: ${declared} bytes, over ${MAX_DOCUMENT_BYTES}`)
    }
    const text = await readBounded(res.body, url)
    try {
      return JSON.parse(text) as unknown
    } catch (err) {
      throw new KeyFetchError(`GET ${url}: not JSON`, { cause: err })
    }
  }
}

/** The key set's URL from an OpenID Provider's discovery document, which must name the issuer exactly. */
export function jwksUriFrom (doc: unknown, issuer: string, url: string): string {
  if (typeof doc !== 'object' || doc === null) throw new KeyFetchError(`${url}: not a discovery document`)
  const { issuer: named, jwks_uri: jwksUri } = doc as { issuer?: unknown, jwks_uri?: unknown }
  // OpenID Connect Discovery 1.0, 4.3: the issuer returned must be identical to the one asked for.
  if (named !== issuer) throw new KeyFetchError(`${url}: names issuer ${JSON.stringify(named)}, not ${issuer}`)
  if (typeof jwksUri !== 'string') throw new KeyFetchError(`${url}: has no jwks_uri`)
  const why = keyUrlProblem(jwksUri)
  if (why !== null) throw new KeyFetchError(`${url}: jwks_uri ${why}`)
  return jwksUri
}

/** A key set as fetched, checked: public signing keys only. */
export function checkedJwks (doc: unknown, url: string): { keys: Array<Record<string, unknown>> } {
  const why = jwksProblem(doc)
  if (why !== null) throw new KeyFetchError(`${url}: ${why}`)
  return doc as { keys: Array<Record<string, unknown>> }
}

async function readBounded (body: ReadableStream<Uint8Array> | null, url: string): Promise<string> {
  if (body === null) return ''
  const chunks: Uint8Array[] = []
  let size = 0
  const reader = body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > MAX_DOCUMENT_BYTES) {
      await reader.cancel().catch(() => {})
      throw new KeyFetchError(`GET ${url}: over ${MAX_DOCUMENT_BYTES} bytes`)
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function describe (err: unknown): string {
  const cause = (err as { cause?: { code?: string, message?: string } }).cause
  return cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err))
}
