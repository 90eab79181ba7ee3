// With server.workers > 1 the primary serves the workers' metrics combined (prom-client's
// AggregatorRegistry): counts add up, but a build time, a revision or a last result must not.
import { AggregatorRegistry } from 'prom-client'
import t from 'tap'
import { Metrics } from '../../src/observability/metrics.js'
import { loadRuntime } from '../../src/runtime.js'
import { baseConfig, writeConfig } from '../support/gateway.js'

t.test('the combined metrics of two workers', async (t) => {
  const file = writeConfig(baseConfig('http://127.0.0.1:1'))
  const workers = await Promise.all([1, 2].map(async () => new Metrics({ current: await loadRuntime(file) })))
  const [first, second] = workers
  if (first === undefined || second === undefined) throw new Error('two workers')
  first.recordDecision({ upstream: 'anthropic', rule: 'anthropic-frontier', action: 'allow', enforced: true, country: 'US', seconds: 0.01, status: 200 })
  second.recordDecision({ upstream: 'anthropic', rule: 'anthropic-frontier', action: 'allow', enforced: true, country: 'US', seconds: 0.01, status: 200 })
  second.reloads.inc({ result: 'failure' })
  const combined = await AggregatorRegistry.aggregate(await Promise.all(workers.map(async (m) => m.registry.getMetricsAsJSON()))).metrics()

  t.match(combined, /geofence_decisions_total\{upstream="anthropic",rule="anthropic-frontier",action="allow",enforced="true",country="US"\} 2/, 'decisions add up')
  t.match(combined, /geofence_responses_total\{upstream="anthropic",code="200"\} 2/, 'answers add up')
  const built = /geofence_geoip_database_build_timestamp_seconds\{database="[^"]+"\} (\d+)/.exec(combined)?.[1]
  t.ok(Number(built) > 1.5e9 && Number(built) < Date.now() / 1000, `a database's build time stays a time (${String(built)})`)
  t.match(combined, /geofence_config_revision_info\{revision="[0-9a-f]{64}"\} 1\n/, 'the revision in force is 1, not the number of workers')
  t.match(combined, /geofence_config_last_reload_successful 0\n/, 'one worker\'s failed reload shows')
  t.match(combined, /geofence_config_reloads_total\{result="failure"\} 1\n/)
})
