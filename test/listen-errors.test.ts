// A listener that cannot be opened is one line a person can act on (the setting, the address,
// the cause) and exit status 2, never a stack trace.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import t from 'tap'
import { writeConfig } from './support/gateway.js'

async function serve (file: string): Promise<{ status: number | null, stderr: string }> {
  const child = spawn(process.execPath, ['dist/cli.js', 'serve', '--config', file], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => { stderr += String(c) })
  const [status] = await once(child, 'close') as [number | null]
  return { status, stderr }
}

t.test('a port in use: the setting, the address and the cause, exit 2', async (t) => {
  const taken = net.createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { taken.close() })
  const port = (taken.address() as net.AddressInfo).port
  const upstreams = 'upstreams:\n  anthropic: { url: "http://127.0.0.1:1", dialect: anthropic }\npolicy:\n  rules: []\n'
  for (const [setting, yaml] of [
    ['server', `server: { host: 127.0.0.1, port: ${port} }\nadmin: { host: 127.0.0.1, port: 0 }\n${upstreams}`],
    ['admin', `server: { host: 127.0.0.1, port: 0 }\nadmin: { host: 127.0.0.1, port: ${port} }\n${upstreams}`],
  ] as const) {
    const r = await serve(writeConfig(yaml))
    t.equal(r.status, 2, `${setting}: exit 2`)
    t.equal(r.stderr, `geofence: ${setting}.host/${setting}.port: cannot listen on 127.0.0.1:${port}: the port is already in use (another gateway, or another program); nothing was started.\n`, `${setting}: one line`)
  }
})
