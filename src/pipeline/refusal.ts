// What the gateway answers by itself, in HTTP and on a refused WebSocket upgrade alike: every
// refusal (a block, or an error) as status, headers and body in the dialect of the upstream
// the request was for, and the headers it stamps on every answer.
import { DIALECTS, type Dialect } from '../dialects/registry.js'
import { STATUS, type ErrorKind, type GatewayError } from '../errors.js'
import type { Decision } from '../policy/evaluate.js'
import type { RequestState } from './state.js'

export const DECISION_HEADER = 'x-geofence-decision-id'

export const ROUTED_MODEL_HEADER = 'x-geofence-routed-model'

export interface Refusal {
  status: number
  headers: Readonly<Record<string, string>>
  body: unknown
  /** What the body says, for an answer that is not a body (a WebSocket close reason). */
  message: string
}

const NO_HEADERS: Readonly<Record<string, string>> = {}

/** The 451 for a request the policy blocks: its message names the model, the place, the rule and why. */
export function blockRefusal (st: RequestState, decision: Decision): Refusal {
  const where = st.identity === null ? st.location.country : `${st.location.country ?? 'an unknown location'} (identity ${st.identity.country})`
  const message = blockMessage(st.model, where, decision.rule, decision.reason, st.decisionId)
  return shaped(dialectOf(st), 'blocked', message, st.decisionId)
}

/** An error the gateway answers with, in the dialect of the upstream the request was for (if known). */
export function errorRefusal (st: RequestState | null, err: GatewayError, id: string): Refusal {
  return shaped(st === null ? undefined : dialectOf(st), err.kind, err.message, id)
}

/**
 * A request refused before any decision (400, 404, 413, 415) takes the refusal as its
 * decision, so that its decision line says why; after a decision (502, 504) it stays.
 */
export function refusedBeforeDecision (st: RequestState | null, err: GatewayError): void {
  if (st !== null && st.decision === null) st.decision = { action: 'block', enforced: true, rule: null, reason: err.message }
}

/** The dialect of the upstream a request was for, known even when its path could not be read. */
function dialectOf (st: RequestState): Dialect | undefined {
  return st.upstream === null ? undefined : DIALECTS[st.upstream.dialect]
}

/** An overloaded gateway says when to come back, whatever the dialect. */
const RETRY_AFTER: Readonly<Record<string, string>> = { 'retry-after': '1' }

function shaped (dialect: Dialect | undefined, kind: ErrorKind, message: string, id: string): Refusal {
  const headers = dialect?.errorHeaders?.(kind) ?? NO_HEADERS
  return {
    status: STATUS[kind],
    message,
    headers: kind === 'overloaded' ? { ...headers, ...RETRY_AFTER } : headers,
    body: dialect === undefined ? { error: { type: kind, message, decision_id: id } } : dialect.renderError(kind, message, id),
  }
}

function blockMessage (model: string | null, country: string | null, rule: string | null, reason: string, id: string): string {
  const what = model === null ? 'This request' : `Model "${model}"`
  const where = country === null ? 'from an unknown location' : `from ${country}`
  // Without a rule, the reason names the setting that decided (policy.default, policy.unknown_model).
  const by = rule === null ? 'the policy' : `rule "${rule}"`
  return `${what} is not available ${where}: blocked by ${by} (${reason}). Decision id ${id}.`
}
