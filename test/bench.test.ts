// The benchmark harness cannot rot: `bench/run.ts --quick` runs every measurement on a tiny
// scale (its figures mean nothing, and none is asserted) and must print every figure with its
// target and PASS or MISS, and write the JSON and the plots.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'

t.setTimeout(240_000)

const TARGETS = ['allow_hot', 'allow_cold', 'block', 'body_1mib', 'latency_p99', 'sse_p99', 'sse_held', 'rss_rest', 'ready', 'rss_cache', 'cache_bounded']

t.test('npm run bench -- --quick writes every figure with its target', { timeout: 240_000 }, async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'geofence-bench-test-'))
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BENCH_')))
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--quick', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'], env })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => { stdout += String(c) })
  child.stderr.on('data', (c: Buffer) => { stderr += String(c) })
  const [status] = await once(child, 'close') as [number | null]
  t.equal(status, 0, stderr)

  const json = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as {
    mode: string, machine: string, targets: Array<{ id: string, figure: string, target: string, value: number, unit: string, pass: boolean }>
    bodies: Array<{ bytes: number, ratio: number }>, plots: string[], problems: string[]
  }
  t.equal(json.mode, 'quick')
  t.match(json.machine, /Node v\d+/)
  t.same(json.targets.map((x) => x.id), TARGETS, 'every target, in order')
  for (const x of json.targets) {
    t.ok(Number.isFinite(x.value), `${x.id}: a measured value`)
    t.type(x.pass, 'boolean', `${x.id}: pass or miss`)
    t.match(x.target, /^(?:[<>]=|0$)/, `${x.id}: a target`)
    // The printed table has the figure, its target and its result.
    t.match(stdout, new RegExp(`\\| ${x.figure.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\| ${x.target.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\| [-\\d.]+ ${x.unit} \\| (PASS|MISS) \\|`))
  }
  t.ok(json.bodies.some((b) => b.bytes === 1024) && json.bodies.some((b) => b.bytes === 1024 * 1024), 'the body curve has 1 KiB and 1 MiB')
  t.same(json.problems, [], 'every request was answered as expected')
  for (const plot of json.plots) t.match(readFileSync(join(out, plot), 'utf8'), /^<svg [^>]*>[\s\S]*<polyline[\s\S]*<\/svg>\n$/, `${plot} is a chart`)
})
