// Stage plan: exactly what will be sent upstream for an allowed (or routed) request, built in
// one place for HTTP and WebSocket alike: the target upstream, path and query, headers and
// body, and the gateway's own signature. A route is carried out here and nowhere else.
import type { IncomingHttpHeaders } from 'node:http'
import type { UpstreamConfig } from '../config/validate.js'
import { DEFAULT_IDENTITY_HEADER } from '../config/identity.js'
import { GatewayError } from '../errors.js'
import type { Decision } from '../policy/evaluate.js'
import { CLIENT_CREDENTIAL_HEADERS, CLIENT_SIGNATURE_HEADERS } from '../proxy/credentials.js'
import { replaceValue } from '../proxy/json-members.js'
import { encodeSegment, queryOf, type QueryParam } from '../proxy/upstream-path.js'
import type { Runtime } from '../runtime.js'
import type { RequestEndpoint } from './endpoint.js'
import type { ModelsRead, RewriteAt } from './models.js'

export type OutgoingHeaders = Record<string, string | string[] | undefined>

export interface Plan {
  target: UpstreamConfig
  /** The path and query below the target's URL ("" or "?..."), as sent. */
  path: string
  query: string
  /** The target's URL with the path and query. */
  url: string
  /**
   * The exact bytes the gateway checked (or their routed rewrite): decoded from any
   * Content-Encoding, a form re-encoded (ModelsRead.body); undefined without a body.
   */
  body: Buffer | undefined
  /** Every request header the upstream gets but the framing ones (host, content-length), which the transport sets. */
  headers: OutgoingHeaders
  /** The model a route sends instead (x-geofence-routed-model), or null. */
  routedModel: string | null
}

/**
 * Never sent on: hop-by-hop headers (RFC 9110 7.6.1, and any the client's Connection names),
 * `expect` (answered by this server), the caller's addresses (internal addresses stay inside
 * the bank), and framing the transport sets itself.
 */
const DROPPED = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'expect', 'forwarded', 'x-forwarded-for', 'x-real-ip', 'proxy-authorization', 'host', 'content-length']

/** Query parameters that carry a credential (Google's `key`, and `access_token` for OAuth and ephemeral tokens). */
const QUERY_CREDENTIALS = new Set(['key', 'access_token'])

export interface PlanInput {
  runtime: Runtime
  endpoint: RequestEndpoint
  method: string
  headers: IncomingHttpHeaders
  read: ModelsRead
  decision: Decision
}

export async function plan (input: PlanInput): Promise<Plan> {
  const { runtime, endpoint, read, decision } = input
  const route = decision.enforced ? decision.route : undefined
  let target = endpoint.upstream
  let pathAndQuery: { path: string, params: readonly QueryParam[] } = { path: endpoint.path.path, params: endpoint.path.params }
  let body = read.body
  if (route !== undefined) {
    const routed = runtime.config.upstreams.get(route.upstream)
    // Config validation checks every route target: a missing one is a bug, never a fallback.
    if (routed === undefined) throw new GatewayError('internal', `route target ${route.upstream} is not configured`)
    if (read.rewrite.kind === 'refused') throw new GatewayError('internal', `a route was planned for ${read.rewrite.why}`)
    target = routed
    const rewritten = rewrite(endpoint, read, read.rewrite, route.model)
    pathAndQuery = rewritten.pathAndQuery
    if (rewritten.body !== undefined) body = rewritten.body
  }
  const stripCredentials = target.stripClientCredentials || runtime.config.clients.size > 0
  const { path } = pathAndQuery
  // Google's clients may send their key as ?key= (or ?%6Bey=), an OAuth or ephemeral token as
  // ?access_token=: a held credential replaces them too.
  const query = queryOf(stripCredentials ? pathAndQuery.params.filter((p) => !QUERY_CREDENTIALS.has(p.name.toLowerCase())) : pathAndQuery.params)
  const headers = outgoingHeaders(input.headers, target, stripCredentials)
  // The end user's identity token is for the gateway alone.
  delete headers[DEFAULT_IDENTITY_HEADER]
  if (runtime.identity !== null) delete headers[runtime.identity.header]
  // The body goes as it was read: decoded (deflate alone has two readings, zlib and raw, that
  // give different bytes), as the type that was parsed (a JSON body declared as a form is read
  // as a form by some servers), a form with its new boundary.
  if (read.decoded) delete headers['content-encoding']
  for (const name of read.dropHeaders ?? []) delete headers[name]
  if (read.contentType !== undefined) headers['content-type'] = read.contentType
  const url = `${target.url}${path}${query}`
  const sign = runtime.signers.get(target.name)
  if (sign !== undefined) {
    const signature = await sign(url, input.method, headers, body)
    for (const name of CLIENT_SIGNATURE_HEADERS) delete headers[name]
    Object.assign(headers, signature)
  }
  return { target, path, query, url, body, headers, routedModel: route?.model ?? null }
}

/** The client's headers as an upstream gets them: dropped, stripped and held headers applied. */
function outgoingHeaders (client: IncomingHttpHeaders, target: UpstreamConfig, stripCredentials: boolean): OutgoingHeaders {
  const headers: OutgoingHeaders = { ...client }
  const connection = client.connection
  if (typeof connection === 'string') for (const name of connection.split(',')) delete headers[name.trim().toLowerCase()]
  for (const name of DROPPED) delete headers[name]
  if (stripCredentials) for (const name of CLIENT_CREDENTIAL_HEADERS) delete headers[name]
  for (const [name, value] of target.headers) headers[name] = value
  return headers
}

/** Where the routed model goes: the path segment, the query parameter, or the body's member. */
function rewrite (endpoint: RequestEndpoint, read: ModelsRead, at: RewriteAt, model: string): { pathAndQuery: { path: string, params: readonly QueryParam[] }, body?: Buffer } {
  const { path } = endpoint
  switch (at.kind) {
    case 'path': {
      const raw = [...path.raw]
      raw[at.segment] = encodeSegment(`${at.prefix}${model}${at.suffix}`)
      return { pathAndQuery: { path: `/${raw.join('/')}${path.path.length > 1 && path.path.endsWith('/') ? '/' : ''}`, params: path.params } }
    }
    case 'query': {
      // The one parameter that names the model is rewritten; every other one is kept as sent.
      const raw = `${encodeURIComponent(at.param)}=${encodeURIComponent(model)}`
      return { pathAndQuery: { path: path.path, params: path.params.map((p) => (p.name === at.param ? { ...p, value: model, raw } : p)) } }
    }
    case 'member':
      if (read.body === undefined) throw new GatewayError('internal', 'a body member to rewrite without a body')
      return { pathAndQuery: { path: path.path, params: path.params }, body: replaceValue(read.body, at.member, `${at.prefix ?? ''}${model}`) }
  }
}

