// Forwarding an allowed request with @fastify/reply-from (undici underneath): the exact body
// bytes the gateway checked, the client's headers less hop-by-hop and forwarding headers, and
// the response streamed back chunk by chunk (SSE events are never held).
import type { FastifyReply } from 'fastify'
import type { FastifyReplyFromOptions } from '@fastify/reply-from'
import { GatewayError } from '../errors.js'

export const REPLY_FROM_OPTIONS: FastifyReplyFromOptions = {
  disableRequestLogging: true,
  // Nothing is retried: an LLM call is not idempotent, and a retry would be a second call.
  retryMethods: [],
  undici: { connections: 128, pipelining: 1, keepAliveTimeout: 30_000, headersTimeout: 600_000, bodyTimeout: 600_000 },
}

/**
 * Never sent on: hop-by-hop headers (RFC 9110 7.6.1), `expect` (answered by this server), and
 * the caller's addresses (internal addresses stay inside the bank).
 */
const DROPPED_REQUEST_HEADERS = ['keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'expect', 'forwarded', 'x-forwarded-for', 'x-real-ip', 'proxy-authorization']

export function forward (reply: FastifyReply, url: string, body: Buffer | undefined, contentType: string | undefined): void {
  const hasBody = body !== undefined && body.length > 0
  reply.from(url, {
    ...(hasBody ? { body, contentType: contentType ?? 'application/octet-stream' } : {}),
    rewriteRequestHeaders: (_req, headers) => {
      for (const name of DROPPED_REQUEST_HEADERS) delete headers[name]
      // reply-from names a type for a body it sends; a client that sent none gets none added.
      if (hasBody && contentType === undefined) delete headers['content-type']
      return headers
    },
    onError: (r, { error }) => {
      const e = error as { statusCode?: number }
      r.send(e.statusCode === 504
        ? new GatewayError('gateway_timeout', 'the upstream did not answer in time', { cause: error })
        : new GatewayError('bad_gateway', 'the upstream could not be reached', { cause: error }))
    },
  })
}
