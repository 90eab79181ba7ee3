// The HTTP adapter over the pipeline: the body read as bytes (whatever its Content-Type, or
// none, up to its endpoint's limit), then the stages after the body, then the outcome carried
// out: a refusal answered, or the plan forwarded with @fastify/reply-from.
import type { Duplex } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { GatewayError } from '../errors.js'
import type { RequestEndpoint } from '../pipeline/endpoint.js'
import { BodyBuffer } from '../proxy/body-buffer.js'
import type { Metrics } from '../observability/metrics.js'
import { ROUTED_MODEL_HEADER, type Refusal } from '../pipeline/refusal.js'
import { peerCertificate } from '../proxy/peer-certificate.js'
import { decideRequest, type RequestHead } from '../pipeline/request.js'
import { forward } from './forward.js'

/** The request head as the pipeline reads it, the same over HTTP/1.1 and HTTP/2. */
export function requestHead (request: FastifyRequest): RequestHead {
  const headers = request.raw.httpVersionMajor === 2 ? http1Headers(request.headers) : request.headers
  return { peer: request.raw.socket.remoteAddress, method: request.method, url: request.raw.url ?? '/', headers, certificate: peerCertificate(request.raw) }
}

/**
 * An HTTP/2 request's headers as HTTP/1.1 names them: the pseudo-headers (:method, :path,
 * :scheme, :authority) are the request line, never headers to forward; :authority is the Host.
 */
function http1Headers (headers: FastifyRequest['headers']): FastifyRequest['headers'] {
  const out: FastifyRequest['headers'] = {}
  for (const [name, value] of Object.entries(headers)) if (!name.startsWith(':')) out[name] = value
  const authority = headers[':authority']
  if (out.host === undefined && typeof authority === 'string') out.host = authority
  return out
}

export interface HttpDeps {
  metrics: Metrics
  /** The response was closed before its end: by the client, or cut from the upstream side. */
  onCut: (request: FastifyRequest, reply: FastifyReply) => void
}

export async function handleHttp (request: FastifyRequest, reply: FastifyReply, deps: HttpDeps): Promise<FastifyReply> {
  const st = request.geofence
  if (st.endpoint?.modelSource.kind === 'setup') throw new GatewayError('invalid_request', 'the Live API is a WebSocket: this endpoint takes only an upgrade')
  const outcome = await decideRequest(st, requestHead(request), request.body as Buffer | undefined)
  if (outcome.kind === 'refuse') return sendRefusal(reply, outcome.refusal)
  const { plan } = outcome
  if (plan.routedModel !== null) reply.header(ROUTED_MODEL_HEADER, plan.routedModel)
  // Only a forwarded response can be cut from the upstream side (an idle stream, a reset).
  reply.raw.once('close', () => { if (!reply.raw.writableFinished) deps.onCut(request, reply) })
  forward(reply, plan, {
    onFirstByte: (seconds) => { deps.metrics.recordFirstByte(plan.target.name, seconds) },
    onUpstreamError: () => { st.upstreamFailed = true },
  })
  return reply
}

export function sendRefusal (reply: FastifyReply, r: Refusal): FastifyReply {
  return reply.code(r.status).headers(r.headers).type('application/json').send(r.body)
}

/**
 * Every body is read as bytes, whatever its Content-Type (or none): the model check must not
 * depend on a header the client chooses, and the bytes checked are the bytes forwarded. The
 * limit is the endpoint's (batches take more): a Content-Length over it was refused before the
 * body was read, and a chunked body is cut as soon as it passes it. A body that grows past
 * LARGE_BODY_BYTES takes a large-body slot as it does (pipeline/large-bodies.ts), or is cut
 * with the 503 when none is free.
 */
export function readBodiesAsBytes (app: FastifyInstance, fallbackLimit: number, bodyTimeoutMs: number | null): void {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (request, payload, done) => {
    const st = request.geofence
    const limit = st.endpoint?.bodyLimit ?? fallbackLimit
    // Node keeps no requestTimeout for an HTTP/2 stream (HTTP/1.1 has its own, app.ts): the body's deadline is kept here, from the request's start.
    const deadline = bodyTimeoutMs === null || request.raw.httpVersionMajor !== 2 ? null : Math.max(0, bodyTimeoutMs - Number(process.hrtime.bigint() - st.startedAt) / 1e6)
    const onLarge = (): void => { st.largeBody?.take() }
    readBody(payload, limit, request.headers['content-length'], () => tooLarge(st.endpoint), onLarge, done, deadline)
  })
}

export function tooLarge (endpoint: RequestEndpoint | null): GatewayError {
  return new GatewayError('too_large', `the request body is larger than ${endpoint?.limitSetting ?? 'server.body_limit'}`)
}

/** A request body as one Buffer (proxy/body-buffer.ts), with a limit (and, where Node keeps none, a deadline) per request. */
function readBody (payload: NodeJS.ReadableStream, limit: number, contentLength: string | undefined, tooLargeError: () => Error, onLarge: () => void, done: (err: Error | null, body?: Buffer) => void, deadlineMs: number | null): void {
  const declared = contentLength === undefined ? undefined : Number(contentLength)
  const body = new BodyBuffer(limit, declared)
  const timer = deadlineMs === null
    ? undefined
    : setTimeout(() => {
      stop()
      // An HTTP/2 client may go on sending: once the answer is out, its stream is closed (RST_STREAM NO_ERROR).
      const stream = (payload as { stream?: Duplex & { close?: () => void } }).stream
      stream?.once('finish', () => { stream.close?.() })
      done(new GatewayError('request_timeout', 'the request did not arrive within server.body_timeout'))
    }, deadlineMs)
  const stop = (): void => {
    clearTimeout(timer)
    payload.removeListener('data', onData)
    payload.removeListener('end', onEnd)
    payload.removeListener('error', onError)
  }
  const onData = (chunk: Buffer): void => {
    if (body.length + chunk.length > limit) {
      stop()
      done(tooLargeError())
      return
    }
    body.push(chunk)
    if (body.large) {
      try {
        onLarge()
      } catch (err) {
        stop()
        done(err as Error)
      }
    }
  }
  const onEnd = (): void => {
    stop()
    if (declared !== undefined && declared !== body.length) {
      done(new GatewayError('invalid_request', 'the request body does not have the length its Content-Length says'))
      return
    }
    done(null, body.bytes())
  }
  const onError = (err: Error): void => { stop(); done(err) }
  payload.on('data', onData)
  payload.on('end', onEnd)
  payload.on('error', onError)
}
