// npm run bench:ab -- OLD_CHECKOUT: the gateway built here against another build of it, in
// one run, so that a refactor can show it costs nothing. Both serve the same config from
// their own dist/ (OLD_CHECKOUT must hold a built dist/ and its node_modules), pinned in turn
// to the same core; rounds of the allow and block paths are interleaved, and the medians and
// their ratio (this build / the other) are printed and written to bench/results/ab.json, with
// each build's start to ready and its RSS at rest (1 s after ready, before any load).
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { resolve } from 'node:path'
import autocannon from 'autocannon'
import { PIN, gatewayConfig, median, rssMiB, startGateway, startScript, stop } from './children.js'

const other = process.argv[2]
if (other === undefined) {
  console.error('usage: npm run bench:ab -- OLD_CHECKOUT   (a checkout of the other build, with dist/ and node_modules/)')
  process.exit(2)
}
const DURATION = Number(process.env['BENCH_DURATION'] ?? 5)
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 5)
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 32)

const upstream = await startScript('bench/upstream.mjs', [], 0)
const config = gatewayConfig(upstream.port)

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
    const gw = await startGateway(builds[name], config)
    ;(samples[`${name} ready`] ??= []).push(gw.readyMs)
    await new Promise((resolve) => setTimeout(resolve, 1000))
    ;(samples[`${name} rss`] ??= []).push(rssMiB(gw.child.pid))
    await rps(gw.port, '8.8.8.8', 200) // warm-up
    for (const [path, ip, status] of [['allow', '8.8.8.8', 200], ['block', '114.114.114.114', 451]] as const) {
      const key = `${name} ${path}`
      ;(samples[key] ??= []).push(await rps(gw.port, ip, status))
    }
    await stop(gw)
  }
  console.error(`round ${round + 1}/${ROUNDS} done`)
}
const result = {
  machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}, pinned: ${PIN}`,
  other: builds.other,
  other_commit: spawnSync('git', ['-C', builds.other, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim(),
  this_commit: spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim(),
  rounds: ROUNDS,
  allow: { this: median(samples['this allow'] ?? []), other: median(samples['other allow'] ?? []) },
  block: { this: median(samples['this block'] ?? []), other: median(samples['other block'] ?? []) },
  ready_ms: { this: median(samples['this ready'] ?? []), other: median(samples['other ready'] ?? []) },
  rss_at_rest_mib: { this: median(samples['this rss'] ?? []), other: median(samples['other rss'] ?? []) },
}
const ratio = (x: { this: number, other: number }): string => (x.this / x.other).toFixed(3)
console.log(`${result.machine}\nthis build (${result.this_commit}) / other (${result.other_commit}), medians of ${ROUNDS} interleaved rounds:`)
console.log(`allow: ${ratio(result.allow)} (${result.allow.this.toFixed(0)} / ${result.allow.other.toFixed(0)} req/s)`)
console.log(`block: ${ratio(result.block)} (${result.block.this.toFixed(0)} / ${result.block.other.toFixed(0)} req/s)`)
console.log(`start to ready: ${ratio(result.ready_ms)} (${result.ready_ms.this.toFixed(0)} / ${result.ready_ms.other.toFixed(0)} ms)`)
console.log(`RSS at rest (1 s after ready): ${ratio(result.rss_at_rest_mib)} (${result.rss_at_rest_mib.this.toFixed(1)} / ${result.rss_at_rest_mib.other.toFixed(1)} MiB)`)
mkdirSync('bench/results', { recursive: true })
writeFileSync('bench/results/ab.json', `${JSON.stringify({ ...result, ratio: { allow: Number(ratio(result.allow)), block: Number(ratio(result.block)), ready_ms: Number(ratio(result.ready_ms)), rss_at_rest_mib: Number(ratio(result.rss_at_rest_mib)) } }, null, 2)}\n`)
process.exit(0)
