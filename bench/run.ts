// npm run bench: one run, one machine, every figure side by side so that ratios mean something.
// Starts a fast fake upstream on loopback, a bare Fastify + @fastify/http-proxy, and the
// gateway (from dist/, as deployed), drives them with autocannon, and prints a table and the
// targets of issue 6 with pass or miss. Also writes bench/results/latest.json.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import autocannon from 'autocannon'

const DURATION = Number(process.env['BENCH_DURATION'] ?? 5)
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 32)
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 5)
const tmp = mkdtempSync(join(os.tmpdir(), 'geofence-bench-'))
// On a machine with two or more cores, the server under test gets a core of its own (CPU 1),
// and the load generator and the fake upstream share CPU 0: the figures then measure what the
// proxy costs, not how three processes fight over two cores.
const PIN = os.cpus().length >= 2 && spawnSync('taskset', ['-p', '-c', '0', String(process.pid)]).status === 0
const pinned = (cpu: number, argv: string[]): [string, string[]] => (PIN ? ['taskset', ['-c', String(cpu), ...argv]] : [argv[0] ?? '', argv.slice(1)])
const children: ChildProcess[] = []
process.on('exit', () => { for (const c of children) c.kill('SIGKILL') })

async function portOf (file: string, args: string[], cpu: number): Promise<{ port: number, child: ChildProcess }> {
  const [cmd, argv] = pinned(cpu, [process.execPath, '--import', 'tsx', file, ...args])
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(child)
  const line = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve))
  return { port: Number(line), child }
}

async function startGateway (upstreamPort: number, extra = '', opts: { workers?: number, cpus?: string } = {}): Promise<{ port: number, child: ChildProcess }> {
  const workers = opts.workers ?? 1
  const config = join(tmp, `gateway-${children.length}.yaml`)
  writeFileSync(config, `
server: { host: 127.0.0.1, port: 0, body_limit: 32mb, workers: ${workers} }
admin: { host: 127.0.0.1, port: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32] }
geoip: { cache: { max_entries: 100000, ttl: 1h } }
upstreams:
  anthropic: { url: "http://127.0.0.1:${upstreamPort}", dialect: anthropic }
policy:
  default: block
  unknown_location: allow
  rules:
    - { name: frontier, upstreams: [anthropic], models: ["claude-*"], deny: [HK, CN, KP], action: block }
    - { name: open, upstreams: [anthropic], models: ["open-*"], deny: [], action: block }
${extra}`)
  // Decision lines go to a file, as they would go to a log pipeline: logging is on the path.
  const log = join(tmp, `gateway-${children.length}.log`)
  const fd = openSync(log, 'w')
  const base = [process.execPath, 'dist/cli.js', 'serve', '--config', config]
  const [cmd, argv] = opts.cpus === 'all' ? [base[0] ?? '', base.slice(1)] : pinned(1, base)
  const child = spawn(cmd, argv, { stdio: ['ignore', fd, 'inherit'] })
  closeSync(fd)
  children.push(child)
  for (let i = 0; i < 200; i++) {
    const listening = readFileSync(log, 'utf8').split('\n').filter((l) => l.includes('"msg":"listening"'))
    if (listening.length >= workers) return { port: Number(new URL(JSON.parse(listening[0] ?? '{}').url as string).port), child }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error('the gateway did not start')
}

/** Resident set size of a process now, in MiB (Linux /proc). */
function rssMb (pid: number | undefined): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${String(pid)}/status`, 'utf8'))
    return m === null ? 0 : Number(m[1]) / 1024
  } catch { return 0 }
}

interface Row { name: string, rps: number, p50: number, p99: number, p999: number, peakRssMb: number, errors: number, non2xx: number }

async function load (name: string, port: number, path: string, opts: { body: string | Buffer, headers?: () => Record<string, string>, pid?: number, connections?: number, rate?: number, expect?: number }): Promise<Row> {
  let peak = 0
  const sampler = setInterval(() => { peak = Math.max(peak, rssMb(opts.pid)) }, 25)
  const makeHeaders = opts.headers
  const instance = autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: opts.connections ?? CONNECTIONS,
    duration: DURATION,
    ...(opts.rate === undefined ? {} : { overallRate: opts.rate }),
    requests: [{
      method: 'POST',
      path,
      body: opts.body,
      headers: { 'content-type': 'application/json', ...(makeHeaders === undefined ? {} : makeHeaders()) },
      ...(makeHeaders === undefined ? {} : { setupRequest: (req: autocannon.Request) => ({ ...req, headers: { ...req.headers, ...makeHeaders() } }) }),
    }],
  })
  const result = await instance
  clearInterval(sampler)
  const lat = result.latency as unknown as Record<string, number>
  const expected = opts.expect ?? 200
  const wrong = result.statusCodeStats === undefined
    ? result.non2xx
    : Object.entries(result.statusCodeStats).filter(([code]) => Number(code) !== expected).reduce((n, [, v]) => n + (v as { count: number }).count, 0)
  return { name, rps: result.requests.average, p50: lat['p50'] ?? 0, p99: lat['p99'] ?? 0, p999: lat['p99_9'] ?? 0, peakRssMb: peak, errors: result.errors + result.timeouts, non2xx: wrong }
}

interface StreamStats { ttfbMs: number[], eventDelayMs: number[], events: number, coalescedReads: number }

/** Streams through `port`, recording time to first byte and each event's delay since it was sent. */
async function streams (port: number, path: string, count: number): Promise<StreamStats> {
  const stats: StreamStats = { ttfbMs: [], eventDelayMs: [], events: 0, coalescedReads: 0 }
  const body = JSON.stringify({ model: 'claude-sonnet-4-5', stream: true, max_tokens: 100 })
  const agent = new http.Agent({ keepAlive: true })
  for (let i = 0; i < count; i++) {
    await new Promise<void>((resolve, reject) => {
      const started = performance.timeOrigin + performance.now()
      const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'x-forwarded-for': '8.8.8.8' } }, (res) => {
        let first = true
        let buffered = ''
        res.on('data', (chunk: Buffer) => {
          const at = performance.timeOrigin + performance.now()
          if (first) { stats.ttfbMs.push(at - started); first = false }
          buffered += chunk.toString()
          const parts = buffered.split('\n\n')
          buffered = parts.pop() ?? ''
          const events = parts.filter((p) => p.includes('data: '))
          if (events.length > 1) stats.coalescedReads++
          for (const e of events) {
            const t = /"t":([\d.]+)/.exec(e)
            if (t !== null) stats.eventDelayMs.push(at - Number(t[1]))
            stats.events++
          }
        })
        res.on('end', resolve)
      })
      req.on('error', reject)
      req.end(body)
    })
  }
  agent.destroy()
  return stats
}

const pct = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0
}

// ---------------------------------------------------------------------------------------------
const upstream = await portOf('bench/upstream.ts', [], 0)
const bare = await portOf('bench/bare-proxy.ts', [`http://127.0.0.1:${upstream.port}`], 1)
const gateway = await startGateway(upstream.port)
const small = JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'Hello, how are you today?' }] })
const padded = (bytes: number): string => {
  const head = '{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"'
  return `${head}${'x'.repeat(bytes - head.length - 4)}"}]}`
}
const hotPool = Array.from({ length: 300 }, (_, i) => `8.8.${i >> 8}.${i & 255}`)
let hot = 0
let cold = 0x0b000000 // 11.0.0.0 onwards: public addresses, each request a new one
const nextCold = (): string => { cold += 7919; return `${(cold >>> 24) & 255}.${(cold >>> 16) & 255}.${(cold >>> 8) & 255}.${cold & 255}` }

console.error(`llm-geofence benchmark: ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, ${DURATION}s per run, ${CONNECTIONS} connections`)
const warm = async (port: number, path: string, headers?: () => Record<string, string>): Promise<void> => {
  await autocannon({ url: `http://127.0.0.1:${port}`, connections: 8, duration: 1, requests: [{ method: 'POST', path, body: small, headers: { 'content-type': 'application/json', ...(headers?.() ?? {}) } }] })
}
await warm(upstream.port, '/v1/messages')
await warm(bare.port, '/anthropic/v1/messages')
await warm(gateway.port, '/anthropic/v1/messages', () => ({ 'x-forwarded-for': hotPool[0] ?? '' }))

const rows: Row[] = []
const run = async (row: Promise<Row>): Promise<Row> => { const r = await row; rows.push(r); console.error(`  ${r.name}: ${r.rps.toFixed(0)} req/s`); return r }
/** Throughput comparisons are interleaved over several rounds; each figure is the median run. */
const median = (runs: Row[]): Row => {
  const sorted = [...runs].sort((a, b) => a.rps - b.rps)
  const mid = sorted[Math.floor(sorted.length / 2)] ?? runs[0]
  if (mid === undefined) throw new Error('no runs')
  return { ...mid, peakRssMb: Math.max(...runs.map((r) => r.peakRssMb)), errors: runs.reduce((n, r) => n + r.errors, 0), non2xx: runs.reduce((n, r) => n + r.non2xx, 0) }
}
const openModel = small.replace('claude-sonnet-4-5', 'open-model')
const scenarios: Array<[string, () => Promise<Row>]> = [
  ['upstream directly (floor)', async () => load('upstream directly (floor)', upstream.port, '/v1/messages', { body: small, pid: upstream.child.pid })],
  ['bare fastify + http-proxy', async () => load('bare fastify + http-proxy', bare.port, '/anthropic/v1/messages', { body: small, pid: bare.child.pid })],
  ['gateway allow, cache-hot (300 callers)', async () => load('gateway allow, cache-hot (300 callers)', gateway.port, '/anthropic/v1/messages', { body: small, pid: gateway.child.pid, headers: () => ({ 'x-forwarded-for': hotPool[hot++ % hotPool.length] ?? '' }) })],
  ['gateway allow, cache-cold (new caller each request)', async () => load('gateway allow, cache-cold (new caller each request)', gateway.port, '/anthropic/v1/messages', { body: openModel, pid: gateway.child.pid, headers: () => ({ 'x-forwarded-for': nextCold() }) })],
  ['gateway block (451)', async () => load('gateway block (451)', gateway.port, '/anthropic/v1/messages', { body: small, pid: gateway.child.pid, headers: () => ({ 'x-forwarded-for': '203.198.0.1' }), expect: 451 })],
]
const runsByName = new Map<string, Row[]>()
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, fn] of scenarios) {
    const r = await fn()
    console.error(`  round ${round + 1}: ${name}: ${r.rps.toFixed(0)} req/s`)
    runsByName.set(name, [...(runsByName.get(name) ?? []), r])
  }
}
const [floor, bareRow, allowHot, allowCold, block] = scenarios.map(([name]) => {
  const r = median(runsByName.get(name) ?? [])
  rows.push(r)
  return r
}) as [Row, Row, Row, Row, Row]
const bare1m = await run(load('bare proxy, 1 MiB body', bare.port, '/anthropic/v1/messages', { body: padded(1024 * 1024), pid: bare.child.pid, connections: 8 }))
const gw1m = await run(load('gateway, 1 MiB body', gateway.port, '/anthropic/v1/messages', { body: padded(1024 * 1024), pid: gateway.child.pid, connections: 8, headers: () => ({ 'x-forwarded-for': '8.8.8.8' }) }))
const bare10m = await run(load('bare proxy, 10 MiB body', bare.port, '/anthropic/v1/messages', { body: padded(10 * 1024 * 1024), pid: bare.child.pid, connections: 4 }))
const gw10m = await run(load('gateway, 10 MiB body', gateway.port, '/anthropic/v1/messages', { body: padded(10 * 1024 * 1024), pid: gateway.child.pid, connections: 4, headers: () => ({ 'x-forwarded-for': '8.8.8.8' }) }))
const bareRate = await run(load('bare proxy at 1,000 req/s', bare.port, '/anthropic/v1/messages', { body: small, pid: bare.child.pid, rate: 1000, connections: 16 }))
const gwRate = await run(load('gateway allow at 1,000 req/s', gateway.port, '/anthropic/v1/messages', { body: small, pid: gateway.child.pid, rate: 1000, connections: 16, headers: () => ({ 'x-forwarded-for': hotPool[hot++ % hotPool.length] ?? '' }) }))

// server.workers on every core (not pinned), against one worker under the same conditions.
const oneWorker = await startGateway(upstream.port, '', { workers: 1, cpus: 'all' })
const twoWorkers = await startGateway(upstream.port, '', { workers: 2, cpus: 'all' })
const hotHeaders = (): Record<string, string> => ({ 'x-forwarded-for': hotPool[hot++ % hotPool.length] ?? '' })
const w1 = await run(load('gateway allow, 1 worker, unpinned', oneWorker.port, '/anthropic/v1/messages', { body: small, pid: oneWorker.child.pid, headers: hotHeaders }))
const w2 = await run(load('gateway allow, server.workers: 2, unpinned', twoWorkers.port, '/anthropic/v1/messages', { body: small, pid: twoWorkers.child.pid, headers: hotHeaders }))
oneWorker.child.kill('SIGTERM')
twoWorkers.child.kill('SIGTERM')

const STREAMS = Number(process.env['BENCH_STREAMS'] ?? 20)
const directStreams = await streams(upstream.port, '/v1/messages', STREAMS)
const bareStreams = await streams(bare.port, '/anthropic/v1/messages', STREAMS)
const gatewayStreams = await streams(gateway.port, '/anthropic/v1/messages', STREAMS)

// The memory of the location cache, in a process of its own.
const rssChild = spawn(process.execPath, ['--expose-gc', 'bench/rss.mjs'], { stdio: ['ignore', 'pipe', 'inherit'] })
const rssLine = await new Promise<string>((resolve) => createInterface({ input: rssChild.stdout }).once('line', resolve))
const memory = JSON.parse(rssLine) as { start: number, after100k: number, after1m: number, cacheSize: number }

// ---------------------------------------------------------------------------------------------
const ratio = (a: number, b: number): number => (b === 0 ? 0 : a / b)
const f = (n: number, d = 2): string => n.toFixed(d)
const table = [
  '| scenario | req/s | p50 ms | p99 ms | p99.9 ms | peak RSS MiB | vs bare proxy | vs upstream |',
  '|---|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.name} | ${f(r.rps, 0)} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.p999)} | ${f(r.peakRssMb, 0)} | ${f(ratio(r.rps, bareRow.rps))} | ${f(ratio(r.rps, floor.rps))} |`),
]
const eventAdded99 = pct(gatewayStreams.eventDelayMs, 99) - pct(directStreams.eventDelayMs, 99)
const eventAddedOverBare99 = pct(gatewayStreams.eventDelayMs, 99) - pct(bareStreams.eventDelayMs, 99)
const targets = [
  { target: 'allow path, cache-hot >= 0.90 x bare proxy req/s', value: ratio(allowHot.rps, bareRow.rps), pass: ratio(allowHot.rps, bareRow.rps) >= 0.9 },
  { target: 'allow path, cache-cold >= 0.80 x bare proxy req/s', value: ratio(allowCold.rps, bareRow.rps), pass: ratio(allowCold.rps, bareRow.rps) >= 0.8 },
  { target: 'block path >= 2 x allow path req/s', value: ratio(block.rps, allowHot.rps), pass: ratio(block.rps, allowHot.rps) >= 2 },
  { target: 'p99 added over bare proxy at 1,000 req/s <= 1 ms', value: gwRate.p99 - bareRate.p99, pass: gwRate.p99 - bareRate.p99 <= 1 },
  { target: 'SSE: added delay per event over the upstream, p99 <= 1 ms', value: eventAdded99, pass: eventAdded99 <= 1 },
  { target: '(SSE: added delay per event over the bare proxy, p99; for reference)', value: eventAddedOverBare99, pass: eventAddedOverBare99 <= 1 },
  { target: 'SSE: no coalescing of events (reads holding > 1 event)', value: gatewayStreams.coalescedReads, pass: gatewayStreams.coalescedReads === 0 && gatewayStreams.events === directStreams.events },
  { target: 'peak RSS, embedded database + full 100,000-entry cache <= 150 MiB', value: memory.after100k, pass: memory.after100k <= 150 },
  { target: 'RSS after 1,000,000 callers <= 1.10 x RSS after 100,000', value: ratio(memory.after1m, memory.after100k), pass: ratio(memory.after1m, memory.after100k) <= 1.1 },
]
const wrong = rows.filter((r) => r.errors > 0 || r.non2xx > 0)
const machine = `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${f(os.totalmem() / 1024 ** 3, 0)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}`
const out = [
  `Machine: ${machine}`,
  `Runs: ${DURATION}s each, ${CONNECTIONS} connections (8 for 1 MiB, 4 for 10 MiB bodies); the first five rows are medians of ${ROUNDS} interleaved rounds. ${PIN ? 'The server under test runs alone on CPU 1; autocannon and the fake upstream share CPU 0.' : 'Processes are not pinned to CPUs.'}`,
  '',
  ...table,
  '',
  `Streaming (${STREAMS} streams x ${directStreams.events / STREAMS} events, one every 10 ms): time to first byte p50 ${f(pct(directStreams.ttfbMs, 50))} ms direct, ${f(pct(gatewayStreams.ttfbMs, 50))} ms through the gateway; delay since send p50/p99 ${f(pct(directStreams.eventDelayMs, 50))}/${f(pct(directStreams.eventDelayMs, 99))} ms direct, ${f(pct(bareStreams.eventDelayMs, 50))}/${f(pct(bareStreams.eventDelayMs, 99))} ms through the bare proxy, ${f(pct(gatewayStreams.eventDelayMs, 50))}/${f(pct(gatewayStreams.eventDelayMs, 99))} ms through the gateway; reads holding more than one event: ${bareStreams.coalescedReads} bare, ${gatewayStreams.coalescedReads} gateway.`,
  `server.workers: 2 gives ${f(ratio(w2.rps, w1.rps))} x the requests per second of one worker on this machine (unpinned; the load generator and the upstream use the same two cores).`,
  `Location cache: RSS ${f(memory.start, 0)} MiB with the embedded database, ${f(memory.after100k, 0)} MiB after 100,000 callers (cache full), ${f(memory.after1m, 0)} MiB after 1,000,000 (cache holds ${memory.cacheSize}).`,
  '',
  '| target | measured | result |',
  '|---|---:|---|',
  ...targets.map((x) => `| ${x.target} | ${f(x.value)} | ${x.pass ? 'pass' : 'MISS'} |`),
  ...(wrong.length === 0 ? [] : ['', `Unexpected statuses or errors: ${wrong.map((r) => `${r.name}: ${r.non2xx} wrong status, ${r.errors} errors`).join('; ')}`]),
]
process.stdout.write(`${out.join('\n')}\n`)
mkdirSync('bench/results', { recursive: true })
writeFileSync('bench/results/latest.json', `${JSON.stringify({ date: new Date().toISOString(), machine, durationSeconds: DURATION, connections: CONNECTIONS, rounds: ROUNDS, pinned: PIN, rows, streaming: { direct: { ttfbP50: pct(directStreams.ttfbMs, 50), eventP50: pct(directStreams.eventDelayMs, 50), eventP99: pct(directStreams.eventDelayMs, 99), events: directStreams.events, coalescedReads: directStreams.coalescedReads }, bare: { ttfbP50: pct(bareStreams.ttfbMs, 50), eventP50: pct(bareStreams.eventDelayMs, 50), eventP99: pct(bareStreams.eventDelayMs, 99), events: bareStreams.events, coalescedReads: bareStreams.coalescedReads }, gateway: { ttfbP50: pct(gatewayStreams.ttfbMs, 50), eventP50: pct(gatewayStreams.eventDelayMs, 50), eventP99: pct(gatewayStreams.eventDelayMs, 99), events: gatewayStreams.events, coalescedReads: gatewayStreams.coalescedReads } }, memory, workers: { one: w1.rps, two: w2.rps, ratio: ratio(w2.rps, w1.rps) }, targets }, null, 2)}\n`)
for (const c of children) c.kill('SIGTERM')
process.exit(0)
