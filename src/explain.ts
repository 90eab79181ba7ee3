// `geofence explain`: the same pipeline a live request goes through (canonical address,
// special-purpose check, database lookup, compiled policy), for one IP and either a model or a
// whole request (method, path, headers, body file), read by the very code `serve` reads with.
import type { IncomingHttpHeaders } from 'node:http'
import { canonicalAddress } from './geo/address.js'
import { GatewayError } from './errors.js'
import { globToRegExp } from './policy/compile.js'
import { canonicalModelId } from './policy/model-id.js'
import { decidedBy, type Decision } from './policy/evaluate.js'
import { DIALECTS } from './dialects/registry.js'
import { decide, decideModel, type Asker } from './pipeline/decision.js'
import { findEndpoint, type RequestEndpoint } from './pipeline/endpoint.js'
import { nameModel, readModels } from './pipeline/models.js'
import { mountName } from './proxy/upstream-path.js'
import { loadRuntime, type Runtime } from './runtime.js'
import type { Location } from './geo/locator.js'

export interface Explanation {
  action: Decision['action']
  enforced: boolean
  rule: string | null
  reason: string
  route?: Decision['route']
  client_ip: string
  /** The authenticated client the request was explained for (rules may name clients). */
  client?: string
  location: {
    country: string | null
    registered_country: string | null
    subdivisions: readonly string[]
    anonymous: readonly string[]
    source: Location['source']
    database?: string
    network?: string
    reason?: string
  }
  upstream: string
  /** The model as the request names it, and the canonical id the policy matched. */
  model: string | null
  canonical_model: string | null
  /** With --request: the path below the upstream and where its endpoint names the model. */
  request?: { method: string, path: string, endpoint: string, batch_models?: string[] }
  policy_revision: string
}

/** A whole request to explain: `POST /anthropic/v1/messages`, its headers and body. */
export interface ExplainRequest {
  method: string
  url: string
  headers: IncomingHttpHeaders
  body: Buffer | undefined
}

export async function explain (configFile: string, ip: string, model: string, upstream?: string, client?: string): Promise<Explanation | { problem: string }> {
  return explainWith(await loadRuntime(configFile), ip, model, upstream, client)
}

export function explainWith (runtime: Runtime, ip: string, model: string, upstreamName?: string, client?: string): Explanation | { problem: string } {
  const caller = callerAt(runtime, ip, upstreamName ?? inferUpstream(runtime, model), client)
  if ('problem' in caller) return caller
  const named = nameModel(DIALECTS[caller.upstream.dialect], caller.upstream, model)
  return explanation(caller, decideModel(caller, named), model, named.canonical)
}

/** A whole request, read as `serve` reads it: the upstream is the path's first segment. */
export async function explainRequest (runtime: Runtime, ip: string, req: ExplainRequest, client?: string): Promise<Explanation | { problem: string }> {
  if (!req.url.startsWith('/')) return { problem: `"${req.url}" is not a request path (write e.g. /anthropic/v1/messages)` }
  const mount = mountName(req.url)
  const caller = callerAt(runtime, ip, mount, client)
  if ('problem' in caller) return caller
  let endpoint: RequestEndpoint | undefined
  try {
    endpoint = findEndpoint(runtime.config, caller.upstream, req.method, req.url)
    const read = await readModels({ endpoint, method: req.method, headers: req.headers, body: req.body })
    const { decision, model } = decide(caller, endpoint, read)
    return {
      ...explanation(caller, decision, model?.written ?? null, model?.canonical ?? null),
      request: { method: req.method, path: endpoint.path.path, endpoint: endpoint.modelSource.kind, ...(read.batch ? { batch_models: read.models.map((m) => m.written) } : {}) },
    }
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err
    // A request the gateway cannot read is refused before any decision: that is the answer.
    const refused: Decision = { action: 'block', enforced: true, rule: null, reason: `refused with ${err.status}: ${err.message}` }
    const path = endpoint?.path.path ?? req.url.slice(mount.length + 1).split('?')[0] ?? ''
    return { ...explanation(caller, refused, null, null), request: { method: req.method, path, endpoint: endpoint?.modelSource.kind ?? 'unreadable path' } }
  }
}

function callerAt (runtime: Runtime, ip: string, upstream: string, client: string | undefined): (Asker & { address: string }) | { problem: string } {
  const address = canonicalAddress(ip)
  if (address === null) return { problem: `"${ip}" is not an IP address` }
  const upstreamConfig = runtime.config.upstreams.get(upstream)
  if (upstreamConfig === undefined) {
    return { problem: `unknown upstream "${upstream}" (known: ${[...runtime.config.upstreams.keys()].join(', ')})` }
  }
  if (client !== undefined && ![...runtime.config.clients.values()].includes(client)) {
    return { problem: `unknown client "${client}"` }
  }
  const location = runtime.locator.locate(address)
  return { runtime, upstream: upstreamConfig, client: client ?? null, location, locationProblem: location.reason, address }
}

function explanation (caller: Asker & { address: string }, decision: Decision, model: string | null, canonical: string | null): Explanation {
  const { runtime, location: loc, client } = caller
  return {
    ...decision,
    client_ip: caller.address,
    ...(client === null ? {} : { client }),
    location: {
      country: loc.country,
      registered_country: loc.registeredCountry,
      subdivisions: loc.subdivisions,
      anonymous: loc.anonymous,
      source: loc.source,
      ...(loc.database === undefined ? {} : { database: loc.database }),
      ...(loc.network === undefined ? {} : { network: loc.network }),
      ...(loc.reason === undefined ? {} : { reason: loc.reason }),
    },
    upstream: caller.upstream.name,
    model,
    canonical_model: canonical,
    policy_revision: runtime.policy.revision,
  }
}

/**
 * The only upstream; else the first upstream named by the first rule whose `models` list
 * matches the model (rules without a list match every model and say nothing about it);
 * else the first upstream.
 */
function inferUpstream (runtime: Runtime, model: string): string {
  const first = [...runtime.config.upstreams.keys()][0] ?? ''
  if (runtime.config.upstreams.size === 1) return first
  // As serve matches: the canonical id or the id as written.
  const ids = [model, canonicalModelId(model)]
  const rule = runtime.config.policy.rules.find((r) => r.modelsListed && ids.some((id) => globToRegExp(r.models).test(id)))
  return rule?.upstreams?.[0] ?? first
}

export function formatExplanation (e: Explanation): string {
  const where = e.location.country ?? `unknown (${e.location.reason ?? 'no country'})`
  return [
    `decision:  ${e.action}${e.route === undefined ? '' : ` to ${e.route.upstream} (${e.route.model})`}${e.action !== 'allow' && !e.enforced ? ' (dry-run: recorded, not enforced)' : ''}`,
    `rule:      ${e.rule ?? decidedBy(e)}`,
    `reason:    ${e.reason}`,
    `client:    ${e.client_ip} -> ${where}${e.location.subdivisions.length > 0 ? ` ${e.location.subdivisions.join(' ')}` : ''} (source: ${e.location.source}${e.location.network === undefined ? '' : ` ${e.location.network}`}${e.location.database === undefined ? '' : `, ${e.location.database}`})${e.location.anonymous.length > 0 ? ` anonymous: ${e.location.anonymous.join(', ')}` : ''}`,
    `upstream:  ${e.upstream}`,
    ...(e.request === undefined ? [] : [`request:   ${e.request.method} ${e.request.path} (model read from: ${e.request.endpoint})`]),
    `model:     ${e.model ?? '(none)'}${e.canonical_model !== null && e.canonical_model !== e.model ? ` (canonical: ${e.canonical_model})` : ''}`,
    `revision:  ${e.policy_revision}`,
    '',
  ].join('\n')
}
