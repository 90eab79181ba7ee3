// npx tsx bench/evidence.ts [LINES]: how fast `geofence replay` reads a decision log, how fast
// `geofence verify-log` checks a chained one, and what chaining costs per line written. It
// writes LINES (default 1,000,000) decision lines as the gateway writes them (the stages run
// in process for a mix of callers and models, each line serialized by pino), then replays the
// file under a candidate policy and prints lines per second (after start-up: the candidate is
// loaded first) and the process's peak RSS, which must not grow with the log. Then it writes
// 100,000 lines through the log chain (logging.integrity), verifies them, and times pino with
// and without the chain in interleaved rounds (the fastest round of each).
import { generateKeyPairSync, randomUUID } from 'node:crypto'
import { createWriteStream, mkdtempSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseConfig } from '../src/config/load.js'
import { keyId } from '../src/config/signing-keys.js'
import { LogChain } from '../src/evidence/log-chain.js'
import { replay } from '../src/evidence/replay.js'
import { verifyLog } from '../src/evidence/verify-log.js'
import { createLogger } from '../src/observability/logger.js'
import { beginRequest, decideRequest } from '../src/pipeline/request.js'
import { decisionRecord } from '../src/pipeline/record.js'
import { createRuntime } from '../src/runtime.js'

const LINES = Number(process.argv[2] ?? 1_000_000)
const dir = mkdtempSync(join(tmpdir(), 'geofence-evidence-bench-'))

const config = (candidate: boolean): string => `
client_ip: { trusted_proxies: [127.0.0.1/32] }
clients:
  payments-app: { token_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 }
upstreams:
  anthropic: { url: "http://127.0.0.1:1", dialect: anthropic }
  openai: { url: "http://127.0.0.1:1", dialect: openai }
  sovereign: { url: "http://127.0.0.1:2", dialect: openai-compatible }
policy:
  rules:
    - { name: anthropic-frontier, upstreams: [anthropic], models: ["claude-*"], deny: [CN, RU${candidate ? ', HK' : ''}], action: block }
${candidate ? '    - { name: mini-routed, upstreams: [openai], models: [gpt-4o-mini], deny: [HK], action: { route: { upstream: sovereign, model: local-small } } }\n' : ''}    - { name: openai-frontier, upstreams: [openai], models: ["gpt-*"], deny: [CN, RU], action: block }
    - { name: sovereign, upstreams: [sovereign], models: ["local-*"], deny: [], action: block }
`
const recorded = await createRuntime(parseConfig('recorded.yaml', Buffer.from(config(false)), {}))
const candidate = await createRuntime(parseConfig('candidate.yaml', Buffer.from(config(true)), {}))

// The mix: callers in seven countries, five models on two upstreams, two endpoints.
const IPS = ['114.114.114.114', '8.8.8.8', '203.198.0.1', '81.2.69.142', '77.88.8.8', '185.220.101.7', '1.1.1.1']
const CALLS = [
  ['/anthropic/v1/messages', 'claude-sonnet-4-5'], ['/anthropic/v1/messages', 'claude-opus-4-1'],
  ['/openai/v1/chat/completions', 'gpt-4o'], ['/openai/v1/chat/completions', 'gpt-4o-mini'], ['/openai/v1/responses', 'gpt-5'],
] as const
const templates: Array<Record<string, unknown>> = []
for (const ip of IPS) {
  for (const [path, model] of CALLS) {
    const head = { peer: '127.0.0.1', method: 'POST', url: path, headers: { 'x-forwarded-for': ip, authorization: 'Bearer test', 'content-type': 'application/json' } }
    const { state } = beginRequest(recorded, head, randomUUID())
    await decideRequest(state, head, Buffer.from(JSON.stringify({ model, messages: [] })))
    templates.push({ ...decisionRecord(state, 'POST', path, state.decision?.action === 'block' ? 451 : 200) })
  }
}

const log = join(dir, 'decisions.log')
const out = createWriteStream(log, { highWaterMark: 1 << 20 })
const lines: string[] = []
const logger = createLogger('info', { write: (s: string) => { lines.push(s) } })
let t = Date.now()
for (let i = 0; i < LINES; i++) {
  const template = templates[i % templates.length] ?? {}
  logger.info({ ...template, decision_id: randomUUID(), client_ip: `${String(i % 251)}.${String((i >> 8) % 251)}.7.9`, duration_ms: (i % 900) / 10 }, 'decision')
  if (lines.length >= 10_000) {
    if (!out.write(lines.join(''))) await new Promise<void>((resolve) => out.once('drain', () => { resolve() }))
    lines.length = 0
  }
}
out.end(lines.join(''))
await new Promise<void>((resolve) => out.once('finish', () => { resolve() }))
const bytes = statSync(log).size
console.log(`wrote ${LINES.toLocaleString('en-US')} lines (${(bytes / 2 ** 20).toFixed(0)} MiB, ${(bytes / LINES).toFixed(0)} bytes a line) in ${((Date.now() - t) / 1000).toFixed(1)} s: ${log}`)

let peak = process.memoryUsage().rss
const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 50)
const rssBefore = process.memoryUsage().rss
t = performance.now()
const report = await replay([log], candidate)
const seconds = (performance.now() - t) / 1000
clearInterval(sampler)
console.log(`replay: ${report.lines.toLocaleString('en-US')} lines in ${seconds.toFixed(2)} s = ${Math.round(report.lines / seconds).toLocaleString('en-US')} lines/s`)
console.log(`  unchanged ${report.unchanged}, newly blocked ${report.newly_blocked}, newly allowed ${report.newly_allowed}, newly routed ${report.newly_routed}, changed ids ${report.changed.length}`)
console.log(`  RSS before ${(rssBefore / 2 ** 20).toFixed(0)} MiB, peak ${(peak / 2 ** 20).toFixed(0)} MiB`)

// The chained log: 100,000 lines verified, and the cost of chaining per line written.
const { privateKey, publicKey } = generateKeyPairSync('ed25519')
const signing = { key: privateKey, id: keyId(privateKey), algorithm: 'ed25519' as const }
const chained: string[] = []
const chain = new LogChain({ write: (s: string) => { chained.push(s) } }, { integrity: { key: signing, checkpointEvery: 10_000, checkpointIntervalMs: 3_600_000, checkpointFile: null }, slot: 'main', config: 'recorded.yaml', policyRevision: recorded.policy.revision }, null)
const chainLogger = createLogger('info', chain)
for (let i = 0; i < 99_990; i++) chainLogger.info({ ...templates[i % templates.length], decision_id: randomUUID(), duration_ms: (i % 900) / 10 }, 'decision')
chain.close()
const chainedLog = join(dir, 'chained.log')
const chainedOut = createWriteStream(chainedLog)
chainedOut.end(chained.join(''))
await new Promise<void>((resolve) => chainedOut.once('finish', () => { resolve() }))
t = performance.now()
const verified = await verifyLog([chainedLog], { publicKeys: [{ key: publicKey, id: keyId(publicKey), algorithm: 'ed25519' }] })
console.log(`verify-log: ${verified.lines.toLocaleString('en-US')} lines in ${((performance.now() - t) / 1000).toFixed(2)} s, ${verified.ok ? 'verified' : 'NOT VERIFIED'}`)

let bytesOut = 0
const sink = { write: (s: string) => { bytesOut += s.length } }
const loggers = { plain: createLogger('info', sink), chained: createLogger('info', new LogChain(sink, { integrity: { key: signing, checkpointEvery: 10_000, checkpointIntervalMs: 3_600_000, checkpointFile: null }, slot: 'main', config: 'x', policyRevision: 'x' }, null)) }
const best = { plain: Infinity, chained: Infinity }
const sample = templates[0] ?? {}
for (let round = 0; round < 10; round++) {
  for (const name of ['plain', 'chained'] as const) {
    const started = performance.now()
    for (let i = 0; i < 50_000; i++) loggers[name].info(sample, 'decision')
    best[name] = Math.min(best[name], (performance.now() - started) / 50_000 * 1000)
  }
}
console.log(`a decision line through pino: ${best.plain.toFixed(2)} us; chained: ${best.chained.toFixed(2)} us (+${(best.chained - best.plain).toFixed(2)} us a line)`)
