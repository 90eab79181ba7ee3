// Carrying out a plan over HTTP with @fastify/reply-from on our own undici dispatcher: the
// plan's body and headers exactly (reply-from adds only the framing: host and content-length),
// and the response streamed back chunk by chunk (SSE events are never held). The request goes
// out by its plan's target's route (proxy or direct, TLS, timeouts), tagged on its headers.
import type { FastifyReply } from 'fastify'
import type { FastifyReplyFromOptions } from '@fastify/reply-from'
import type { Plan } from '../pipeline/plan.js'
import { withRoute, type UpstreamDispatcher } from '../proxy/dispatcher.js'
import { upstreamError } from '../proxy/upstream-error.js'

export function replyFromOptions (dispatcher: UpstreamDispatcher): FastifyReplyFromOptions {
  return {
    disableRequestLogging: true,
    // Nothing is retried: an LLM call is not idempotent, and a retry would be a second call.
    retryMethods: [],
    undici: dispatcher,
  }
}

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']

export interface ForwardHooks {
  /** Called with the time to the upstream's response headers, in seconds. */
  onFirstByte: (seconds: number) => void
  /** Called when the upstream's response body fails mid-way (idle timeout, reset). */
  onUpstreamError: () => void
}

export function forward (reply: FastifyReply, plan: Plan, hooks: ForwardHooks): void {
  const { body } = plan
  // Out the way the request's own revision says for the plan's target (its proxy, TLS, timeouts).
  const route = reply.request.geofence.runtime.egress.routeFor(plan.target)
  const started = process.hrtime.bigint()
  reply.from(plan.url, {
    // The plan's query, exactly: never the client's, re-appended where the plan dropped it.
    queryString: () => plan.query.slice(1),
    ...(body !== undefined && body.length > 0 ? { body, contentType: 'application/octet-stream' } : {}),
    rewriteRequestHeaders: (_req, framing) => {
      const headers: Plan['headers'] = { ...plan.headers, host: framing.host }
      if (framing['content-length'] !== undefined) headers['content-length'] = framing['content-length']
      return withRoute(headers, route)
    },
    // Hop-by-hop headers of the upstream's connection are not the client's (RFC 9110 7.6.1).
    rewriteHeaders: (headers) => {
      for (const name of HOP_BY_HOP) delete headers[name]
      return headers
    },
    onResponse: (_request, r, res) => {
      hooks.onFirstByte(Number(process.hrtime.bigint() - started) / 1e9)
      res.stream.once('error', hooks.onUpstreamError)
      r.send(res.stream)
    },
    onError: (r, { error }) => { r.send(upstreamError(error)) },
  })
}
