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
import { readIdentity } from './identity/claims.js'
import type { Identity } from './identity/verifier.js'
import { compilePolicy, type Policy } from './policy/compile.js'
import { evaluate } from './policy/evaluate.js'
import type { JurisdictionSource } from './policy/rules.js'

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
  /** The end user as the identity given (claims or a token) states it; null when none was given. */
  identity: { issuer: string, country: string, subdivisions: readonly string[], entity: string | null, source_claim: string } | null
  /** Each source's location and what the policy says of it judged alone (the decision needs every judged one to pass). */
  sources: { network: SourceVerdict, identity?: SourceVerdict }
  policy_revision: string
}

export interface SourceVerdict { location: string | null, verdict: Decision['action'], reason: string }

/** The end user for an explanation: claims as they would arrive (mapped as the issuer's config says), or a token, verified as serve verifies it. */
export type ExplainIdentity = { claims: Record<string, unknown> } | { token: string }

/** A whole request to explain: `POST /anthropic/v1/messages`, its headers and body. */
export interface ExplainRequest {
  method: string
  url: string
  headers: IncomingHttpHeaders
  body: Buffer | undefined
}

export async function explain (configFile: string, ip: string, model: string, upstream?: string, client?: string, given?: ExplainIdentity): Promise<Explanation | { problem: string }> {
  // A policy is explained before it is signed: its signature is not checked.
  const runtime = await loadRuntime(configFile, { identityKeys: given !== undefined && 'token' in given, policyKeys: null })
  try {
    const identity = await identityOf(runtime, given)
    return 'problem' in identity ? identity : explainWith(runtime, ip, model, upstream, client, identity.identity)
  } finally {
    runtime.identity?.close()
  }
}

/**
 * The identity an explanation judges: claims go through the issuer's claim mapping (the issuer
 * their `iss` names, else the first configured one); a token is verified with the issuer's keys.
 */
export async function identityOf (runtime: Runtime, given: ExplainIdentity | undefined): Promise<{ identity: Identity | null } | { problem: string }> {
  if (given === undefined) return { identity: null }
  const config = runtime.config.identity
  if (config === null) return { problem: 'the config has no identity section, so an identity cannot be judged' }
  if ('token' in given) {
    const verifier = runtime.identity
    if (verifier === null) return { problem: 'the identity keys were not loaded (the runtime was built without them)' }
    await verifier.loaded()
    const r = await verifier.verify(given.token.trim())
    if (!r.ok) return { problem: `the token is refused (${r.result}): ${r.reason}` }
    return { identity: r.identity }
  }
  const issuer = config.issuers.find((i) => i.issuer === given.claims['iss']) ?? config.issuers[0]
  if (issuer === undefined) return { problem: 'the identity section names no issuer' }
  // Claims for explaining need no subject (it only names the person in logs): one is supplied where absent.
  const claims: Record<string, unknown> = { iss: issuer.issuer, ...given.claims }
  let at = claims
  const segments = issuer.claims.subject.segments
  segments.forEach((segment, i) => {
    if (i === segments.length - 1) at[segment] ??= 'explain'
    else at = (at[segment] ??= {}) as Record<string, unknown>
  })
  const read = readIdentity(claims, issuer)
  return 'problem' in read ? { problem: `the identity claims cannot be used: ${read.problem}` } : { identity: read }
}

export function explainWith (runtime: Runtime, ip: string, model: string, upstreamName?: string, client?: string, identity: Identity | null = null): Explanation | { problem: string } {
  const found = callerAt(runtime, ip, upstreamName ?? inferUpstream(runtime, model), client)
  if ('problem' in found) return found
  const caller = withIdentity(found, identity)
  const named = nameModel(DIALECTS[caller.upstream.dialect], caller.upstream, model)
  return explanation(caller, decideModel(caller, named), model, named.canonical)
}

/** A whole request, read as `serve` reads it: the upstream is the path's first segment. */
export async function explainRequest (runtime: Runtime, ip: string, req: ExplainRequest, client?: string, identity: Identity | null = null): Promise<Explanation | { problem: string }> {
  if (!req.url.startsWith('/')) return { problem: `"${req.url}" is not a request path (write e.g. /anthropic/v1/messages)` }
  const mount = mountName(req.url)
  const found = callerAt(runtime, ip, mount, client)
  if ('problem' in found) return found
  const caller = withIdentity(found, identity)
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
  if (client !== undefined && !runtime.config.clientNames.has(client)) {
    return { problem: `unknown client "${client}"` }
  }
  const location = runtime.locator.locate(address)
  return { runtime, upstream: upstreamConfig, client: client ?? null, location, locationProblem: location.reason, address }
}

type ExplainCaller = Asker & { address: string }

function withIdentity (caller: ExplainCaller, identity: Identity | null): ExplainCaller {
  return { ...caller, identity, ...(identity === null ? { identityProblem: 'no identity was given (--identity or --token)' } : {}) }
}

/** The policy with every rule judging only `source`: what that source alone would be told. */
const judgedAlone = new WeakMap<Runtime, Map<JurisdictionSource, Policy>>()
function policyJudging (runtime: Runtime, source: JurisdictionSource): Policy {
  let bySource = judgedAlone.get(runtime)
  if (bySource === undefined) judgedAlone.set(runtime, bySource = new Map())
  let policy = bySource.get(source)
  if (policy === undefined) {
    const { config } = runtime
    policy = compilePolicy({ ...config, policy: { ...config.policy, jurisdiction: [source], rules: config.policy.rules.map((r) => ({ ...r, jurisdiction: [source] })) } })
    bySource.set(source, policy)
  }
  return policy
}

function sourceVerdicts (caller: ExplainCaller, canonical: string | null, model: string | null): Explanation['sources'] {
  const verdict = (source: JurisdictionSource): { verdict: Decision['action'], reason: string } => {
    const d = evaluate(policyJudging(caller.runtime, source), {
      upstream: caller.upstream.name,
      model: canonical,
      rawModel: model?.toLowerCase(),
      client: caller.client,
      location: caller.location,
      locationProblem: caller.locationProblem,
      identity: caller.identity ?? null,
      identityProblem: caller.identityProblem,
    })
    return { verdict: d.action, reason: d.reason }
  }
  const network = { location: caller.location.country, ...verdict('network') }
  // Only where the config reads identities: elsewhere every identity is unknown, and saying so would only confuse.
  return caller.runtime.config.identity === null ? { network } : { network, identity: { location: caller.identity?.country ?? null, ...verdict('identity') } }
}

function explanation (caller: ExplainCaller, decision: Decision, model: string | null, canonical: string | null): Explanation {
  const { runtime, location: loc, client } = caller
  const id = caller.identity ?? null
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
    identity: id === null ? null : { issuer: id.issuer, country: id.country, subdivisions: id.subdivisions, entity: id.entity, source_claim: id.sourceClaim },
    sources: sourceVerdicts(caller, canonical, model),
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
    ...(e.identity === null ? [] : [`identity:  ${e.identity.country}${e.identity.subdivisions.length > 0 ? ` ${e.identity.subdivisions.join(' ')}` : ''}${e.identity.entity === null ? '' : ` (entity ${e.identity.entity})`} from ${e.identity.issuer} (claim ${e.identity.source_claim})`]),
    ...(e.sources.identity === undefined ? [] : [`sources:   network ${e.sources.network.location ?? 'unknown'}: ${e.sources.network.verdict}; identity ${e.sources.identity.location ?? 'unknown'}: ${e.sources.identity.verdict}`]),
    `upstream:  ${e.upstream}`,
    ...(e.request === undefined ? [] : [`request:   ${e.request.method} ${e.request.path} (model read from: ${e.request.endpoint})`]),
    `model:     ${e.model ?? '(none)'}${e.canonical_model !== null && e.canonical_model !== e.model ? ` (canonical: ${e.canonical_model})` : ''}`,
    `revision:  ${e.policy_revision}`,
    '',
  ].join('\n')
}
