// npm run bench [-- --quick | --long] [--publish]: one run, one machine, every figure of the
// gateway's performance targets beside a bare Fastify + @fastify/http-proxy proxy serving the
// same fake upstream, so that each figure is a ratio (or a difference) measured in one run.
// Rounds of the gateway and the bare proxy are interleaved and each figure is a median over
// rounds. It prints every figure with its target and PASS or MISS, writes
// bench/results/latest.json and the plots (SVG) beside it; --publish copies them to
// bench/plots/ for the README. --quick is a smoke run (seconds; its figures mean nothing),
// --long runs longer and more rounds.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { PIN, gatewayConfig, median, percentile, rssMiB, runScript, startGateway, startScript, stop, type Child } from './children.js'
import { lineChart } from './plot.js'

const { values: flags } = parseArgs({ options: { quick: { type: 'boolean' }, long: { type: 'boolean' }, publish: { type: 'boolean' }, out: { type: 'string' } } })
const mode = flags.quick === true ? 'quick' : flags.long === true ? 'long' : 'default'
const pick = <T>(quick: T, dflt: T, long: T): T => (mode === 'quick' ? quick : mode === 'long' ? long : dflt)
const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback)
const S = {
  duration: env('BENCH_DURATION', pick(0.5, 3, 8)),
  rounds: env('BENCH_ROUNDS', pick(1, 3, 7)),
  connections: env('BENCH_CONNECTIONS', 32),
  bodyDuration: env('BENCH_BODY_DURATION', pick(0.5, 2, 5)),
  bodySizes: pick([1024, 1024 ** 2], [1024, 16 * 1024, 128 * 1024, 1024 ** 2, 4 * 1024 ** 2, 10 * 1024 ** 2], [1024, 4096, 16 * 1024, 64 * 1024, 256 * 1024, 1024 ** 2, 4 * 1024 ** 2, 10 * 1024 ** 2]),
  rate: env('BENCH_RATE', pick(200, 1000, 1000)),
  rateSeconds: env('BENCH_RATE_SECONDS', pick(0.5, 4, 10)),
  streams: env('BENCH_STREAMS', pick(2, 8, 20)),
  sseEvents: env('BENCH_SSE_EVENTS', pick(10, 100, 100)),
  sseIntervalMs: 10,
  starts: env('BENCH_STARTS', pick(1, 5, 9)),
  cacheEntries: pick(10_000, 100_000, 100_000),
  restMs: pick(200, 1000, 2000),
}
const OUT = resolve(flags.out ?? 'bench/results')
const checkout = resolve('.')

// ---------------------------------------------------------------------------------------------
// Load: autocannon for throughput (saturating), a constant-rate generator of our own for latency.

const small = JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'Hello, how are you today?' }] })
const openModel = small.replace('claude-sonnet-4-5', 'open-model')
/** A JSON request of exactly `bytes` bytes: one message whose content pads it. */
const padded = (bytes: number): string => {
  const head = '{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"'
  return `${head}${'x'.repeat(Math.max(0, bytes - head.length - 4))}"}]}`
}
const hotPool = Array.from({ length: 300 }, (_, i) => `8.8.${i >> 8}.${i & 255}`)
let hot = 0
const nextHot = (): Record<string, string> => ({ 'x-forwarded-for': hotPool[hot++ % hotPool.length] ?? '' })
let cold = 0x0b000000 // 11.0.0.0 onwards: public addresses, each request a new one
const nextCold = (): Record<string, string> => {
  cold += 7919
  return { 'x-forwarded-for': `${(cold >>> 24) & 255}.${(cold >>> 16) & 255}.${(cold >>> 8) & 255}.${cold & 255}` }
}

interface Load { rps: number, wrong: number }
const problems: string[] = []

async function throughput (label: string, port: number, path: string, opts: { body: string, headers?: () => Record<string, string>, connections?: number, duration?: number, expect?: number }): Promise<Load> {
  const makeHeaders = opts.headers
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: opts.connections ?? S.connections,
    duration: opts.duration ?? S.duration,
    requests: [{
      method: 'POST',
      path,
      body: opts.body,
      headers: { 'content-type': 'application/json', ...(makeHeaders?.() ?? {}) },
      ...(makeHeaders === undefined ? {} : { setupRequest: (req: autocannon.Request) => ({ ...req, headers: { ...req.headers, ...makeHeaders() } }) }),
    }],
  })
  const expect = opts.expect ?? 200
  const wrong = Object.entries(result.statusCodeStats ?? {}).filter(([code]) => Number(code) !== expect).reduce((n, [, v]) => n + (v as { count: number }).count, 0) + result.errors + result.timeouts
  if (wrong > 0) problems.push(`${label}: ${wrong} answers other than ${expect} or errors`)
  return { rps: result.requests.average, wrong }
}

/**
 * `rate` requests a second for `seconds`, open loop: each request is sent when it is due
 * (process.hrtime.bigint()), whether or not earlier ones have been answered, over keep-alive
 * connections; each latency is from its send to its response's end, in microseconds.
 */
async function fixedRate (port: number, path: string, body: string, headers: () => Record<string, string>, rate: number, seconds: number): Promise<{ us: number[], wrong: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 })
  const total = Math.round(rate * seconds)
  const us: number[] = []
  let wrong = 0
  let sent = 0
  let done = 0
  const t0 = process.hrtime.bigint()
  const interval = 1e9 / rate
  await new Promise<void>((resolve) => {
    const one = (): void => {
      const started = process.hrtime.bigint()
      const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers() } }, (res) => {
        res.resume()
        res.on('end', () => {
          us.push(Number(process.hrtime.bigint() - started) / 1e3)
          if (res.statusCode !== 200) wrong++
          if (++done === total) resolve()
        })
      })
      req.on('error', () => { wrong++; if (++done === total) resolve() })
      req.end(body)
    }
    const tick = (): void => {
      const due = Math.min(total, Math.floor(Number(process.hrtime.bigint() - t0) / interval) + 1)
      while (sent < due) { sent++; one() }
      if (sent < total) setTimeout(tick, 1)
    }
    tick()
  })
  agent.destroy()
  return { us, wrong }
}

interface StreamStats { delaysUs: number[], events: number, coalescedReads: number, held: number }

/**
 * `count` SSE streams through `port`, two at a time. Each event carries the monotonic time at
 * which the upstream wrote it; its delay is the time until it is read here. A read holding more
 * than one event is coalescing; an event that arrives after the next one was due is held.
 */
async function sse (port: number, path: string, count: number): Promise<StreamStats> {
  const stats: StreamStats = { delaysUs: [], events: 0, coalescedReads: 0, held: 0 }
  const body = JSON.stringify({ model: 'claude-sonnet-4-5', stream: true, max_tokens: 100 })
  const agent = new http.Agent({ keepAlive: true })
  const one = async (): Promise<void> => new Promise<void>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'x-forwarded-for': '8.8.8.8' } }, (res) => {
      let buffered = ''
      res.on('data', (chunk: Buffer) => {
        const at = process.hrtime.bigint()
        buffered += chunk.toString()
        const parts = buffered.split('\n\n')
        buffered = parts.pop() ?? ''
        const events = parts.filter((p) => p.includes('data: '))
        if (events.length > 1) stats.coalescedReads++
        for (const e of events) {
          const t = /"t":"(\d+)"/.exec(e)
          if (t === null) continue
          const delay = Number(at - BigInt(t[1] ?? '0')) / 1e3
          stats.delaysUs.push(delay)
          if (delay >= S.sseIntervalMs * 1e3) stats.held++
          stats.events++
        }
      })
      res.on('end', resolve)
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
  for (let i = 0; i < count; i += 2) await Promise.all([one(), ...(i + 1 < count ? [one()] : [])])
  agent.destroy()
  return stats
}

const sleep = async (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

// ---------------------------------------------------------------------------------------------
const machine = `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}`
const say = (line: string): void => { console.error(line) }
say(`llm-geofence benchmark (${mode}): ${machine}; ${PIN ? 'servers under test pinned to CPU 1, load and upstream on CPU 0' : 'not pinned'}`)
const startedAt = Date.now()

const upstream = await startScript('bench/upstream.mjs', [], 0, { BENCH_SSE_EVENTS: String(S.sseEvents), BENCH_SSE_INTERVAL: String(S.sseIntervalMs) })
const config = gatewayConfig(upstream.port, { cacheEntries: S.cacheEntries })
const BARE_PATH = '/anthropic/v1/messages'
const GW_PATH = '/anthropic/v1/messages'

// 1. Footprint first, on a quiet machine: start to ready and RSS at rest, interleaved starts.
// At rest: started, 50 requests served (so that both have warmed the same paths), then idle (1 s).
const footprint = { bare: { readyMs: [] as number[], rssMiB: [] as number[] }, gateway: { readyMs: [] as number[], rssMiB: [] as number[] }, node: { rssMiB: [] as number[] } }
const atRest = async (c: Child, path: string): Promise<number> => {
  for (let i = 0; i < 50; i++) await fetch(`http://127.0.0.1:${c.port}${path}`, { method: 'POST', body: small, headers: { 'content-type': 'application/json', 'x-forwarded-for': '8.8.8.8' } }).then(async (r) => r.arrayBuffer())
  await sleep(S.restMs)
  return rssMiB(c.child.pid)
}
for (let i = 0; i < S.starts; i++) {
  const bare = await startScript('bench/bare-proxy.mjs', [`http://127.0.0.1:${upstream.port}`], 1)
  footprint.bare.readyMs.push(bare.readyMs)
  footprint.bare.rssMiB.push(await atRest(bare, BARE_PATH))
  await stop(bare)
  const gw = await startGateway(checkout, config)
  footprint.gateway.readyMs.push(gw.readyMs)
  footprint.gateway.rssMiB.push(await atRest(gw, GW_PATH))
  await stop(gw)
}
// Node itself, for reference: an idle process that has printed a line.
{
  const idle = await startScript('bench/idle.mjs', [], 1)
  await sleep(500)
  footprint.node.rssMiB.push(rssMiB(idle.child.pid))
  await stop(idle)
}
say(`  footprint: ready ${median(footprint.gateway.readyMs).toFixed(0)} ms (bare ${median(footprint.bare.readyMs).toFixed(0)} ms), RSS at rest ${median(footprint.gateway.rssMiB).toFixed(1)} MiB (bare ${median(footprint.bare.rssMiB).toFixed(1)} MiB)`)

// The memory of a full location cache, in a whole gateway of its own.
const cache = JSON.parse((await runScript('bench/cache-rss.mjs', [config, String(S.cacheEntries)], 1, ['--expose-gc'])).trim().split('\n').pop() ?? '{}') as { start: number, full: number, after10x: number, entries: number, fullSize: number, cacheSize: number }
say(`  cache: ${cache.full.toFixed(1)} MiB with ${cache.fullSize} entries`)

// 2. Throughput, interleaved rounds.
const bare = await startScript('bench/bare-proxy.mjs', [`http://127.0.0.1:${upstream.port}`], 1)
const gateway = await startGateway(checkout, config)
const warm = async (port: number, path: string, headers?: () => Record<string, string>): Promise<void> => {
  await throughput('warm-up', port, path, { body: small, headers, connections: 8, duration: Math.min(1, S.duration) })
}
await warm(bare.port, BARE_PATH)
await warm(gateway.port, GW_PATH, nextHot)

const scenarios = {
  upstream: async () => throughput('upstream', upstream.port, '/v1/messages', { body: small }),
  bare: async () => throughput('bare', bare.port, BARE_PATH, { body: small }),
  allowHot: async () => throughput('allow, cache-hot', gateway.port, GW_PATH, { body: small, headers: nextHot }),
  allowCold: async () => throughput('allow, cache-cold', gateway.port, GW_PATH, { body: openModel, headers: nextCold }),
  block: async () => throughput('block', gateway.port, GW_PATH, { body: small, headers: () => ({ 'x-forwarded-for': '203.198.0.1' }), expect: 451 }),
}
type Scenario = keyof typeof scenarios
const rps: Record<Scenario, number[]> = { upstream: [], bare: [], allowHot: [], allowCold: [], block: [] }
for (let round = 0; round < S.rounds; round++) {
  for (const name of Object.keys(scenarios) as Scenario[]) rps[name].push((await scenarios[name]()).rps)
  say(`  round ${round + 1}/${S.rounds}: ${(Object.keys(rps) as Scenario[]).map((k) => `${k} ${(rps[k][round] ?? 0).toFixed(0)}`).join(', ')} req/s`)
}
const med = Object.fromEntries((Object.keys(rps) as Scenario[]).map((k) => [k, median(rps[k])])) as Record<Scenario, number>

// 3. Bodies from 1 KiB to 10 MiB: the bare proxy and the gateway with the same body, interleaved.
const bodies: Array<{ bytes: number, bare: number, gateway: number, ratio: number, addedUsPerRequest: number }> = []
for (const bytes of S.bodySizes) {
  const body = padded(bytes)
  const connections = bytes >= 4 * 1024 ** 2 ? 4 : 8
  const b: number[] = []
  const g: number[] = []
  for (let round = 0; round < S.rounds; round++) {
    b.push((await throughput(`bare, ${bytes} B`, bare.port, BARE_PATH, { body, connections, duration: S.bodyDuration })).rps)
    g.push((await throughput(`gateway, ${bytes} B`, gateway.port, GW_PATH, { body, connections, duration: S.bodyDuration, headers: () => ({ 'x-forwarded-for': '8.8.8.8' }) })).rps)
  }
  const row = { bytes, bare: median(b), gateway: median(g), ratio: median(g) / median(b), addedUsPerRequest: 1e6 / median(g) - 1e6 / median(b) }
  bodies.push(row)
  say(`  body ${bytes} B: ${row.ratio.toFixed(2)} x bare (${row.gateway.toFixed(0)} / ${row.bare.toFixed(0)} req/s), ${row.addedUsPerRequest.toFixed(0)} us added per request`)
}

// 4. Latency at a fixed rate, interleaved rounds; each round's p99 compared with its pair's.
const lat = { bare: { p50: [] as number[], p99: [] as number[], p999: [] as number[] }, gateway: { p50: [] as number[], p99: [] as number[], p999: [] as number[] }, addedP99Us: [] as number[] }
let latencySample: { bare: number[], gateway: number[] } = { bare: [], gateway: [] }
for (let round = 0; round < S.rounds; round++) {
  const b = await fixedRate(bare.port, BARE_PATH, small, () => ({}), S.rate, S.rateSeconds)
  const g = await fixedRate(gateway.port, GW_PATH, small, nextHot, S.rate, S.rateSeconds)
  if (b.wrong + g.wrong > 0) problems.push(`fixed rate: ${b.wrong} bare, ${g.wrong} gateway answers other than 200`)
  for (const [k, r] of [['bare', b], ['gateway', g]] as const) {
    lat[k].p50.push(percentile(r.us, 50))
    lat[k].p99.push(percentile(r.us, 99))
    lat[k].p999.push(percentile(r.us, 99.9))
  }
  lat.addedP99Us.push(percentile(g.us, 99) - percentile(b.us, 99))
  if (round === 0) latencySample = { bare: b.us, gateway: g.us }
  say(`  ${S.rate} req/s round ${round + 1}: p99 ${percentile(g.us, 99).toFixed(0)} us gateway, ${percentile(b.us, 99).toFixed(0)} us bare`)
}

// 5. SSE, interleaved rounds: the delay each event takes to arrive, through each.
const sseRuns = { direct: [] as StreamStats[], bare: [] as StreamStats[], gateway: [] as StreamStats[], addedP99Us: [] as number[] }
for (let round = 0; round < S.rounds; round++) {
  const d = await sse(upstream.port, '/v1/messages', S.streams)
  const b = await sse(bare.port, BARE_PATH, S.streams)
  const g = await sse(gateway.port, GW_PATH, S.streams)
  sseRuns.direct.push(d)
  sseRuns.bare.push(b)
  sseRuns.gateway.push(g)
  sseRuns.addedP99Us.push(percentile(g.delaysUs, 99) - percentile(b.delaysUs, 99))
  say(`  SSE round ${round + 1}: p99 per event ${percentile(g.delaysUs, 99).toFixed(0)} us gateway, ${percentile(b.delaysUs, 99).toFixed(0)} us bare, ${percentile(d.delaysUs, 99).toFixed(0)} us direct`)
}
const sseSum = (runs: StreamStats[]): { events: number, coalescedReads: number, held: number, p50Us: number, p99Us: number } => ({
  events: runs.reduce((n, r) => n + r.events, 0),
  coalescedReads: runs.reduce((n, r) => n + r.coalescedReads, 0),
  held: runs.reduce((n, r) => n + r.held, 0),
  p50Us: median(runs.map((r) => percentile(r.delaysUs, 50))),
  p99Us: median(runs.map((r) => percentile(r.delaysUs, 99))),
})
const sseOut = { direct: sseSum(sseRuns.direct), bare: sseSum(sseRuns.bare), gateway: sseSum(sseRuns.gateway), expectedEvents: S.rounds * S.streams * S.sseEvents, addedP99Us: median(sseRuns.addedP99Us) }

await stop(gateway)
await stop(bare)
await stop(upstream)

// ---------------------------------------------------------------------------------------------
const MB150_IN_MIB = 150e6 / 1024 ** 2
const oneMiB = bodies.find((b) => b.bytes === 1024 ** 2)
const fp = {
  bare: { readyMs: median(footprint.bare.readyMs), rssMiB: median(footprint.bare.rssMiB) },
  gateway: { readyMs: median(footprint.gateway.readyMs), rssMiB: median(footprint.gateway.rssMiB) },
  node: { rssMiB: median(footprint.node.rssMiB) },
}
interface Target { id: string, figure: string, target: string, value: number, unit: string, pass: boolean }
const t = (id: string, figure: string, target: string, value: number, unit: string, pass: boolean): Target => ({ id, figure, target, value, unit, pass })
const targets: Target[] = [
  t('allow_hot', 'allow path, cache-hot (300 callers), req/s vs the bare proxy', '>= 0.90 x', med.allowHot / med.bare, 'x', med.allowHot / med.bare >= 0.9),
  t('allow_cold', 'allow path, cache-cold (a new caller every request), req/s vs the bare proxy', '>= 0.80 x', med.allowCold / med.bare, 'x', med.allowCold / med.bare >= 0.8),
  t('block', 'block path (451), req/s vs the allow path', '>= 2 x', med.block / med.allowHot, 'x', med.block / med.allowHot >= 2),
  t('body_1mib', '1 MiB JSON body, req/s vs the bare proxy with the same body', '>= 0.80 x', oneMiB?.ratio ?? 0, 'x', (oneMiB?.ratio ?? 0) >= 0.8),
  t('latency_p99', `p99 latency added over the bare proxy at ${S.rate} req/s`, '<= 1 ms', median(lat.addedP99Us) / 1e3, 'ms', median(lat.addedP99Us) <= 1000),
  t('sse_p99', 'SSE: delay added per event over the bare proxy, p99', '<= 0.3 ms', sseOut.addedP99Us / 1e3, 'ms', sseOut.addedP99Us <= 300),
  t('sse_held', 'SSE: events held (arrived after the next was due) or coalesced (two in one read), or missing', '0', sseOut.gateway.held + sseOut.gateway.coalescedReads + Math.abs(sseOut.expectedEvents - sseOut.gateway.events), 'events', sseOut.gateway.held + sseOut.gateway.coalescedReads === 0 && sseOut.gateway.events === sseOut.expectedEvents),
  t('rss_rest', 'RSS at rest with the embedded database, vs the bare proxy', '<= 1.00 x', fp.gateway.rssMiB / fp.bare.rssMiB, 'x', fp.gateway.rssMiB <= fp.bare.rssMiB),
  t('ready', 'start to ready (spawn to listening)', '<= 300 ms', fp.gateway.readyMs, 'ms', fp.gateway.readyMs <= 300),
  t('rss_cache', `RSS with a full ${S.cacheEntries.toLocaleString('en')}-entry location cache`, '<= 150 MB', cache.full * 1024 ** 2 / 1e6, 'MB', cache.full <= MB150_IN_MIB),
  t('cache_bounded', 'RSS after 10 x as many callers, vs with the cache full', '<= 1.10 x', cache.after10x / cache.full, 'x', cache.after10x / cache.full <= 1.1),
]

const f = (n: number, d = 2): string => n.toFixed(d)
const lines = [
  `Machine: ${machine}`,
  `Mode: ${mode}; ${S.rounds} interleaved rounds, ${S.duration} s each (bodies ${S.bodyDuration} s), ${S.connections} connections; ${PIN ? 'servers under test alone on CPU 1, load generator and upstream on CPU 0' : 'not pinned'}.`,
  '',
  '| figure | target | measured | result |',
  '|---|---|---:|---|',
  ...targets.map((x) => `| ${x.figure} | ${x.target} | ${f(x.value)} ${x.unit} | ${x.pass ? 'PASS' : 'MISS'} |`),
  '',
  `Throughput (median req/s): upstream ${f(med.upstream, 0)}, bare proxy ${f(med.bare, 0)}, allow hot ${f(med.allowHot, 0)}, allow cold ${f(med.allowCold, 0)}, block ${f(med.block, 0)}.`,
  `Bodies (gateway / bare, us added per request): ${bodies.map((b) => `${b.bytes >= 1024 ** 2 ? `${b.bytes / 1024 ** 2} MiB` : `${b.bytes / 1024} KiB`} ${f(b.ratio)} (${f(b.addedUsPerRequest, 0)})`).join(', ')}.`,
  `At ${S.rate} req/s (medians of rounds, us): bare p50/p99/p99.9 ${f(median(lat.bare.p50), 0)}/${f(median(lat.bare.p99), 0)}/${f(median(lat.bare.p999), 0)}, gateway ${f(median(lat.gateway.p50), 0)}/${f(median(lat.gateway.p99), 0)}/${f(median(lat.gateway.p999), 0)}.`,
  `SSE per event (p50/p99 us): direct ${f(sseOut.direct.p50Us, 0)}/${f(sseOut.direct.p99Us, 0)}, bare ${f(sseOut.bare.p50Us, 0)}/${f(sseOut.bare.p99Us, 0)}, gateway ${f(sseOut.gateway.p50Us, 0)}/${f(sseOut.gateway.p99Us, 0)}; ${sseOut.gateway.events}/${sseOut.expectedEvents} events, ${sseOut.gateway.held} held, ${sseOut.gateway.coalescedReads} coalesced reads.`,
  `Footprint (medians of ${S.starts} starts): ready ${f(fp.gateway.readyMs, 0)} ms (bare ${f(fp.bare.readyMs, 0)} ms); RSS at rest ${f(fp.gateway.rssMiB, 1)} MiB (bare ${f(fp.bare.rssMiB, 1)} MiB, node alone ${f(fp.node.rssMiB, 1)} MiB); full cache ${f(cache.full, 1)} MiB (${cache.fullSize} entries), after 10 x ${f(cache.after10x, 1)} MiB.`,
  ...(problems.length === 0 ? [] : ['', `Unexpected answers: ${problems.join('; ')}`]),
  `(${((Date.now() - startedAt) / 1000).toFixed(0)} s)`,
]
process.stdout.write(`${lines.join('\n')}\n`)

mkdirSync(OUT, { recursive: true })
const size = (b: number): string => (b >= 1024 ** 2 ? `${b / 1024 ** 2} MiB` : `${b / 1024} KiB`)
const plots = {
  'body-cost.svg': lineChart({
    title: 'Request body size: the gateway vs the bare proxy (same body)',
    xLabel: 'JSON body size',
    yLabel: 'req/s, gateway / bare proxy',
    logX: true,
    xTick: size,
    series: [{ name: 'gateway / bare', points: bodies.map((b) => [b.bytes, b.ratio] as const) }],
    target: { y: 0.8, label: 'target 0.80 at 1 MiB' },
  }),
  'body-added.svg': lineChart({
    title: 'Time added per request by the gateway, by body size',
    xLabel: 'JSON body size',
    yLabel: 'ms added per request (1/req/s)',
    logX: true,
    xTick: size,
    series: [{ name: 'gateway - bare', points: bodies.map((b) => [b.bytes, b.addedUsPerRequest / 1e3] as const) }],
  }),
  'latency.svg': lineChart({
    title: `Latency at ${S.rate} req/s (first round), by percentile`,
    xLabel: 'percentile',
    yLabel: 'latency, ms',
    series: (['bare', 'gateway'] as const).map((k) => ({ name: k === 'bare' ? 'bare proxy' : 'gateway', points: [50, 75, 90, 95, 99, 99.9].map((p) => [p, percentile(latencySample[k], p) / 1e3] as const) })),
  }),
}
for (const [name, svg] of Object.entries(plots)) writeFileSync(`${OUT}/${name}`, svg)
const json = {
  date: new Date().toISOString(),
  machine,
  mode,
  pinned: PIN,
  settings: S,
  throughput: { medians: med, rounds: rps },
  bodies,
  latency: { rate: S.rate, unit: 'us', bare: { p50: median(lat.bare.p50), p99: median(lat.bare.p99), p999: median(lat.bare.p999) }, gateway: { p50: median(lat.gateway.p50), p99: median(lat.gateway.p99), p999: median(lat.gateway.p999) }, addedP99Rounds: lat.addedP99Us },
  sse: sseOut,
  footprint: { ...fp, starts: footprint },
  cache,
  problems,
  targets,
  plots: Object.keys(plots),
}
writeFileSync(`${OUT}/latest.json`, `${JSON.stringify(json, null, 2)}\n`)
if (flags.publish === true) {
  mkdirSync('bench/plots', { recursive: true })
  for (const name of [...Object.keys(plots), 'latest.json']) copyFileSync(`${OUT}/${name}`, `bench/plots/${name}`)
}
say(`wrote ${OUT}/latest.json and ${Object.keys(plots).join(', ')}${flags.publish === true ? '; copied to bench/plots/' : ''}`)
process.exit(0)
