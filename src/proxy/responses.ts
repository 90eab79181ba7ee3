// What the gateway answers by itself, in HTTP and on a refused WebSocket upgrade alike: the
// headers it stamps, the message of a block, and an error body in the upstream's dialect.
import type { Dialect } from '../dialects/registry.js'
import type { ErrorKind } from '../errors.js'

export const DECISION_HEADER = 'x-geofence-decision-id'

export const ROUTED_MODEL_HEADER = 'x-geofence-routed-model'

export function blockMessage (model: string | null, country: string | null, rule: string | null, reason: string, id: string): string {
  const what = model === null ? 'This request' : `Model "${model}"`
  const where = country === null ? 'from an unknown location' : `from ${country}`
  // Without a rule, the reason names the setting that decided (policy.default, policy.unknown_model).
  const by = rule === null ? 'the policy' : `rule "${rule}"`
  return `${what} is not available ${where}: blocked by ${by} (${reason}). Decision id ${id}.`
}

/** An error body in the dialect's shape; a generic one where no upstream is known. */
export function errorBody (dialect: Dialect | undefined, kind: ErrorKind, message: string, id: string): unknown {
  return dialect === undefined
    ? { error: { type: kind, message, decision_id: id } }
    : dialect.renderError(kind, message, id)
}
