// Stage decision: what the policy says of the models a request names, for this caller. The
// policy's `evaluate` is pure; this stage applies it to each model (a batch passes only if
// every model passes) and turns a route that cannot be carried out on this request into a
// block that says why.
import type { UpstreamConfig } from '../config/validate.js'
import type { Location } from '../geo/locator.js'
import type { Identity } from '../identity/verifier.js'
import { evaluate, type Decision } from '../policy/evaluate.js'
import type { Runtime } from '../runtime.js'
import { DIALECTS } from '../dialects/registry.js'
import { nameModel, type ModelsRead, type NamedModel } from './models.js'
import type { RequestEndpoint } from './endpoint.js'

/** Who asks, under which revision and upstream: what a decision needs besides the models. */
export interface Asker {
  runtime: Runtime
  upstream: UpstreamConfig
  client: string | null
  location: Location
  locationProblem: string | undefined
  /** The verified identity (null: unknown, or not checked), and why it is unknown. */
  identity?: Identity | null
  identityProblem?: string | undefined
}

export interface Decided {
  decision: Decision
  /** The model the decision is about (a batch's first refused one); null when none is named. */
  model: NamedModel | null
}

/**
 * Only what the decision reads of the endpoint and the models: `geofence replay` decides again
 * from what a decision line recorded, without the request.
 */
export function decide (asker: Asker, endpoint: Pick<RequestEndpoint, 'dialect'>, read: Pick<ModelsRead, 'models' | 'unseen' | 'listedEndpoint' | 'unlistedEndpoint' | 'rewrite'>): Decided {
  if (read.models.length === 0) {
    return { decision: decideModel(asker, null, { unseen: read.unseen, listedEndpoint: read.listedEndpoint, unlistedEndpoint: read.unlistedEndpoint }), model: null }
  }
  const decided = read.models.map((model) => ({ model, decision: decideModel(asker, model) }))
  // Refused and enforced first, then refused in dry-run, then the first: the one the log names.
  const chosen = decided.find((d) => d.decision.action !== 'allow' && d.decision.enforced) ??
    decided.find((d) => d.decision.action !== 'allow') ?? decided[0] as Decided & { model: NamedModel }
  const { decision } = chosen
  if (decision.action !== 'route' || decision.route === undefined) return chosen
  if (read.rewrite.kind === 'refused') return { ...chosen, decision: notRouted(decision, read.rewrite.why) }
  // A request its client signed (SigV4 covers path and body) can be rewritten only where the
  // gateway signs for the target itself.
  const target = asker.runtime.config.upstreams.get(decision.route.upstream)
  if (endpoint.dialect.signed === true && target?.awsSigv4 == null) return { ...chosen, decision: notRouted(decision, 'a request signed by the client (SigV4)') }
  // A route never crosses a border the policy draws: the routed model is decided again, for
  // the same caller, on the target; it must be allowed there (routes do not chain).
  if (target === undefined) return { ...chosen, decision: notRouted(decision, `a route to ${decision.route.upstream}, which is not configured,`) }
  const again = decideModel({ ...asker, upstream: target }, nameModel(DIALECTS[target.dialect], target, decision.route.model))
  if (again.action !== 'allow') {
    return { ...chosen, decision: { action: 'block', enforced: decision.enforced, rule: decision.rule, reason: `${decision.reason}; the route to ${decision.route.upstream} (${decision.route.model}) is itself ${again.action === 'route' ? 'routed, and routes do not chain' : `refused for this caller (${again.reason})`}, so it is blocked` } }
  }
  return chosen
}

/** The policy's decision for one model as a request names it (null: none), by this upstream's rules. */
export function decideModel (asker: Asker, model: NamedModel | null, extra: { unseen?: string | undefined, listedEndpoint?: string | undefined, unlistedEndpoint?: string | undefined } = {}): Decision {
  return evaluate(asker.runtime.policy, {
    upstream: asker.upstream.name,
    model: model?.canonical ?? null,
    rawModel: model?.raw,
    unknownModel: model?.unseen ?? extra.unseen,
    listedEndpoint: extra.listedEndpoint,
    unknownEndpoint: extra.unlistedEndpoint,
    client: asker.client,
    location: asker.location,
    locationProblem: asker.locationProblem,
    identity: asker.identity ?? null,
    identityProblem: asker.identityProblem,
  })
}

/** A route the gateway cannot carry out for `what` kind of request becomes a block that says so. */
function notRouted (decision: Decision, what: string): Decision {
  return { action: 'block', enforced: decision.enforced, rule: decision.rule, reason: `${decision.reason}; ${what} is not routed, so it is blocked` }
}
