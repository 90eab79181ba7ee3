// Prometheus metrics (prom-client), one registry per process. Label values are bounded: the
// upstream and rule are configured names (or none/default), the country an ISO code or
// "unknown"; nothing a client writes becomes a label.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/** What the metrics read of the revision in force, at each scrape. */
export interface RevisionView {
  current: {
    policy: { revision: string }
    locator: { databases: ReadonlyArray<{ file: string, buildEpoch: Date }>, anonymousDb: { file: string, buildEpoch: Date } | null }
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

  readonly reloads = new Counter({
    name: 'geofence_config_reloads_total',
    help: 'Reload attempts, by result',
    labelNames: ['result'] as const,
    registers: [this.registry],
  })

  // Children per label combination, so that the hot path does not hash label objects.
  readonly #decisionChildren = new Map<string, { count: { inc: () => void }, duration: { observe: (v: number) => void } }>()
  readonly #firstByteChildren = new Map<string, { observe: (v: number) => void }>()

  recordDecision (upstream: string, rule: string, action: string, enforced: boolean, country: string, seconds: number): void {
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
      collect () {
        this.reset()
        this.set({ revision: current().policy.revision }, 1)
      },
    })
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'geofence_geoip_database_build_timestamp_seconds',
      help: 'Build time of each database in force (alert when it gets old)',
      labelNames: ['database'] as const,
      registers: [this.registry],
      collect () {
        this.reset()
        const { locator } = current()
        for (const db of [...locator.databases, ...(locator.anonymousDb === null ? [] : [locator.anonymousDb])]) {
          this.set({ database: db.file }, db.buildEpoch.getTime() / 1000)
        }
      },
    })
    for (const result of ['hit', 'miss']) this.cache.inc({ result }, 0)
    for (const result of ['success', 'failure']) this.reloads.inc({ result }, 0)
  }
}
