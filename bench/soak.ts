// npm run soak: endurance. Starts a fake provider (bench/soak-upstream.ts) and the gateway built
// in dist/ as child processes, with a config in a temporary directory, and sends a bounded mix:
// allow, block, route, SSE streams, streams the client leaves mid-way, Realtime WebSocket
// tunnels, while the config is rewritten (atomically, a new revision each time) every few
// seconds. Samples the gateway's RSS and open descriptors (/proc) and its heap and event-loop
// delay (prom-client's default metrics on the admin port) over time; writes JSON and an SVG
// plot side by side, prints a table, and PASS or MISS for: RSS and descriptors flat after
// warm-up (within 5%), and exactly one decision line for every request.
//
//   npm run soak -- --requests 200000 --concurrency 16 --reload-every 3 --sample-every 1000
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import WebSocket from 'ws'
import { chartSvg } from './panels.js'

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '1000000' },
    concurrency: { type: 'string', default: '16' },
    'reload-every': { type: 'string', default: '3' },
    'sample-every': { type: 'string', default: '1000' },
    warmup: { type: 'string', default: '0.1' },
    out: { type: 'string', default: 'bench/results' },
    name: { type: 'string', default: 'soak' },
  },
})
const REQUESTS = Number(args.requests)
const CONCURRENCY = Number(args.concurrency)
const RELOAD_EVERY_MS = Number(args['reload-every']) * 1000
const SAMPLE_EVERY_MS = Number(args['sample-every'])
const WARMUP = Number(args.warmup)
const FLAT = 0.05

const UNITED_STATES = '8.8.8.8'
const HONG_KONG = '203.198.0.1'

/** The mix, one slot per request in a cycle of 20. */
type Kind = 'allow' | 'block' | 'route' | 'sse' | 'aborted' | 'websocket'
const CYCLE: Kind[] = ['allow', 'block', 'allow', 'sse', 'route', 'allow', 'block', 'allow', 'websocket', 'sse', 'allow', 'route', 'block', 'allow', 'aborted', 'sse', 'allow', 'route', 'block', 'allow']

const tmp = mkdtempSync(join(os.tmpdir(), 'geofence-soak-'))
const children: ChildProcess[] = []
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
  rmSync(tmp, { recursive: true, force: true })
})

async function startUpstream (): Promise<number> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/soak-upstream.ts'], { stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(child)
  const line = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve))
  return Number(line)
}

function config (upstreamPort: number, reload: number): string {
  const url = `http://127.0.0.1:${upstreamPort}`
  return `# soak revision ${reload}
server: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams:
  anthropic: { url: "${url}", dialect: anthropic }
  openai: { url: "${url}", dialect: openai }
  sovereign: { url: "${url}", dialect: openai-compatible }
policy:
  default: block
  unknown_location: block
  rules:
    - { name: sovereign, upstreams: [sovereign], deny: [], action: block }
    - { name: claude-frontier, upstreams: [anthropic], models: ["claude-*", "soak-*"], deny: [HK, CN], action: block }
    - name: openai-frontier
      upstreams: [openai]
      models: ["gpt-*"]
      deny: [HK, CN]
      action: { route: { upstream: sovereign, model: bank-llm-70b } }
`
}

/** What the gateway's log told: decision lines by id and status, revisions, reloads. */
class LogTally {
  lines = 0
  /** decision id -> 1 if a client saw it, plus 2 for each decision line that names it. */
  readonly ids = new Map<string, number>()
  readonly statuses = new Map<number, number>()
  readonly clientStatuses = new Map<number, number>()
  readonly revisions = new Set<string>()
  reloaded = 0
  reloadFailed = 0
  listening: { url: string, admin: string } | null = null

  read (line: string): void {
    if (line.endsWith('"msg":"decision"}')) {
      this.lines++
      const id = field(line, 'decision_id')
      this.ids.set(id, (this.ids.get(id) ?? 0) + 2)
      const status = Number(/"status":(\d+)/.exec(line)?.[1] ?? 0)
      this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1)
      this.revisions.add(field(line, 'policy_revision'))
    } else if (line.includes('"msg":"reloaded"')) this.reloaded++
    else if (line.includes('"msg":"reload failed')) this.reloadFailed++
    else if (line.includes('"msg":"listening"')) {
      const l = JSON.parse(line) as { url: string, admin: string }
      this.listening = { url: l.url, admin: l.admin }
    }
  }

  /** The status a client was answered with (499 for a stream it left): its decision line must say the same. */
  answered (status: number): void {
    this.clientStatuses.set(status, (this.clientStatuses.get(status) ?? 0) + 1)
  }

  sawId (id: string | undefined): void {
    if (id === undefined) return
    this.ids.set(id, (this.ids.get(id) ?? 0) | 1)
  }
}

/** A string field of a pino line, without parsing the whole line (a million of them). */
function field (line: string, name: string): string {
  const at = line.indexOf(`"${name}":"`)
  if (at < 0) return ''
  const from = at + name.length + 4
  return line.slice(from, line.indexOf('"', from))
}

async function startGateway (file: string, tally: LogTally): Promise<{ child: ChildProcess, done: Promise<void> }> {
  const child = spawn(process.execPath, ['dist/cli.js', 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(child)
  const lines = createInterface({ input: child.stdout! })
  lines.on('line', (l) => { tally.read(l) })
  const done = once(lines, 'close').then(() => {})
  for (let i = 0; i < 400 && tally.listening === null; i++) await new Promise((resolve) => setTimeout(resolve, 25))
  if (tally.listening === null) throw new Error('the gateway did not start')
  return { child, done }
}

interface Sample { t: number, requests: number, rss_mb: number, heap_used_mb: number, fds: number, eld_p99_ms: number }

function procRssMb (pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(m?.[1] ?? NaN) / 1024
}

async function sample (pid: number, admin: string, started: number, requests: number): Promise<Sample> {
  const text = await fetch(`${admin}/metrics`).then(async (r) => r.text())
  const metric = (name: string): number => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN)
  return {
    t: (Date.now() - started) / 1000,
    requests,
    rss_mb: procRssMb(pid),
    heap_used_mb: metric('nodejs_heap_size_used_bytes') / 2 ** 20,
    fds: readdirSync(`/proc/${pid}/fd`).length,
    // prom-client's event-loop delay (perf_hooks.monitorEventLoopDelay), p99 since the last scrape.
    eld_p99_ms: metric('nodejs_eventloop_lag_p99_seconds') * 1000,
  }
}

interface Counts { sent: Record<Kind, number>, ok: Record<Kind, number>, failures: Map<string, number> }

function newCounts (): Counts {
  const zero = (): Record<Kind, number> => ({ allow: 0, block: 0, route: 0, sse: 0, aborted: 0, websocket: 0 })
  return { sent: zero(), ok: zero(), failures: new Map() }
}

const json = { 'content-type': 'application/json' }
const BODIES = {
  claude: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
  claudeStream: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
  endless: JSON.stringify({ model: 'soak-endless', max_tokens: 16, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
  gpt: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
}

/** Sends one request of its kind; returns why it went wrong, or null. Records the decision id it got. */
async function one (kind: Kind, pool: Pool, wsBase: string, tally: LogTally): Promise<string | null> {
  if (kind === 'websocket') return realtime(wsBase, tally)
  const caller = kind === 'block' || kind === 'route' ? HONG_KONG : UNITED_STATES
  const [path, body] = kind === 'route' ? ['/openai/v1/chat/completions', BODIES.gpt]
    : kind === 'sse' ? ['/anthropic/v1/messages', BODIES.claudeStream]
      : kind === 'aborted' ? ['/anthropic/v1/messages', BODIES.endless]
        : ['/anthropic/v1/messages', BODIES.claude]
  const abort = new AbortController()
  const res = await pool.request({ path, method: 'POST', headers: { ...json, 'x-forwarded-for': caller }, body, signal: abort.signal })
  tally.sawId(res.headers['x-geofence-decision-id'] as string | undefined)
  const expected = kind === 'block' ? 451 : 200
  tally.answered(kind === 'aborted' && res.statusCode === 200 ? 499 : res.statusCode)
  if (res.statusCode !== expected) {
    await res.body.dump()
    return `${kind}: status ${res.statusCode}`
  }
  if (kind === 'aborted') {
    // The first event arrived: the client goes away mid-stream.
    const first = await new Promise<boolean>((resolve) => {
      res.body.once('data', () => { resolve(true) })
      res.body.once('error', () => { resolve(false) })
    })
    abort.abort()
    res.body.on('error', () => {})
    return first ? null : 'aborted: no first event'
  }
  const text = await res.body.text()
  if (kind === 'sse' && !text.includes('message_stop')) return 'sse: stream did not reach its end'
  if (kind === 'route' && res.headers['x-geofence-routed-model'] !== 'bank-llm-70b') return 'route: not routed'
  return null
}

/** One Realtime session through the gateway's tunnel: session.created, one event and its answer, close. */
async function realtime (wsBase: string, tally: LogTally): Promise<string | null> {
  const ws = new WebSocket(`${wsBase}/openai/v1/realtime?model=gpt-realtime`, { headers: { 'x-forwarded-for': UNITED_STATES } })
  ws.once('upgrade', (res) => {
    tally.sawId(res.headers['x-geofence-decision-id'] as string | undefined)
    tally.answered(101)
  })
  return new Promise((resolve) => {
    let outcome: string | null = 'websocket: closed before the answer'
    ws.on('message', (data: Buffer) => {
      const type = (JSON.parse(data.toString()) as { type?: string }).type
      if (type === 'session.created') ws.send(JSON.stringify({ type: 'response.create' }))
      else if (type === 'response.done') { outcome = null; ws.close(1000) }
    })
    ws.once('unexpected-response', (_req, res) => {
      tally.sawId(res.headers['x-geofence-decision-id'] as string | undefined)
      tally.answered(res.statusCode ?? 0)
      outcome = `websocket: status ${res.statusCode}`
      res.resume()
      ws.terminate()
    })
    ws.once('error', (e) => { outcome ??= `websocket: ${e.message}` })
    ws.once('close', () => { resolve(outcome) })
  })
}

const median = (xs: number[]): number => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b)
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

async function main (): Promise<void> {
  const upstreamPort = await startUpstream()
  const file = join(tmp, 'config.yaml')
  let reloads = 0
  writeFileSync(file, config(upstreamPort, reloads))
  const tally = new LogTally()
  const gw = await startGateway(file, tally)
  const pid = gw.child.pid!
  const { url, admin } = tally.listening!
  const pool = new Pool(url, { connections: CONCURRENCY, pipelining: 1 })
  const wsBase = url.replace(/^http/, 'ws')
  const counts = newCounts()
  const started = Date.now()
  const samples: Sample[] = [await sample(pid, admin, started, 0)]
  let done = 0

  // The config rewritten atomically (a temporary file renamed over it): a new revision each time.
  const reloader = setInterval(() => {
    reloads++
    writeFileSync(`${file}.tmp`, config(upstreamPort, reloads))
    renameSync(`${file}.tmp`, file)
  }, RELOAD_EVERY_MS)
  let sampling = Promise.resolve()
  const sampler = setInterval(() => {
    sampling = sampling.then(async () => { samples.push(await sample(pid, admin, started, done)) })
  }, SAMPLE_EVERY_MS)
  const progress = setInterval(() => {
    process.stderr.write(`soak: ${done.toLocaleString('en')} / ${REQUESTS.toLocaleString('en')} requests, ${((Date.now() - started) / 1000).toFixed(0)} s\n`)
  }, 30_000)

  let next = 0
  const worker = async (): Promise<void> => {
    for (let i = next++; i < REQUESTS; i = next++) {
      const kind = CYCLE[i % CYCLE.length]!
      counts.sent[kind]++
      const failure = await one(kind, pool, wsBase, tally).catch((e: Error) => `${kind}: ${e.message}`)
      if (failure === null) counts.ok[kind]++
      else counts.failures.set(failure, (counts.failures.get(failure) ?? 0) + 1)
      done++
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  const loadSeconds = (Date.now() - started) / 1000
  clearInterval(reloader)
  clearInterval(sampler)
  clearInterval(progress)
  await sampling
  samples.push(await sample(pid, admin, started, done))
  await pool.close()
  // At rest: what is still open once the clients have gone and idle connections have closed.
  await new Promise((resolve) => setTimeout(resolve, 5_000))
  const rest = await sample(pid, admin, started, done)

  // Every decision line flushed: the gateway stops (SIGTERM) and its log is read to the end.
  gw.child.kill('SIGTERM')
  await gw.done
  const [code] = await (gw.child.exitCode === null ? once(gw.child, 'exit') : Promise.resolve([gw.child.exitCode])) as [number | null]
  for (const c of children) if (c !== gw.child) c.kill('SIGTERM')

  report({ samples, rest, counts, tally, reloads, loadSeconds, exitCode: code })
}

interface Verdict { check: string, target: string, measured: string, pass: boolean }

function report (r: { samples: Sample[], rest: Sample, counts: Counts, tally: LogTally, reloads: number, loadSeconds: number, exitCode: number | null }): void {
  const { samples, counts, tally } = r
  const sent = Object.values(counts.sent).reduce((a, b) => a + b, 0)
  let matched = 0
  let missing = 0
  let unseen = 0
  let duplicated = 0
  for (const v of tally.ids.values()) {
    if (v === 3) matched++
    else if (v === 1) missing++
    else if (v === 2) unseen++
    else if (v > 3) duplicated++
  }
  // What the clients were answered (a stream they left: 499), status by status, is what the lines say.
  const expectedStatuses = tally.clientStatuses
  const statusesMatch = [...new Set([...expectedStatuses.keys(), ...tally.statuses.keys()])].every((s) => expectedStatuses.get(s) === tally.statuses.get(s))

  // Warm-up: the samples taken before WARMUP of the requests were done. Then the first and the
  // last tenth of the rest (at least one sample each) are compared by their medians.
  const warmupEnd = REQUESTS * WARMUP
  const steady = samples.filter((s) => s.requests >= warmupEnd)
  const tenth = Math.max(1, Math.floor(steady.length / 10))
  const window = (key: keyof Sample, at: 'start' | 'end'): number => median((at === 'start' ? steady.slice(0, tenth) : steady.slice(-tenth)).map((s) => s[key]))
  const flat = (key: 'rss_mb' | 'fds'): { start: number, end: number, max: number, ratio: number } => {
    const start = window(key, 'start')
    const end = window(key, 'end')
    return { start, end, max: Math.max(...steady.map((s) => s[key])), ratio: end / start }
  }
  const rss = flat('rss_mb')
  const fds = flat('fds')
  const eld = samples.slice(1).map((s) => s.eld_p99_ms).filter(Number.isFinite)
  const failures = [...counts.failures.values()].reduce((a, b) => a + b, 0)
  const pct = (x: number): string => `${((x - 1) * 100).toFixed(1)}%`
  const verdicts: Verdict[] = [
    { check: 'RSS flat after warm-up', target: `end within ${FLAT * 100}% of warm-up`, measured: `${rss.start.toFixed(1)} -> ${rss.end.toFixed(1)} MiB (${pct(rss.ratio)}; max ${rss.max.toFixed(1)})`, pass: steady.length >= 2 && Math.abs(rss.ratio - 1) <= FLAT },
    { check: 'open descriptors flat after warm-up', target: `end within ${FLAT * 100}% of warm-up`, measured: `${fds.start} -> ${fds.end} (${pct(fds.ratio)}; max ${fds.max}; at rest ${r.rest.fds})`, pass: steady.length >= 2 && Math.abs(fds.ratio - 1) <= FLAT },
    { check: 'one decision line per request', target: `${sent} lines`, measured: `${tally.lines} lines`, pass: tally.lines === sent },
    { check: 'each decision id on exactly one line', target: `${sent} ids`, measured: `${matched} matched, ${missing} without a line, ${duplicated} on two or more, ${unseen} no client saw`, pass: matched === sent && missing === 0 && duplicated === 0 && unseen === 0 },
    { check: 'decision-line statuses match the answers', target: [...expectedStatuses].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}: ${n}`).join(', '), measured: [...tally.statuses].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}: ${n}`).join(', '), pass: statusesMatch },
    { check: 'every request answered as expected', target: '0 failures', measured: `${failures} failures`, pass: failures === 0 },
    { check: 'reloads applied, none failed', target: `${r.reloads} rewrites, 0 failed`, measured: `${tally.reloaded} reloaded, ${tally.reloadFailed} failed, ${tally.revisions.size} revisions on decision lines`, pass: tally.reloadFailed === 0 && (r.reloads === 0 || tally.reloaded > 0) },
  ]

  const result = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? '', memory_gib: Math.round(os.totalmem() / 2 ** 30), node: process.version, platform: `${os.platform()} ${os.release()}` },
    options: { requests: REQUESTS, concurrency: CONCURRENCY, reload_every_s: RELOAD_EVERY_MS / 1000, sample_every_ms: SAMPLE_EVERY_MS, warmup: WARMUP, mix: CYCLE },
    duration_s: r.loadSeconds,
    requests_per_s: sent / r.loadSeconds,
    sent: counts.sent,
    answered_as_expected: counts.ok,
    failures: Object.fromEntries(counts.failures),
    decisions: { lines: tally.lines, requests: sent, matched, missing, duplicated, unseen, statuses: Object.fromEntries(tally.statuses), revisions: tally.revisions.size },
    reloads: { written: r.reloads, applied: tally.reloaded, failed: tally.reloadFailed },
    rss_mb: rss,
    fds: { ...fds, at_rest: r.rest.fds },
    heap_used_mb: { start: window('heap_used_mb', 'start'), end: window('heap_used_mb', 'end') },
    eld_p99_ms: { median: median(eld), max: Math.max(...eld) },
    gateway_exit_code: r.exitCode,
    series: {
      t_s: samples.map((s) => s.t),
      requests: samples.map((s) => s.requests),
      rss_mb: samples.map((s) => s.rss_mb),
      heap_used_mb: samples.map((s) => s.heap_used_mb),
      fds: samples.map((s) => s.fds),
      eld_p99_ms: samples.map((s) => s.eld_p99_ms),
    },
    verdicts,
  }
  const out = resolve(args.out)
  mkdirSync(out, { recursive: true })
  const jsonFile = join(out, `${args.name}.json`)
  const svgFile = join(out, `${args.name}.svg`)
  writeFileSync(jsonFile, `${JSON.stringify(result, null, 2)}\n`)
  const xs = samples.map((s) => s.requests / 1000)
  const band = (start: number, label: string): Array<{ y: number, label: string }> => (Number.isFinite(start) ? [{ y: start * (1 + FLAT), label: `${label} + ${FLAT * 100}%` }] : [])
  writeFileSync(svgFile, chartSvg({
    title: `llm-geofence soak: ${sent.toLocaleString('en')} requests, ${CONCURRENCY} at a time, a reload every ${RELOAD_EVERY_MS / 1000} s (${result.date.slice(0, 10)})`,
    xLabel: 'requests sent (thousands)',
    xs,
    xMark: { x: warmupEnd / 1000, label: 'end of warm-up' },
    panels: [
      { title: 'RSS (MiB)', ys: samples.map((s) => s.rss_mb), marks: band(rss.start, 'warm-up') },
      { title: 'V8 heap used (MiB)', ys: samples.map((s) => s.heap_used_mb) },
      { title: 'open file descriptors', ys: samples.map((s) => s.fds), marks: band(fds.start, 'warm-up') },
      { title: 'event-loop delay, p99 of each interval (ms)', ys: samples.map((s) => s.eld_p99_ms) },
    ],
  }))

  const rows = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((k) => samples[Math.round((k / 10) * (samples.length - 1))]!)
  const line = (cells: Array<string | number>): string => `| ${cells.join(' | ')} |`
  console.log(`\nsoak: ${sent.toLocaleString('en')} requests in ${r.loadSeconds.toFixed(0)} s (${result.requests_per_s.toFixed(0)}/s), ${CONCURRENCY} at a time; ${r.reloads} config rewrites\n`)
  console.log(line(['t (s)', 'requests', 'RSS (MiB)', 'heap used (MiB)', 'fds', 'ELD p99 (ms)']))
  console.log(line(['---:', '---:', '---:', '---:', '---:', '---:']))
  for (const s of rows) console.log(line([s.t.toFixed(0), s.requests.toLocaleString('en'), s.rss_mb.toFixed(1), s.heap_used_mb.toFixed(1), s.fds, s.eld_p99_ms.toFixed(1)]))
  console.log(`\nevent-loop delay p99 per interval: median ${median(eld).toFixed(1)} ms, max ${Math.max(...eld).toFixed(1)} ms; at rest ${r.rest.fds} descriptors, ${r.rest.rss_mb.toFixed(1)} MiB\n`)
  console.log(line(['check', 'target', 'measured', 'result']))
  console.log(line(['---', '---', '---', '---']))
  for (const v of verdicts) console.log(line([v.check, v.target, v.measured, v.pass ? 'PASS' : 'MISS']))
  if (counts.failures.size > 0) console.log('\nfailures:', Object.fromEntries(counts.failures))
  console.log(`\nwrote ${jsonFile} and ${svgFile}`)
}

await main()
process.exit(0)
