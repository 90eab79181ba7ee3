// `geofence explain`: the same pipeline a live request goes through (canonical address,
// special-purpose check, cache-free database lookup, compiled policy), for one IP and model.
import { canonicalAddress } from './geo/address.js'
import { DIALECTS } from './dialects/registry.js'
import { globToRegExp } from './policy/compile.js'
import { evaluate, type Decision } from './policy/evaluate.js'
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
  model: string
  policy_revision: string
}

export async function explain (configFile: string, ip: string, model: string, upstream?: string, client?: string): Promise<Explanation | { problem: string }> {
  return explainWith(await loadRuntime(configFile), ip, model, upstream, client)
}

export function explainWith (runtime: Runtime, ip: string, model: string, upstreamName?: string, client?: string): Explanation | { problem: string } {
  const address = canonicalAddress(ip)
  if (address === null) return { problem: `"${ip}" is not an IP address` }
  const upstream = upstreamName ?? inferUpstream(runtime, model)
  const upstreamConfig = runtime.config.upstreams.get(upstream)
  if (upstreamConfig === undefined) {
    return { problem: `unknown upstream "${upstream}" (known: ${[...runtime.config.upstreams.keys()].join(', ')})` }
  }
  if (client !== undefined && ![...runtime.config.clients.values()].includes(client)) {
    return { problem: `unknown client "${client}"` }
  }
  const loc = runtime.locator.locate(address)
  // The model as serve reads it for this upstream's dialect (Gemini's models/ID is matched as ID).
  const dialect = DIALECTS[upstreamConfig.dialect]
  const decision = evaluate(runtime.policy, { upstream, model: dialect.policyModel?.(model) ?? model, client: client ?? null, location: loc, locationProblem: loc.reason })
  return {
    ...decision,
    client_ip: address,
    ...(client === undefined ? {} : { client }),
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
    upstream,
    model,
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
  const rule = runtime.config.policy.rules.find((r) => r.modelsListed && globToRegExp(r.models).test(model))
  return rule?.upstreams?.[0] ?? first
}

export function formatExplanation (e: Explanation): string {
  const where = e.location.country ?? `unknown (${e.location.reason ?? 'no country'})`
  return [
    `decision:  ${e.action}${e.route === undefined ? '' : ` to ${e.route.upstream} (${e.route.model})`}${e.action !== 'allow' && !e.enforced ? ' (dry-run: recorded, not enforced)' : ''}`,
    `rule:      ${e.rule ?? 'policy.default'}`,
    `reason:    ${e.reason}`,
    `client:    ${e.client_ip} -> ${where}${e.location.subdivisions.length > 0 ? ` ${e.location.subdivisions.join(' ')}` : ''} (source: ${e.location.source}${e.location.network === undefined ? '' : ` ${e.location.network}`}${e.location.database === undefined ? '' : `, ${e.location.database}`})${e.location.anonymous.length > 0 ? ` anonymous: ${e.location.anonymous.join(', ')}` : ''}`,
    `upstream:  ${e.upstream}`,
    `model:     ${e.model}`,
    `revision:  ${e.policy_revision}`,
    '',
  ].join('\n')
}
