// One line per request, `msg: "decision"`: what the gateway saw, what it decided and why.
// Built field by field from the request state, never from headers or bodies.
import type { Logger } from 'pino'
import type { Decision } from '../policy/evaluate.js'
import type { RequestState } from './state.js'
import type { Metrics } from '../observability/metrics.js'

export interface DecisionRecord {
  decision_id: string
  policy_revision: string
  client_ip: string | null
  ip_source: string
  client?: string
  country: string | null
  registered_country: string | null
  location_source: string
  location_reason?: string
  subdivisions?: readonly string[]
  network?: string
  anonymous?: readonly string[]
  upstream: string | null
  method: string
  path: string
  model: string | null
  canonical_model?: string
  /** The end user as a verified identity token states it (the subject hashed as logging.client_ip says). */
  identity?: { issuer: string, subject: string, country: string, subdivisions: readonly string[], entity: string | null, source_claim: string, jti?: string }
  /** What became of the identity token: ok, absent, missing, expired, bad_signature, ... */
  identity_result?: string
  batch_models?: readonly string[]
  rule: string | null
  action: Decision['action']
  routed_upstream?: string
  routed_model?: string
  enforced: boolean
  reason: string
  status: number
  duration_ms: number
  /** Why the response did not reach its end. */
  cut?: string
}

export function decisionRecord (st: RequestState, method: string, url: string, status: number): DecisionRecord {
  const q = url.indexOf('?')
  const decision = st.decision ?? { action: 'block', enforced: true, rule: null, reason: 'the request ended before a decision' }
  const record: DecisionRecord = {
    decision_id: st.decisionId,
    policy_revision: st.runtime.policy.revision,
    client_ip: st.runtime.presentIp(st.client.ip),
    ip_source: st.client.source,
    country: st.location.country,
    registered_country: st.location.registeredCountry,
    location_source: st.location.source,
    upstream: st.upstream?.name ?? null,
    method,
    // The query string is left out: some APIs carry a key in it (Gemini's ?key=).
    path: q === -1 ? url : url.slice(0, q),
    model: st.model,
    rule: decision.rule,
    action: decision.action,
    enforced: decision.enforced,
    reason: decision.reason,
    status,
    duration_ms: Math.round(Number(process.hrtime.bigint() - st.startedAt) / 1e4) / 100,
  }
  const why = st.client.problem ?? st.location.reason
  if (why !== undefined) record.location_reason = why
  if (st.clientName !== null) record.client = st.clientName
  if (st.canonicalModel !== null) record.canonical_model = st.canonicalModel
  if (st.identityResult !== null) record.identity_result = st.identityResult
  if (st.identity !== null) {
    const id = st.identity
    record.identity = { issuer: id.issuer, subject: st.runtime.presentSubject(id.subject), country: id.country, subdivisions: id.subdivisions, entity: id.entity, source_claim: id.sourceClaim }
    if (id.jti !== null) record.identity.jti = id.jti
  }
  if (st.batchModels !== null) record.batch_models = st.batchModels
  if (st.location.subdivisions.length > 0) record.subdivisions = st.location.subdivisions
  if (st.location.network !== undefined) record.network = st.location.network
  if (st.location.anonymous.length > 0) record.anonymous = st.location.anonymous
  if (decision.route !== undefined) {
    record.routed_upstream = decision.route.upstream
    record.routed_model = decision.route.model
  }
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
