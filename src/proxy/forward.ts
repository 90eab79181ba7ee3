// Forwarding an allowed request with @fastify/reply-from over our own undici dispatcher: the
// exact body bytes the gateway checked, the client's headers less hop-by-hop and forwarding
// headers (and credentials, where the gateway holds them), and the response streamed back chunk
// by chunk (SSE events are never held).
import type { FastifyReply } from 'fastify'
import type { FastifyReplyFromOptions } from '@fastify/reply-from'
import { CREDENTIAL_HEADERS, type UpstreamConfig } from '../config/validate.js'
import { GatewayError } from '../errors.js'
import type { UpstreamDispatcher } from './dispatcher.js'
import { CLIENT_SIGNATURE_HEADERS } from './sigv4.js'

export function replyFromOptions (dispatcher: UpstreamDispatcher): FastifyReplyFromOptions {
  return {
    disableRequestLogging: true,
    // Nothing is retried: an LLM call is not idempotent, and a retry would be a second call.
    retryMethods: [],
    undici: dispatcher,
  }
}

/**
 * Never sent on: hop-by-hop headers (RFC 9110 7.6.1), `expect` (answered by this server), and
 * the caller's addresses (internal addresses stay inside the bank).
 */
const DROPPED_REQUEST_HEADERS = ['keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'expect', 'forwarded', 'x-forwarded-for', 'x-real-ip', 'proxy-authorization']
const CLIENT_CREDENTIALS = [...CREDENTIAL_HEADERS, 'cookie']

export interface ForwardOptions {
  upstream: UpstreamConfig
  /** path + query, exactly as received below the mount. */
  pathAndQuery: string
  body: Buffer | undefined
  contentType: string | undefined
  /** Remove whatever credential the client sent (held credentials, or a gateway client token). */
  stripCredentials: boolean
  /** The body is sent decoded (a routed, rewritten body): drop Content-Encoding. */
  dropContentEncoding?: boolean
  /** The gateway's own SigV4 signature (aws_sigv4): it replaces the client's. */
  signature?: Readonly<Record<string, string>> | undefined
  /** Called with the time to the upstream's response headers, in seconds. */
  onFirstByte: (seconds: number) => void
  /** Called when the upstream's response body fails mid-way (idle timeout, reset). */
  onUpstreamError: () => void
}

/**
 * The client's headers as an upstream gets them: hop-by-hop and forwarding headers dropped,
 * the client's credentials too where the gateway holds its own (or authenticates clients),
 * held headers injected, and the gateway's own signature in place of the client's.
 */
export function upstreamHeaders (headers: Record<string, string | string[] | undefined>, opts: Pick<ForwardOptions, 'upstream' | 'stripCredentials' | 'signature'>): Record<string, string | string[] | undefined> {
  for (const name of DROPPED_REQUEST_HEADERS) delete headers[name]
  if (opts.stripCredentials) for (const name of CLIENT_CREDENTIALS) delete headers[name]
  for (const [name, value] of opts.upstream.headers) headers[name] = value
  if (opts.signature !== undefined) {
    for (const name of CLIENT_SIGNATURE_HEADERS) delete headers[name]
    Object.assign(headers, opts.signature)
  }
  return headers
}

export function forward (reply: FastifyReply, opts: ForwardOptions): void {
  const { body, contentType, upstream } = opts
  const hasBody = body !== undefined && body.length > 0
  const started = process.hrtime.bigint()
  reply.from(`${upstream.url}${opts.pathAndQuery}`, {
    ...(hasBody ? { body, contentType: contentType ?? 'application/octet-stream' } : {}),
    rewriteRequestHeaders: (_req, headers) => {
      upstreamHeaders(headers, opts)
      if (opts.dropContentEncoding === true) delete headers['content-encoding']
      // reply-from names a type for a body it sends; a client that sent none gets none added.
      if (hasBody && contentType === undefined) delete headers['content-type']
      return headers
    },
    onResponse: (_request, r, res) => {
      opts.onFirstByte(Number(process.hrtime.bigint() - started) / 1e9)
      res.stream.once('error', opts.onUpstreamError)
      r.send(res.stream)
    },
    onError: (r, { error }) => {
      const e = error as { statusCode?: number, code?: string }
      r.send(e.statusCode === 504 || e.code === 'UND_ERR_CONNECT_TIMEOUT'
        ? new GatewayError('gateway_timeout', 'the upstream did not answer in time', { cause: error })
        : new GatewayError('bad_gateway', 'the upstream could not be reached', { cause: error }))
    },
  })
}
