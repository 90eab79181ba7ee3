// Prometheus metrics (prom-client), one registry per process. Label values are bounded: the
// upstream and rule are configured names (or none/default), the country an ISO code or
// "unknown", the code an HTTP status; nothing a client writes becomes a label. Every family is
// registered here, at start, whatever the configuration: the dashboard and the alert rules in
// config/ name only these (test/observability/dashboards.test.ts checks it). With
// server.workers > 1 the primary sums the workers' series; the gauges that must not be summed
// say how they combine.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { FETCH_RESULTS } from '../config/policy-source.js'

/** One decision, as the metrics count it (labels are bounded: configured names, ISO codes, statuses). */
export interface DecisionSample {
  upstream: string
  rule: string
  action: string
  enforced: boolean
  country: string
  seconds: number
  /** The HTTP status on the decision line. */
  status?: number
}

/** What the metrics read of the revision in force, at each scrape. */
export interface RevisionView {
  current: {
    policy: { revision: string }
    locator: { databases: ReadonlyArray<{ file: string, buildEpoch: Date }>, anonymousDb: { file: string, buildEpoch: Date } | null }
  }
}

/** Reload attempts by result, and whether the last one succeeded: "the last reload failed" is what to alert on. */
export class ReloadMetrics {
  readonly #attempts: Counter<'result'>
  readonly #lastOk: Gauge

  constructor (registry: Registry) {
    this.#attempts = new Counter({
      name: 'geofence_config_reloads_total',
      help: 'Reload attempts, by result',
      labelNames: ['result'] as const,
      registers: [registry],
    })
    this.#lastOk = new Gauge({
      name: 'geofence_config_last_reload_successful',
      help: 'Whether the last reload attempt succeeded (1 from start until one fails); after a failure the previous revision stays in force',
      registers: [registry],
      aggregator: 'min',
    })
    for (const result of ['success', 'failure']) this.#attempts.inc({ result }, 0)
    this.#lastOk.set(1)
  }

  /** One attempt (named `inc`, as when this was the bare counter). */
  inc ({ result }: { result: 'success' | 'failure' }): void {
    this.#attempts.inc({ result })
    this.#lastOk.set(result === 'success' ? 1 : 0)
  }
}

/** policy_source: fetches by result, and when the source last confirmed the policy in force (its age). */
export class PolicySourceMetrics {
  readonly #fetches: Counter<'result'>
  readonly #confirmed: Gauge
  readonly #poll: Gauge

  constructor (registry: Registry, results: readonly string[]) {
    this.#fetches = new Counter({
      name: 'geofence_policy_source_fetches_total',
      help: 'Polls of policy_source, by result: updated (a new signed policy applied), not_modified (304, or the same bytes), not_found, server_error, unreachable, bad_signature, invalid (refused by validation); on any but the first two the last good policy stays in force',
      labelNames: ['result'] as const,
      registers: [registry],
    })
    this.#confirmed = new Gauge({
      name: 'geofence_policy_source_last_success_timestamp_seconds',
      help: 'When policy_source last confirmed the policy in force (a verified policy applied, or a 304); time() minus it is the age of the policy in force. No sample without policy_source',
      registers: [registry],
      aggregator: 'min',
    })
    this.#poll = new Gauge({
      name: 'geofence_policy_source_poll_seconds',
      help: 'policy_source.poll: how often the policy source is polled (no sample without policy_source)',
      registers: [registry],
      aggregator: 'max',
    })
    for (const result of results) this.#fetches.inc({ result }, 0)
  }

  fetched (result: string): void {
    this.#fetches.inc({ result })
  }

  confirmed (epochMs: number): void {
    this.#confirmed.set(epochMs / 1000)
  }

  polling (ms: number): void {
    this.#poll.set(ms / 1000)
  }
}

export class Metrics {
  readonly registry = new Registry()
  readonly decisions = new Counter({
    name: 'geofence_decisions_total',
    help: 'Decisions taken, by upstream, rule, action, whether enforced, and caller country',
    labelNames: ['upstream', 'rule', 'action', 'enforced', 'country'] as const,
    registers: [this.registry],
  })

  readonly identityTokens = new Counter({
    name: 'geofence_identity_tokens_total',
    help: 'Identity tokens checked, by result (ok, absent, missing, expired, bad_signature, wrong_issuer, wrong_audience, unknown_key, unusable_claim, keys_unavailable, ...) and configured issuer ("none" when unknown)',
    labelNames: ['result', 'issuer'] as const,
    registers: [this.registry],
  })

  readonly identityKeyFetches = new Counter({
    name: 'geofence_identity_key_fetches_total',
    help: 'Fetches of an identity issuer\'s keys, by issuer, what started it (initial, refresh, unknown_key, stale) and result (ok, error)',
    labelNames: ['issuer', 'trigger', 'result'] as const,
    registers: [this.registry],
  })

  readonly identityKeysFetched = new Gauge({
    name: 'geofence_identity_keys_last_fetch_timestamp_seconds',
    help: 'When each issuer\'s keys were last fetched successfully (alert when it gets old: past identity.max_stale, tokens are refused with 503)',
    labelNames: ['issuer'] as const,
    registers: [this.registry],
    aggregator: 'min',
  })

  readonly cache = new Counter({
    name: 'geofence_geoip_cache_total',
    help: 'Location cache lookups, by result',
    labelNames: ['result'] as const,
    registers: [this.registry],
  })

  readonly lookupErrors = new Counter({
    name: 'geofence_geoip_lookup_errors_total',
    help: 'Database lookups that threw (a corrupt database); the caller is an unknown location',
    registers: [this.registry],
  })

  readonly requestDuration = new Histogram({
    name: 'geofence_request_duration_seconds',
    help: 'Time from request to the end of the response, by upstream and action',
    labelNames: ['upstream', 'action'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
    registers: [this.registry],
  })

  readonly upstreamDuration = new Histogram({
    name: 'geofence_upstream_duration_seconds',
    help: 'Time from forwarding to the upstream response headers (time to first byte), by upstream',
    labelNames: ['upstream'] as const,
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300],
    registers: [this.registry],
  })

  readonly inflight = new Gauge({
    name: 'geofence_inflight_requests',
    help: 'Requests being handled now',
    registers: [this.registry],
  })

  readonly responses = new Counter({
    name: 'geofence_responses_total',
    help: 'Answers, by upstream and HTTP status (the status on the decision line: 499 when the client went away)',
    labelNames: ['upstream', 'code'] as const,
    registers: [this.registry],
  })

  readonly reloads = new ReloadMetrics(this.registry)

  readonly policySource = new PolicySourceMetrics(this.registry, FETCH_RESULTS)

  // Children per label combination, so that the hot path does not hash label objects.
  readonly #decisionChildren = new Map<string, { count: { inc: () => void }, duration: { observe: (v: number) => void } }>()
  readonly #responseChildren = new Map<string, { inc: () => void }>()
  readonly #firstByteChildren = new Map<string, { observe: (v: number) => void }>()

  /** One request's end. `status` is the decision line's; without it the answer is not counted. */
  recordDecision ({ upstream, rule, action, enforced, country, seconds, status }: DecisionSample): void {
    const key = `${upstream}\u0000${rule}\u0000${action}\u0000${enforced ? 1 : 0}\u0000${country}`
    let child = this.#decisionChildren.get(key)
    if (child === undefined) {
      child = {
        count: this.decisions.labels({ upstream, rule, action, enforced: String(enforced), country }),
        duration: this.requestDuration.labels({ upstream, action }),
      }
      this.#decisionChildren.set(key, child)
    }
    child.count.inc()
    child.duration.observe(seconds)
    if (status !== undefined) {
      const responseKey = `${upstream}\u0000${status}`
      let response = this.#responseChildren.get(responseKey)
      if (response === undefined) {
        response = this.responses.labels({ upstream, code: String(status) })
        this.#responseChildren.set(responseKey, response)
      }
      response.inc()
    }
  }

  recordFirstByte (upstream: string, seconds: number): void {
    let child = this.#firstByteChildren.get(upstream)
    if (child === undefined) {
      child = this.upstreamDuration.labels({ upstream })
      this.#firstByteChildren.set(upstream, child)
    }
    child.observe(seconds)
  }

  constructor (ref: RevisionView) {
    collectDefaultMetrics({ register: this.registry })
    const current = (): RevisionView['current'] => ref.current
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'geofence_config_revision_info',
      help: 'The policy revision in force (value 1)',
      labelNames: ['revision'] as const,
      registers: [this.registry],
      aggregator: 'max',
      collect () {
        this.reset()
        this.set({ revision: current().policy.revision }, 1)
      },
    })
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'geofence_geoip_database_build_timestamp_seconds',
      help: 'Build time of each database in force, from its metadata (alert when it gets old)',
      labelNames: ['database'] as const,
      registers: [this.registry],
      // Across workers, the oldest copy in force (a sum of timestamps would mean nothing).
      aggregator: 'min',
      collect () {
        this.reset()
        const { locator } = current()
        for (const db of [...locator.databases, ...(locator.anonymousDb === null ? [] : [locator.anonymousDb])]) {
          this.set({ database: db.file }, db.buildEpoch.getTime() / 1000)
        }
      },
    })
    for (const result of ['hit', 'miss']) this.cache.inc({ result }, 0)
  }
}
