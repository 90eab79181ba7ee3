// npm run bench:ab -- OLD_CHECKOUT: the gateway built here against another build of it, in
// one run, so that a refactor can show it costs nothing. Both serve the same config from
// their own dist/ (OLD_CHECKOUT must hold a built dist/ and its node_modules), pinned in turn
// to the same core; rounds of the allow and block paths are interleaved, and the medians and
// their ratio (this build / the other) are printed and written to bench/results/ab.json.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import autocannon from 'autocannon'

const other = process.argv[2]
if (other === undefined) {
  console.error('usage: npm run bench:ab -- OLD_CHECKOUT   (a checkout of the other build, with dist/ and node_modules/)')
  process.exit(2)
}
const DURATION = Number(process.env['BENCH_DURATION'] ?? 5)
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 5)
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 32)
const PIN = os.cpus().length >= 2 && spawnSync('taskset', ['-p', '-c', '0', String(process.pid)]).status === 0
const children: ChildProcess[] = []
process.on('exit', () => { for (const c of children) c.kill('SIGKILL') })
const tmp = mkdtempSync(join(os.tmpdir(), 'geofence-ab-'))

async function firstLine (child: ChildProcess, match: (l: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (l) => { if (match(l)) resolve(l) })
    child.once('exit', (code) => { reject(new Error(`exited with ${String(code)}`)) })
  })
}

const upstreamChild = spawn(process.execPath, ['--import', 'tsx', 'bench/upstream.ts'], { stdio: ['ignore', 'pipe', 'inherit'] })
children.push(upstreamChild)
const upstreamPort = Number(await firstLine(upstreamChild, () => true))
const config = join(tmp, 'gateway.yaml')
writeFileSync(config, `
server: { host: 127.0.0.1, port: 0, body_limit: 32mb }
admin: { host: 127.0.0.1, port: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams:
  anthropic: { url: "http://127.0.0.1:${upstreamPort}", dialect: anthropic }
policy:
  default: block
  unknown_location: allow
  rules:
    - { name: frontier, upstreams: [anthropic], models: ["claude-*"], deny: [HK, CN, KP], action: block }
`)

/** A gateway from `checkout`'s dist/, on CPU 1, its decision lines to a file as in production. */
async function gateway (checkout: string): Promise<{ port: number, child: ChildProcess }> {
  const argv = [process.execPath, join(checkout, 'dist/cli.js'), 'serve', '--config', config]
  const [cmd, args] = PIN ? ['taskset', ['-c', '1', ...argv]] : [argv[0] ?? '', argv.slice(1)]
  const child = spawn(cmd, args, { cwd: checkout, stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(child)
  const line = await firstLine(child, (l) => l.includes('"msg":"listening"'))
  child.stdout?.resume()
  return { port: Number(new URL(JSON.parse(line).url as string).port), child }
}

async function rps (port: number, ip: string, expect: number): Promise<number> {
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: CONNECTIONS,
    duration: DURATION,
    requests: [{ method: 'POST', path: '/anthropic/v1/messages', body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 1 }), headers: { 'content-type': 'application/json', 'x-forwarded-for': ip } }],
  })
  const wrong = Object.entries(result.statusCodeStats ?? {}).filter(([code]) => Number(code) !== expect).reduce((n, [, v]) => n + (v as { count: number }).count, 0)
  if (wrong > 0 || result.errors > 0) throw new Error(`${wrong} answers other than ${expect}, ${result.errors} errors`)
  return result.requests.average
}

const builds = { this: resolve('.'), other: resolve(other) }
const samples: Record<string, number[]> = {}
for (let round = 0; round < ROUNDS; round++) {
  // Alternate which build goes first, so that neither always runs on a warmer machine.
  const order = round % 2 === 0 ? ['this', 'other'] as const : ['other', 'this'] as const
  for (const name of order) {
    const gw = await gateway(builds[name])
    await rps(gw.port, '8.8.8.8', 200) // warm-up
    for (const [path, ip, status] of [['allow', '8.8.8.8', 200], ['block', '114.114.114.114', 451]] as const) {
      const key = `${name} ${path}`
      ;(samples[key] ??= []).push(await rps(gw.port, ip, status))
    }
    gw.child.kill('SIGKILL')
  }
  console.error(`round ${round + 1}/${ROUNDS} done`)
}
const median = (v: number[]): number => { const s = [...v].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] ?? 0 }
const result = {
  machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}, pinned: ${PIN}`,
  other: builds.other,
  other_commit: spawnSync('git', ['-C', builds.other, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim(),
  this_commit: spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim(),
  rounds: ROUNDS,
  allow: { this: median(samples['this allow'] ?? []), other: median(samples['other allow'] ?? []) },
  block: { this: median(samples['this block'] ?? []), other: median(samples['other block'] ?? []) },
}
const ratio = (x: { this: number, other: number }): string => (x.this / x.other).toFixed(3)
console.log(`${result.machine}\nthis build (${result.this_commit}) / other (${result.other_commit}), medians of ${ROUNDS} interleaved rounds:`)
console.log(`allow: ${ratio(result.allow)} (${result.allow.this.toFixed(0)} / ${result.allow.other.toFixed(0)} req/s)`)
console.log(`block: ${ratio(result.block)} (${result.block.this.toFixed(0)} / ${result.block.other.toFixed(0)} req/s)`)
mkdirSync('bench/results', { recursive: true })
writeFileSync('bench/results/ab.json', `${JSON.stringify({ ...result, ratio: { allow: Number(ratio(result.allow)), block: Number(ratio(result.block)) } }, null, 2)}\n`)
process.exit(0)
