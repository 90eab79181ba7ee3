// A decision line read back: the facts its decision was taken from and the decision as it was
// recorded, for `geofence replay`. Lines of a schema this version does not know are refused:
// reading them as if they were would decide from facts that mean something else.
import type { Location } from '../geo/locator.js'
import type { Identity } from '../identity/verifier.js'
import { DECISION_SCHEMA } from '../pipeline/record.js'
import type { Decision } from '../policy/evaluate.js'
import type { LinePlace } from './lines.js'

/** A line replay cannot read as a decision of the schema it knows: the whole replay stops. */
export class ReplayError extends Error {
  constructor (readonly place: LinePlace, message: string) {
    super(`${place.file}:${place.line}: ${message}`)
  }
}

/** What a decision line recorded that a decision is taken from. */
export interface Facts {
  upstream: string | null
  method: string
  model: string | null
  batchModels: readonly string[] | null
  unknownModel: string | undefined
  unlistedEndpoint: string | undefined
  endpoint: string | undefined
  notRoutable: string | undefined
  client: string | null
  location: Location
  locationProblem: string | undefined
  identity: Identity | null
  identityProblem: string | undefined
  /** For the summary: the canonical model, else the model as written, else (none). */
  modelLabel: string
}

/** The facts and the recorded decision of a parsed decision line (`msg: "decision"`). */
export function readDecisionLine (obj: Record<string, unknown>, place: LinePlace): { logged: Decision, facts: Facts } {
  const schema = obj['schema']
  if (schema !== DECISION_SCHEMA) {
    throw new ReplayError(place, schema === undefined
      ? `a decision line without a schema version: it was written by a gateway older than the replay (schema ${DECISION_SCHEMA}), and lacks facts a decision needs; it cannot be replayed`
      : `a decision line of schema ${JSON.stringify(schema)}; this geofence reads schema ${DECISION_SCHEMA} (replay it with the version that wrote it)`)
  }
  return { logged: loggedDecision(obj, place), facts: factsOf(obj, place) }
}

/** The decision as the line recorded it. */
function loggedDecision (obj: Record<string, unknown>, place: LinePlace): Decision {
  const action = obj['action']
  if (action !== 'allow' && action !== 'block' && action !== 'route') throw new ReplayError(place, `"action" is ${JSON.stringify(action)}, not allow, block or route`)
  const setting = obj['setting']
  return {
    action,
    enforced: obj['enforced'] !== false,
    rule: str(obj, 'rule', place) ?? null,
    ...(setting === 'default' || setting === 'unknown_model' || setting === 'unknown_endpoint' || setting === 'endpoints' ? { setting } : {}),
    reason: '',
    ...(action === 'route' ? { route: { upstream: str(obj, 'routed_upstream', place) ?? '', model: str(obj, 'routed_model', place) ?? '' } } : {}),
  }
}

function factsOf (obj: Record<string, unknown>, place: LinePlace): Facts {
  const id = obj['identity'] as Record<string, unknown> | undefined
  const reason = str(obj, 'location_reason', place)
  const source = str(obj, 'location_source', place)
  return {
    upstream: str(obj, 'upstream', place) ?? null,
    method: str(obj, 'method', place) ?? '',
    model: str(obj, 'model', place) ?? null,
    batchModels: list(obj, 'batch_models', place) ?? null,
    unknownModel: str(obj, 'unknown_model', place),
    unlistedEndpoint: str(obj, 'unknown_endpoint', place),
    endpoint: str(obj, 'endpoint', place),
    notRoutable: str(obj, 'not_routable', place),
    client: str(obj, 'client', place) ?? null,
    location: {
      country: str(obj, 'country', place) ?? null,
      registeredCountry: str(obj, 'registered_country', place) ?? null,
      subdivisions: list(obj, 'subdivisions', place) ?? [],
      anonymous: list(obj, 'anonymous', place) ?? [],
      source: source === 'geoip' || source === 'network' ? source : 'none',
      ...(reason === undefined ? {} : { reason: reason as NonNullable<Location['reason']> }),
    },
    locationProblem: reason,
    identity: id === undefined || id === null
      ? null
      : {
          issuer: str(id, 'issuer', place) ?? '',
          subject: '',
          country: str(id, 'country', place) ?? '',
          subdivisions: list(id, 'subdivisions', place) ?? [],
          entity: str(id, 'entity', place) ?? null,
          sourceClaim: str(id, 'source_claim', place) ?? '',
          jti: null,
        },
    identityProblem: str(obj, 'identity_reason', place),
    modelLabel: modelLabel(obj),
  }
}

function str (obj: Record<string, unknown>, key: string, place: LinePlace): string | undefined {
  const v = obj[key]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string') throw new ReplayError(place, `"${key}" is ${JSON.stringify(v)}, not a string`)
  return v
}

function list (obj: Record<string, unknown>, key: string, place: LinePlace): string[] | undefined {
  const v = obj[key]
  if (v === undefined || v === null) return undefined
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new ReplayError(place, `"${key}" is ${JSON.stringify(v)}, not a list of strings`)
  return v as string[]
}

function modelLabel (obj: Record<string, unknown>): string {
  const canonical = obj['canonical_model']
  if (typeof canonical === 'string') return canonical
  const model = obj['model']
  return typeof model === 'string' ? model : '(none)'
}

