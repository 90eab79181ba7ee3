// What a request asks for and what the policy says of it, read the same way by `serve` and by
// `geofence explain --request`: the path below the mount decoded once, the endpoint the
// dialect finds there, the model(s) it names (path, JSON body, multipart field, batch items),
// each model's canonical id (model_aliases and opaque ids first), and the decision.
// Anything that cannot be read with certainty is a GatewayError (400, 413, 415): never a pass.
import type { IncomingHttpHeaders } from 'node:http'
import type { Config, UpstreamConfig } from '../config/validate.js'
import { DIALECTS, type Dialect, type Endpoint } from '../dialects/registry.js'
import { GatewayError } from '../errors.js'
import type { Location } from '../geo/locator.js'
import { evaluate, type Decision } from '../policy/evaluate.js'
import { canonicalModelId } from '../policy/model-id.js'
import type { Runtime } from '../runtime.js'
import { DECODABLE, codings, decodeBody } from './content-encoding.js'
import type { Member } from './json-members.js'
import { modelFromMultipart } from './multipart-model.js'
import { batchModels, bodyModels, checkModelId, modelFromJsonBody } from './request-model.js'
import { encodeSegment, upstreamPath, type UpstreamPath } from './upstream-path.js'

/** A request's place: known before its body is read. */
export interface Located {
  upstream: UpstreamConfig
  dialect: Dialect
  path: UpstreamPath
  endpoint: Endpoint
  /** server.batch_body_limit for a batch endpoint, else server.body_limit. */
  bodyLimit: number
}

export function locate (config: Config, upstream: UpstreamConfig, method: string, url: string): Located {
  const dialect = DIALECTS[upstream.dialect]
  const path = upstreamPath(url, `/${upstream.name}`)
  const endpoint = dialect.endpoint(method, path)
  // An encoded slash is only ever part of one model id (a Bedrock ARN); anywhere else it could
  // make the upstream read another endpoint than the one that was checked.
  if (path.encodedSlashes.some((i) => endpoint.kind !== 'path' || i !== endpoint.segment)) {
    throw new GatewayError('invalid_request', 'the request path is refused: it contains an encoded slash (%2F) outside a model id')
  }
  return { upstream, dialect, path, endpoint, bodyLimit: endpoint.kind === 'batch' ? config.server.batchBodyLimit : config.server.bodyLimit }
}

/** Who asks, and under which revision and upstream: what a decision needs besides the model. */
export interface Caller {
  runtime: Runtime
  upstream: UpstreamConfig
  client: string | null
  location: Location
  locationProblem: string | undefined
}

export interface ReadInput extends Omit<Caller, 'upstream'> {
  located: Located
  method: string
  headers: IncomingHttpHeaders
  body: Buffer | undefined
}

export interface ReadResult {
  /** The model as the request names it (decoded); null when none is read. */
  model: string | null
  /** The canonical id the policy matched (after model_aliases); null when there is none. */
  canonical: string | null
  /** The distinct models of a batch. */
  batchModels: string[] | null
  decision: Decision
  /** The body as read: decoded from its Content-Encoding (`encoded` tells whether it was). */
  decoded: Buffer | undefined
  encoded: boolean
  /** Where a JSON body names the model, to rewrite it for a route. */
  member: Member | null
}

export async function readRequest (input: ReadInput): Promise<ReadResult> {
  const { runtime, located, body } = input
  const { endpoint, dialect, upstream } = located
  const caller: Caller = { ...input, upstream }
  const applied = codings(input.headers['content-encoding'])
  const unknown = applied?.find((c) => !DECODABLE.has(c))
  if (unknown !== undefined) {
    throw new GatewayError('unsupported_media', `the request body is in Content-Encoding "${unknown}", which the gateway does not decode (gzip, deflate and br are decoded)`)
  }
  // A request its client signed (SigV4 covers path and body) can be rewritten for a route only
  // where the gateway signs for the target itself.
  const rewritable = (d: Decided): Decided => {
    const target = d.decision.route === undefined ? undefined : runtime.config.upstreams.get(d.decision.route.upstream)
    return dialect.signed === true && target?.awsSigv4 == null ? notRouted(d, 'a request signed by the client (SigV4)') : d
  }
  const readsBody = endpoint.kind !== 'none' && endpoint.kind !== 'unknown' && !(endpoint.kind === 'path' && endpoint.bodyIgnored === true)
  const decoded = !readsBody || applied === null || body === undefined || body.length === 0
    ? body
    : await decodeBody(body, applied, located.bodyLimit)

  const decide = (model: string | null, extra: Extra = {}): Decided => decideModel(caller, model, extra)
  const result = (model: string | null, d: Decided, member: Member | null = null): ReadResult =>
    ({ model, canonical: d.canonical, batchModels: null, decision: d.decision, decoded, encoded: applied !== null, member })

  switch (endpoint.kind) {
    case 'none': {
      const listed = upstream.endpoints?.test(`${input.method} ${located.path.key}`) === true ? `${input.method} ${located.path.key}` : undefined
      return result(null, decide(null, listed === undefined ? {} : { listedEndpoint: listed }))
    }
    case 'unknown':
      return result(null, decide(null, { unknownModel: endpoint.why }))
    case 'query': {
      const values = new URLSearchParams(located.path.query).getAll(endpoint.param)
      if (values.length > 1) throw new GatewayError('invalid_request', `the query names "${endpoint.param}" more than once; servers disagree on which one counts`)
      const model = values[0]
      if (model === undefined) return result(null, decide(null, { unknownModel: endpoint.missing }))
      checkModelId(model, 'the query: ')
      return result(model, rewritable(decide(model)))
    }
    case 'json': {
      const found = modelFromJsonBody(decoded, endpoint.field)
      return result(found.model, rewritable(decide(found.model)), found.member)
    }
    case 'multipart': {
      const model = await modelFromMultipart(decoded, input.headers['content-type'])
      // A multipart body is not rewritten: where it would be routed, it is blocked.
      return result(model, notRouted(decide(model), 'a multipart request'))
    }
    case 'batch': {
      // A batch passes only if every model in it passes; it is never routed (its items would
      // all need rewriting), so a model that would be routed blocks the batch.
      const models = [...new Set(batchModels(decoded))]
      const decided = models.map((m) => ({ model: m, d: decide(m) }))
      const refusing = decided.find((x) => x.d.decision.action !== 'allow' && x.d.decision.enforced) ?? decided.find((x) => x.d.decision.action !== 'allow')
      const chosen = refusing ?? decided[0]
      if (chosen === undefined) return result(null, decide(null))
      return { ...result(chosen.model, notRouted(chosen.d, 'a batch')), batchModels: models }
    }
    case 'path': {
      const model = checkModelId(endpoint.model, 'the path: ')
      const d = decide(model)
      // The body may name the model again only to agree with the path; parsers and servers
      // would otherwise disagree on which one counts.
      const again = endpoint.bodyIgnored === true ? [] : bodyModels(decoded, endpoint.items === true)
      for (const other of again) {
        const same = other.toLowerCase() === model.toLowerCase() || canonicalModelId(other) === d.canonical
        if (!same) throw new GatewayError('invalid_request', `the path names model "${model}" and the body names "${other}"; a request names one model`)
      }
      return result(model, again.length > 0 ? notRouted(d, 'a request naming its model in both path and body') : rewritable(d))
    }
  }
}

type Extra = { unknownModel?: string, listedEndpoint?: string }
interface Decided { decision: Decision, canonical: string | null }

/** The decision for one model as a request names it (null: none), by this upstream's policy. */
export function decideModel (caller: Caller, model: string | null, extra: Extra = {}): Decided {
  const { runtime, upstream } = caller
  const id = model === null ? null : identity(DIALECTS[upstream.dialect], upstream, model)
  const decision = evaluate(runtime.policy, {
    upstream: upstream.name,
    model: id?.canonical ?? null,
    rawModel: id?.raw,
    unknownModel: id?.unknown ?? extra.unknownModel,
    listedEndpoint: extra.listedEndpoint,
    client: caller.client,
    location: caller.location,
    locationProblem: caller.locationProblem,
  })
  return { decision, canonical: id?.canonical ?? null }
}

/** The canonical id of a model as a request names it: model_aliases first, then the dialect's opaque ids. */
function identity (dialect: Dialect, upstream: UpstreamConfig, model: string): { canonical: string | null, raw?: string, unknown?: string } {
  const alias = upstream.modelAliases.size === 0 ? undefined : upstream.modelAliases.get(model.toLowerCase())
  if (alias !== undefined) return { canonical: canonicalModelId(alias), raw: alias.toLowerCase() }
  const opaque = dialect.opaque?.(model)
  if (opaque != null) return { canonical: null, unknown: `${opaque}; map it in upstreams.${upstream.name}.model_aliases` }
  return { canonical: canonicalModelId(model), raw: model.toLowerCase() }
}

/** A route the gateway cannot carry out for `what` kind of request (null: it can) becomes a block that says so. */
function notRouted (d: Decided, what: string): Decided {
  const { decision } = d
  if (decision.action !== 'route') return d
  return { ...d, decision: { action: 'block', enforced: decision.enforced, rule: decision.rule, reason: `${decision.reason}; ${what} is not routed, so it is blocked` } }
}

/** The query with `param` naming the routed model, every other parameter as it was. */
export function routedQuery (query: string, param: string, model: string): string {
  const params = new URLSearchParams(query)
  params.set(param, model)
  return `?${params.toString()}`
}

/** The path that carries a routed model: the model's segment rewritten, every other byte kept. */
export function routedPath (path: UpstreamPath, endpoint: Endpoint & { kind: 'path' }, model: string): string {
  const raw = [...path.raw]
  raw[endpoint.segment] = encodeSegment(`${endpoint.prefix}${model}${endpoint.suffix}`)
  return `/${raw.join('/')}${path.path.length > 1 && path.path.endsWith('/') ? '/' : ''}`
}
