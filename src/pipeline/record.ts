// One line per request, `msg: "decision"`: what the gateway saw, what it decided and why.
// Built field by field from the request state, never from headers or bodies.
import type { Logger } from 'pino'
import type { Decision } from '../policy/evaluate.js'
import type { RequestState } from './state.js'
import type { Metrics } from '../observability/metrics.js'

/**
 * The version of the decision line's fields. Bump it when a field changes meaning or a field
 * `geofence replay` needs is added; replay refuses lines of a schema it does not know.
 */
export const DECISION_SCHEMA = 1

/**
 * The line's fields in the order they are written. Per-request values come first (id, the
 * revision, caller address, path), then everything the decision was taken from and what it was, ending with the
 * identity's jurisdiction, then the identity's subject and the timings: so that the facts of a
 * decision are one contiguous run of the line (from `"schema"` to the identity's `"subject"` or
 * to `"duration_ms"`), which `geofence replay` uses as its cache key (evidence/replay.ts).
 */
export interface DecisionRecord {
  decision_id: string
  policy_revision: string
  /** The key that signed the revision (policy_signature), when one must. */
  policy_key?: string
  client_ip: string | null
  path: string
  schema: typeof DECISION_SCHEMA
  ip_source: string
  country: string | null
  registered_country: string | null
  location_source: string
  location_reason?: string
  subdivisions?: readonly string[]
  network?: string
  anonymous?: readonly string[]
  upstream: string | null
  method: string
  model: string | null
  canonical_model?: string
  batch_models?: readonly string[]
  /** The endpoint carries a model the gateway cannot see, and why (policy.unknown_model decides). */
  unknown_model?: string
  /** An endpoint the dialect does not list (policy.unknown_endpoint decides). */
  unknown_endpoint?: string
  /** A model-less endpoint, as an upstream's `endpoints` list is matched against it: `GET /v1/models`. */
  endpoint?: string
  /** Why a route could not be carried out on this request (a batch, a multipart body, ...). */
  not_routable?: string
  client?: string
  /** What became of the identity token: ok, absent, missing, expired, bad_signature, ... */
  identity_result?: string
  /** Why the identity is unknown (no token, none required). */
  identity_reason?: string
  rule: string | null
  /** Without a rule: the policy setting that decided (default, unknown_model, endpoints). */
  setting?: NonNullable<Decision['setting']>
  action: Decision['action']
  routed_upstream?: string
  routed_model?: string
  enforced: boolean
  reason: string
  status: number
  /** The end user as a verified identity token states it (the subject hashed as logging.client_ip says). */
  identity?: { country: string, subdivisions: readonly string[], entity: string | null, issuer: string, source_claim: string, subject: string, jti?: string }
  duration_ms: number
  /** The gateway answered for the upstream (502, 504): why (no address, no credential). */
  upstream_error?: string
  /** Why the response did not reach its end. */
  cut?: string
}

export function decisionRecord (st: RequestState, method: string, url: string, status: number): DecisionRecord {
  const q = url.indexOf('?')
  const decision = st.decision ?? { action: 'block', enforced: true, rule: null, reason: 'the request ended before a decision' }
  // Built in the order of DecisionRecord: optional fields are added where they belong.
  const record = { decision_id: st.decisionId, policy_revision: st.runtime.policy.revision } as DecisionRecord
  const { policyKey } = st.runtime.config
  if (policyKey !== null) record.policy_key = policyKey
  record.client_ip = st.runtime.presentIp(st.client.ip)
  // The query string is left out: some APIs carry a key in it (Gemini's ?key=).
  record.path = q === -1 ? url : url.slice(0, q)
  record.schema = DECISION_SCHEMA
  record.ip_source = st.client.source
  record.country = st.location.country
  record.registered_country = st.location.registeredCountry
  record.location_source = st.location.source
  const why = st.client.problem ?? st.location.reason
  if (why !== undefined) record.location_reason = why
  if (st.location.subdivisions.length > 0) record.subdivisions = st.location.subdivisions
  if (st.location.network !== undefined) record.network = st.location.network
  if (st.location.anonymous.length > 0) record.anonymous = st.location.anonymous
  record.upstream = st.upstream?.name ?? null
  record.method = method
  record.model = st.model
  if (st.canonicalModel !== null) record.canonical_model = st.canonicalModel
  if (st.batchModels !== null) record.batch_models = st.batchModels
  if (st.unseenModel !== null) record.unknown_model = st.unseenModel
  if (st.unlistedEndpoint !== null) record.unknown_endpoint = st.unlistedEndpoint
  if (st.modelLessEndpoint !== null) record.endpoint = st.modelLessEndpoint
  if (st.notRoutable !== null) record.not_routable = st.notRoutable
  if (st.clientName !== null) record.client = st.clientName
  if (st.identityResult !== null) record.identity_result = st.identityResult
  if (st.identity === null && st.identityProblem !== undefined) record.identity_reason = st.identityProblem
  record.rule = decision.rule
  if (decision.rule === null && decision.setting !== undefined) record.setting = decision.setting
  record.action = decision.action
  if (decision.route !== undefined) {
    record.routed_upstream = decision.route.upstream
    record.routed_model = decision.route.model
  }
  record.enforced = decision.enforced
  record.reason = decision.reason
  record.status = status
  if (st.identity !== null) {
    const id = st.identity
    record.identity = { country: id.country, subdivisions: id.subdivisions, entity: id.entity, issuer: id.issuer, source_claim: id.sourceClaim, subject: st.runtime.presentSubject(id.subject) }
    if (id.jti !== null) record.identity.jti = id.jti
  }
  record.duration_ms = Math.round(Number(process.hrtime.bigint() - st.startedAt) / 1e4) / 100
  if (st.upstreamError !== null) record.upstream_error = st.upstreamError
  return record
}

/** Writes each request's decision line, once, and counts it in the metrics. */
export class DecisionLog {
  readonly #logger: Logger
  readonly #metrics: Metrics
  constructor (logger: Logger, metrics: Metrics) {
    this.#logger = logger
    this.#metrics = metrics
  }

  /** A request began: it is in flight until its line is written. */
  begin (): void {
    this.#metrics.inflight.inc()
  }

  /** The decision line of a request that ended with `status` (`cut`: why it did not reach its end). Later calls do nothing. */
  write (st: RequestState, method: string, url: string, status: number, cut?: string): void {
    if (st.logged) return
    st.logged = true
    this.#metrics.inflight.dec()
    const record = decisionRecord(st, method, url, status)
    if (cut !== undefined) record.cut = cut
    this.#logger.info(record, 'decision')
    this.#metrics.recordDecision({
      upstream: record.upstream ?? 'none',
      rule: record.rule ?? st.decision?.setting ?? 'none',
      action: record.action,
      enforced: record.enforced,
      country: record.country ?? 'unknown',
      seconds: record.duration_ms / 1000,
      status: record.status,
    })
  }
}
