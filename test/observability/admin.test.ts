// The admin listener: health, readiness and Prometheus metrics on their own port, never
// through the proxy port.
import t from 'tap'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { baseConfig, startTestGateway } from '../support/gateway.js'
import { send } from '../support/http.js'

t.test('admin listener', async (t) => {
  const upstream = await startFakeUpstream({ streamGateMs: 10_000 })
  t.teardown(upstream.close)
  const gw = await startTestGateway(baseConfig(upstream.url))
  t.teardown(gw.close)
  t.not(new URL(gw.adminUrl).port, new URL(gw.url).port)

  t.test('health and readiness', async (t) => {
    t.same((await send(`${gw.adminUrl}/healthz`)).json(), { status: 'ok' })
    const ready = await send(`${gw.adminUrl}/readyz`)
    t.equal(ready.status, 200)
  })

  t.test('admin paths are not reachable through the proxy port', async (t) => {
    for (const path of ['/healthz', '/readyz', '/metrics']) t.equal((await send(`${gw.url}${path}`)).status, 404, path)
  })

  t.test('metrics after traffic', async (t) => {
    const post = async (ip: string, model: string): Promise<number> => (await send(`${gw.url}/anthropic/v1/messages`, { body: JSON.stringify({ model }), headers: { 'content-type': 'application/json', 'x-forwarded-for': ip } })).status
    t.equal(await post('8.8.8.8', 'claude-sonnet-4-5'), 200)
    t.equal(await post('8.8.8.8', 'claude-sonnet-4-5'), 200)
    t.equal(await post('203.198.0.1', 'claude-sonnet-4-5'), 451)
    t.equal(await post('8.8.8.8', 'x'.repeat(40) + '-unmatched'), 451)
    const res = await send(`${gw.adminUrl}/metrics`)
    t.equal(res.status, 200)
    t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
    const text = res.body
    t.match(text, /geofence_decisions_total\{upstream="anthropic",rule="anthropic-frontier",action="allow",enforced="true",country="US"\} 2/)
    t.match(text, /geofence_decisions_total\{upstream="anthropic",rule="anthropic-frontier",action="block",enforced="true",country="HK"\} 1/)
    t.match(text, /geofence_decisions_total\{upstream="anthropic",rule="default",action="block",enforced="true",country="US"\} 1/)
    t.notMatch(text, /unmatched/, 'a client-written model never becomes a label')
    t.match(text, /geofence_geoip_cache_total\{result="hit"\} [1-9]/)
    t.match(text, /geofence_geoip_cache_total\{result="miss"\} [1-9]/)
    t.match(text, /geofence_geoip_lookup_errors_total 0/)
    t.match(text, /geofence_request_duration_seconds_count\{upstream="anthropic",action="allow"\} 2/)
    t.match(text, /geofence_upstream_duration_seconds_count\{upstream="anthropic"\} 2/)
    t.match(text, /geofence_inflight_requests 0/)
    t.match(text, /geofence_config_reloads_total\{result="success"\} 0/)
    t.match(text, new RegExp(`geofence_config_revision_info\\{revision="${gw.runtime.policy.revision}"\\} 1`))
    t.match(text, /geofence_geoip_database_build_timestamp_seconds\{database=".*geo-whois-asn-country\.mmdb"\} 17\d{8}/)
    t.match(text, /process_resident_memory_bytes \d+/, 'the default process metrics')
  })

  t.test('a request in flight is counted', async (t) => {
    const pending = send(`${gw.url}/anthropic/v1/messages`, { body: JSON.stringify({ model: 'claude-sonnet-4-5', stream: true }), headers: { 'content-type': 'application/json', 'x-forwarded-for': '8.8.8.8' } })
    while (!upstream.calls.some((c) => c.body.includes('"stream":true'))) await new Promise((resolve) => setTimeout(resolve, 10))
    t.match((await send(`${gw.adminUrl}/metrics`)).body, /geofence_inflight_requests 1/)
    upstream.releaseStream()
    t.equal((await pending).status, 200)
    t.match((await send(`${gw.adminUrl}/metrics`)).body, /geofence_inflight_requests 0/)
  })
})
