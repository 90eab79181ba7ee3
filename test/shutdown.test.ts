// Graceful shutdown of a real `geofence serve`: readiness turns false, the listener stops
// accepting, a stream in flight finishes, the exit status is 0; past the grace, what is left
// is cut and logged.
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import t, { type Test } from 'tap'
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js'
import { writeConfig } from './support/gateway.js'
import { send } from './support/http.js'

async function serve (t: Test, upstream: FakeUpstream, grace: string): Promise<{ child: ChildProcess, lines: Array<Record<string, unknown>>, url: string, admin: string }> {
  const file = writeConfig(`
server: { host: 127.0.0.1, port: 0, shutdown_grace: ${grace} }
admin: { host: 127.0.0.1, port: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams: { anthropic: { url: "${upstream.url}", dialect: anthropic } }
policy: { rules: [ { name: r, deny: [CN], action: block } ] }
`)
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const lines: Array<Record<string, unknown>> = []
  const listening = new Promise<Record<string, unknown>>((resolve) => {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      const entry = JSON.parse(l) as Record<string, unknown>
      lines.push(entry)
      if (entry['msg'] === 'listening') resolve(entry)
    })
  })
  const entry = await listening
  return { child, lines, url: String(entry['url']), admin: String(entry['admin']) }
}

const stream = (url: string): ReturnType<typeof send> =>
  send(`${url}/anthropic/v1/messages`, { body: JSON.stringify({ model: 'claude-sonnet-4-5', stream: true }), headers: { 'content-type': 'application/json', 'x-forwarded-for': '8.8.8.8' } })

async function streamStarted (upstream: FakeUpstream, count: number): Promise<void> {
  while (upstream.calls.length < count) await new Promise((resolve) => setTimeout(resolve, 10))
}

t.test('SIGTERM drains: readiness false, no new connections, the stream in flight finishes, exit 0', async (t) => {
  const upstream = await startFakeUpstream({ streamGateMs: 10_000 })
  t.teardown(upstream.close)
  const { child, url, admin } = await serve(t, upstream, '10s')
  t.equal((await send(`${admin}/readyz`)).status, 200)
  const inflight = stream(url)
  await streamStarted(upstream, 1)
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  let ready = 200
  for (let i = 0; i < 100 && ready === 200; i++) {
    ready = (await send(`${admin}/readyz`)).status
    if (ready === 200) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.equal(ready, 503, 'readiness turns false while draining')
  const refused = await send(`${url}/anthropic/v1/messages`, { body: '{"model":"m"}' }).then(() => 'answered', (e: NodeJS.ErrnoException) => e.code)
  t.equal(refused, 'ECONNREFUSED', 'the listener no longer accepts')
  upstream.releaseStream()
  const res = await inflight
  t.equal(res.status, 200)
  t.match(res.body, /event: message_stop/, 'the stream finished')
  t.equal(await exited, 0)
})

t.test('past shutdown_grace, streams still open are cut and logged; exit 0', async (t) => {
  const upstream = await startFakeUpstream({ streamGateMs: 20_000 })
  t.teardown(upstream.close)
  const { child, lines, url } = await serve(t, upstream, '300ms')
  const inflight = stream(url).then((r) => r.body, (e: Error) => `error: ${e.message}`)
  await streamStarted(upstream, 1)
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  const started = Date.now()
  child.kill('SIGTERM')
  t.equal(await exited, 0)
  t.ok(Date.now() - started < 10_000, 'it did not wait for the stream')
  t.notMatch(await inflight, /message_stop/, 'the stream was cut')
  t.ok(lines.some((l) => l['msg'] === 'shutdown grace over: cutting the requests still in flight' && l['requests'] === 1))
  t.ok(lines.some((l) => l['msg'] === 'decision' && typeof l['cut'] === 'string'), 'the cut request has its decision line')
})
