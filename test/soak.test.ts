// npm run soak in a tiny mode: the whole mix (allow, block, route, SSE, aborted streams, Realtime
// tunnels, reloads) through the built gateway, and the files it writes. Whether memory and
// descriptors stay flat is the soak's own verdict on a long run, not this test's.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'

t.test('a tiny soak writes every series, the plot, and one decision line per request', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'geofence-soak-test-'))
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/soak.ts', '--requests', '300', '--concurrency', '8', '--sample-every', '100', '--reload-every', '0.4', '--out', out, '--name', 'tiny'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  child.stdout.on('data', (c: Buffer) => { stdout += String(c) })
  child.stderr.on('data', (c: Buffer) => { stdout += String(c) })
  const [code] = await once(child, 'close') as [number | null]
  t.equal(code, 0, stdout)

  const result = JSON.parse(readFileSync(join(out, 'tiny.json'), 'utf8')) as {
    sent: Record<string, number>
    decisions: { lines: number, requests: number, matched: number, missing: number, duplicated: number, statuses: Record<string, number> }
    failures: Record<string, number>
    reloads: { written: number, applied: number, failed: number }
    series: Record<string, number[]>
    verdicts: Array<{ check: string, pass: boolean }>
  }
  t.same(Object.keys(result.series).sort(), ['eld_p99_ms', 'fds', 'heap_used_mb', 'requests', 'rss_mb', 't_s'])
  const length = result.series['t_s']?.length ?? 0
  t.ok(length >= 3, `samples were taken over time (${length})`)
  for (const [name, values] of Object.entries(result.series)) {
    t.equal(values.length, length, `${name}: one value per sample`)
    t.ok(values.every(Number.isFinite), `${name}: every value measured`)
  }
  t.ok((result.series['rss_mb']?.[0] ?? 0) > 10, 'RSS is the gateway\'s, in MiB')
  t.ok((result.series['fds']?.[0] ?? 0) > 5, 'descriptors are counted')
  t.equal(result.series['requests']?.at(-1), 300)

  t.same(result.sent, { allow: 120, block: 60, route: 45, sse: 45, aborted: 15, websocket: 15 }, 'every kind of the mix was sent')
  t.same(result.failures, {}, 'every request was answered as its kind expects')
  t.equal(result.decisions.requests, 300)
  t.equal(result.decisions.lines, 300, 'one decision line per request')
  t.equal(result.decisions.matched, 300, 'each decision id a client saw is on exactly one line')
  t.same(result.decisions.statuses, { 101: 15, 200: 210, 451: 60, 499: 15 }, 'tunnels log 101, aborted streams 499')
  t.ok(result.reloads.written >= 1, 'the config was rewritten')
  t.equal(result.reloads.failed, 0)
  for (const check of ['one decision line per request', 'each decision id on exactly one line', 'decision-line statuses match the answers']) {
    t.equal(result.verdicts.find((v) => v.check === check)?.pass, true, check)
  }

  t.ok(existsSync(join(out, 'tiny.svg')), 'the plot is written next to the JSON')
  const svg = readFileSync(join(out, 'tiny.svg'), 'utf8')
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
  t.equal(svg.match(/<polyline /g)?.length, 4, 'one line per series: RSS, heap, descriptors, event-loop delay')
  t.match(stdout, /\| one decision line per request \| 300 lines \| 300 lines \| PASS \|/, 'the table is printed with its verdicts')
})
