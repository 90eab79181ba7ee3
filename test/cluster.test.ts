// server.workers: N processes share the proxy port; the primary serves health, readiness and
// the workers' metrics added up, and passes signals on.
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import t from 'tap'
import { startFakeUpstream } from './support/fake-upstream.js'
import { writeConfig } from './support/gateway.js'
import { send } from './support/http.js'

t.test('two workers behind one port', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const file = writeConfig(`
server: { host: 127.0.0.1, port: 0, workers: 2 }
admin: { host: 127.0.0.1, port: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams: { anthropic: { url: "${upstream.url}", dialect: anthropic } }
policy: { rules: [ { name: frontier, models: ["claude-*"], deny: [HK], action: block } ] }
`)
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const lines: Array<Record<string, unknown>> = []
  createInterface({ input: child.stdout }).on('line', (l) => { lines.push(JSON.parse(l) as Record<string, unknown>) })
  const waitFor = async (what: string, cond: () => boolean): Promise<void> => {
    for (let i = 0; i < 600 && !cond(); i++) await new Promise((resolve) => setTimeout(resolve, 50))
    if (!cond()) throw new Error(`timed out waiting for ${what}`)
  }
  await waitFor('two workers', () => lines.filter((l) => l['msg'] === 'listening').length === 2)
  const admin = String(lines.find((l) => l['msg'] === 'primary started')?.['admin'])
  const urls = new Set(lines.filter((l) => l['msg'] === 'listening').map((l) => l['url']))
  t.equal(urls.size, 1, 'both workers listen on the same port')
  const url = [...urls][0] as string
  await waitFor('readiness', () => true)
  let ready = await send(`${admin}/readyz`)
  for (let i = 0; i < 100 && ready.status !== 200; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    ready = await send(`${admin}/readyz`)
  }
  t.same(ready.json(), { status: 'ready', workers_ready: 2, workers: 2 })
  const pids = new Set<unknown>()
  for (let i = 0; i < 20; i++) {
    const res = await send(`${url}/anthropic/v1/messages`, { body: '{"model":"claude-sonnet-4-5"}', headers: { 'content-type': 'application/json', 'x-forwarded-for': i % 2 === 0 ? '8.8.8.8' : '203.198.0.1' } })
    t.equal(res.status, i % 2 === 0 ? 200 : 451)
  }
  await waitFor('20 decision lines', () => lines.filter((l) => l['msg'] === 'decision').length === 20)
  for (const l of lines.filter((x) => x['msg'] === 'decision')) pids.add(l['pid'])
  t.equal(pids.size, 2, 'both workers served requests')
  const metrics = (await send(`${admin}/metrics`)).body
  t.match(metrics, /geofence_decisions_total\{upstream="anthropic",rule="frontier",action="allow",enforced="true",country="US"\} 10/, 'the workers\' counts are added up')
  t.match(metrics, /geofence_decisions_total\{upstream="anthropic",rule="frontier",action="block",enforced="true",country="HK"\} 10/)
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  t.equal(await exited, 0)
})
