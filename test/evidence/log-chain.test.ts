// logging.integrity: the real gateway's log, chained and checkpointed, verifies untouched; every
// kind of tampering is named by verify-log at the line where it happened; a restart's chain
// names the previous chain's last checkpoint; each worker has its own chain.
import { spawn, spawnSync } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { readPrivateKey, readPublicKey, signBytes, type SigningKey } from '../../src/config/signing-keys.js'
import { checkpointMessage, lineHash, LogChain } from '../../src/evidence/log-chain.js'
import { readCheckpoints, verifyLog, type VerifyReport } from '../../src/evidence/verify-log.js'
import { createLogger } from '../../src/observability/logger.js'
import { loadConfig } from '../../src/config/load.js'
import { replay } from '../../src/evidence/replay.js'
import { createRuntime } from '../../src/runtime.js'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { startTestGateway, writeConfig } from '../support/gateway.js'
import { send } from '../support/http.js'

t.setTimeout(180_000)
const dir = mkdtempSync(join(tmpdir(), 'geofence-chain-'))

function keyPair (name: string): { privateFile: string, publicFile: string, signing: SigningKey, verifying: SigningKey } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const privateFile = join(dir, `${name}.pem`)
  const publicFile = join(dir, `${name}.pub`)
  writeFileSync(privateFile, privateKey.export({ type: 'pkcs8', format: 'pem' }))
  writeFileSync(publicFile, publicKey.export({ type: 'spki', format: 'pem' }))
  const signing = readPrivateKey(`file:${privateFile}`)
  const verifying = readPublicKey(`file:${publicFile}`)
  if ('problem' in signing || 'problem' in verifying) throw new Error('key')
  return { privateFile, publicFile, signing, verifying }
}
const logKey = keyPair('log')
const otherKey = keyPair('other')

function config (upstream: string, checkpointFile: string, extra = ''): string {
  return `
server: { host: 127.0.0.1, port: 0${extra} }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams: { anthropic: { url: "${upstream}", dialect: anthropic } }
policy: { rules: [ { name: frontier, models: ["claude-*"], deny: [HK], action: block } ] }
logging:
  integrity: { key: "file:${logKey.privateFile}", checkpoint_every: 10, checkpoint_interval: 1h, checkpoint_file: "${checkpointFile}" }
`
}

/** A gateway run: `n` requests, then a graceful stop; its log as written. */
async function run (upstream: string, checkpointFile: string, n: number): Promise<string> {
  const gw = await startTestGateway(config(upstream, checkpointFile), { reload: false })
  for (let i = 0; i < n; i++) {
    await send(`${gw.url}/anthropic/v1/messages`, { body: '{"model":"claude-sonnet-4-5"}', headers: { 'content-type': 'application/json', 'x-forwarded-for': i % 3 === 0 ? '203.198.0.1' : '8.8.8.8' } })
  }
  await gw.close()
  return gw.rawLogs()
}

let file = 0
function logFile (text: string): string {
  const f = join(dir, `log-${++file}.log`)
  writeFileSync(f, text)
  return f
}
const verify = async (text: string | string[], checkpoints?: string): Promise<VerifyReport> =>
  verifyLog([text].flat().map(logFile), { publicKeys: [logKey.verifying], ...(checkpoints === undefined ? {} : { checkpoints: await readCheckpoints(checkpoints) }) })
const lines = (text: string): string[] => text.split('\n').filter((l) => l !== '')
const join_ = (ls: string[]): string => `${ls.join('\n')}\n`

t.test('the gateway chains its log; verify-log names every kind of tampering', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const checkpoints = join(dir, 'checkpoints-1.jsonl')
  const text = await run(upstream.url, checkpoints, 40)
  const ls = lines(text)
  const parsed = ls.map((l) => JSON.parse(l) as Record<string, unknown>)

  t.test('every line chained, from a genesis naming the process and config', async (t) => {
    const genesis = parsed[0] ?? {}
    t.match(genesis, { msg: 'log chain started', seq: 0, prev: null, pid: process.pid, chain_start: { slot: 'main', key: logKey.signing.id, previous: null } })
    t.match((genesis['chain_start'] as Record<string, unknown>)['policy_revision'], /^[0-9a-f]{64}$/)
    parsed.forEach((l, i) => {
      if (l['seq'] !== i || l['chain'] !== genesis['chain']) t.fail(`line ${i} is seq ${String(l['seq'])}`)
      if (i > 0 && l['prev'] !== lineHash(ls[i - 1] ?? '')) t.fail(`line ${i}'s prev is not the hash of line ${i - 1}`)
    })
    t.equal(parsed.filter((l) => l['msg'] === 'decision').length, 40)
    t.equal(parsed.at(-1)?.['msg'], 'log chain closed', 'a graceful stop ends with the closing checkpoint')
    const records = await readCheckpoints(checkpoints)
    t.equal(records.length, parsed.filter((l) => l['checkpoint'] !== undefined).length, 'every checkpoint also in the checkpoint file')
    t.match(records.at(-1), { chain: genesis['chain'], slot: 'main', closed: true, seq: ls.length - 1 })
  })

  t.test('a chained log replays like any other', async (t) => {
    const candidate = await createRuntime(await loadConfig(writeConfig(config(upstream.url, join(dir, 'unused.jsonl')))), { identityKeys: false })
    const r = await replay([logFile(text)], candidate)
    t.match(r, { decisions: 40, unchanged: 40, other_lines: ls.length - 40, changed: [] })
  })

  t.test('untouched, it verifies', async (t) => {
    const v = await verify(text, checkpoints)
    t.equal(v.ok, true)
    t.match(v.chains, [{ lines: ls.length, closed: true, unsigned_tail: 0, problems: [] }])
    t.ok((v.chains[0]?.checkpoints ?? 0) >= 5, 'a checkpoint every 10 lines')
  })

  // The line numbers below are 1-based file lines; decision lines are from 3 on.
  const decisionAt = parsed.findIndex((l, i) => i > 20 && l['msg'] === 'decision')

  t.test('one line edited: named, and nothing else', async (t) => {
    const edited = [...ls]
    edited[decisionAt] = (edited[decisionAt] ?? '').replace('"action":"block"', '"action":"allow"').replace('"action":"allow","enforced"', '"action":"block","enforced"')
    t.not(edited[decisionAt], ls[decisionAt])
    const v = await verify(join_(edited))
    t.equal(v.ok, false)
    t.match(v.chains[0]?.problems, [{ kind: 'changed', seq: decisionAt, place: { line: decisionAt + 1 } }])
    t.equal(v.chains[0]?.problems.length, 1)
  })

  t.test('one line deleted', async (t) => {
    const v = await verify(join_(ls.filter((_, i) => i !== decisionAt)))
    t.match(v.chains[0]?.problems, [{ kind: 'removed', seq: decisionAt, message: new RegExp(`seq ${decisionAt} was removed`) }])
    t.equal(v.chains[0]?.problems.length, 1)
  })

  t.test('two lines swapped', async (t) => {
    const swapped = [...ls]
    ;[swapped[decisionAt], swapped[decisionAt + 1]] = [swapped[decisionAt + 1] ?? '', swapped[decisionAt] ?? '']
    const v = await verify(join_(swapped))
    t.match(v.chains[0]?.problems, [{ kind: 'reordered', seq: decisionAt, place: { line: decisionAt + 2 } }])
    t.equal(v.chains[0]?.problems.length, 1)
  })

  t.test('a line inserted', async (t) => {
    const forged = JSON.stringify({ ...parsed[decisionAt], decision_id: 'forged' })
    const v = await verify(join_([...ls.slice(0, decisionAt), forged, ...ls.slice(decisionAt)]))
    t.match(v.chains[0]?.problems, [{ kind: 'inserted', seq: decisionAt, place: { line: decisionAt + 1 } }])
    t.equal(v.chains[0]?.problems.length, 1)
    const unchained = await verify(join_([...ls.slice(0, decisionAt), '{"level":30,"msg":"decision"}', ...ls.slice(decisionAt)]))
    t.match(unchained.unchained, [{ kind: 'inserted', place: { line: decisionAt + 1 } }])
    t.equal(unchained.ok, false)
  })

  t.test('the tail truncated', async (t) => {
    const cut = ls.slice(0, ls.length - 4)
    const v = await verify(join_(cut))
    const lastCheckpoint = cut.map((l) => l.includes('"msg":"log checkpoint"')).lastIndexOf(true)
    t.match(v.chains[0], { closed: false, unsigned_tail: cut.length - 1 - lastCheckpoint, problems: [] }, 'the lines after the last checkpoint are unsigned, and the chain is not closed')
    t.ok(cut.length - 1 - lastCheckpoint > 0)
    const withFile = await verify(join_(cut), checkpoints)
    t.match(withFile.chains[0]?.problems, [{ kind: 'truncated', message: /ends at seq \d+, but the checkpoint file names its checkpoint at seq \d+/ }])
    // Cut in the middle of a line: that line is in no chain.
    const mid = await verify(`${join_(cut)}${(ls[cut.length] ?? '').slice(0, 40)}`)
    t.match(mid.unchained, [{ place: { line: cut.length + 1 } }])
  })

  t.test('a checkpoint forged with another key', async (t) => {
    const at = parsed.findIndex((l, i) => i > 15 && l['msg'] === 'log checkpoint')
    const l = parsed[at] as { chain: string, seq: number, prev: string }
    const forged = [...ls]
    const signature = signBytes(otherKey.signing, checkpointMessage(l.chain, l.seq, l.prev, false)).toString('base64')
    forged[at] = (ls[at] ?? '').replace(/"checkpoint":\{[^}]*\}/, `"checkpoint":{"key":"${otherKey.signing.id}","signature":"${signature}"}`)
    // The forger re-chains every line after the one it replaced, so that no prev breaks.
    for (let i = at + 1; i < forged.length; i++) forged[i] = (forged[i] ?? '').replace(/"prev":"[0-9a-f]{64}"\}$/, `"prev":"${lineHash(forged[i - 1] ?? '')}"}`)
    const v = await verify(join_(forged))
    t.match(v.chains[0]?.problems, [{ kind: 'forged', seq: at, message: `a checkpoint signed by key ${otherKey.signing.id}, which is not a given public key` }])
    // The same key id, another key's signature: it does not verify.
    forged[at] = (forged[at] ?? '').replace(otherKey.signing.id, logKey.signing.id)
    const v2 = await verify(join_(forged))
    t.match(v2.chains[0]?.problems[0], { kind: 'forged', message: /signature does not verify/ })
    // The re-chained checkpoints after it do not verify either: the forger has no key.
    t.ok((v2.chains[0]?.problems.length ?? 0) > 1)
  })

  t.test('the CLI names the first problem; exit 1 when tampered, 0 when verified', async (t) => {
    const cli = (...args: string[]): { status: number | null, stdout: string, stderr: string } => spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'verify-log', ...args], { encoding: 'utf8', timeout: 60_000 })
    const good = cli(logFile(text), '--public-key', logKey.publicFile, '--checkpoints', checkpoints)
    t.equal(good.status, 0, good.stderr)
    t.match(good.stdout, /no line was changed, removed, inserted or reordered[\s\S]*result: verified/)
    const bad = logFile(join_(ls.filter((_, i) => i !== decisionAt)))
    const r = cli(bad, '--public-key', logKey.publicFile)
    t.equal(r.status, 1)
    t.match(r.stdout, `FIRST PROBLEM removed: seq ${decisionAt} was removed: between ${bad}:${decisionAt} and ${bad}:${decisionAt + 1}`)
    t.equal(cli(bad, '--public-key', logKey.privateFile).status, 2, 'a private key is refused as the public key')
  })
})

t.test('a restart: the new chain names the previous chain\'s last checkpoint', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const checkpoints = join(dir, 'checkpoints-2.jsonl')
  const first = await run(upstream.url, checkpoints, 5)
  const second = await run(upstream.url, checkpoints, 5)
  const last = JSON.parse(lines(first).at(-1) ?? '{}') as Record<string, unknown>
  const genesis = JSON.parse(lines(second)[0] ?? '{}') as { chain_start: { previous: unknown } }
  t.same(genesis.chain_start.previous, { chain: last['chain'], seq: last['seq'], prev: last['prev'], closed: true, time: (genesis.chain_start.previous as { time: string }).time })
  const both = await verify([first, second], checkpoints)
  t.equal(both.ok, true, JSON.stringify(both.chains.map((c) => c.problems)))
  t.equal(both.chains.length, 2)
  // The first log's end cut off (its closing checkpoint too): the second chain's start says so.
  const v = await verify([join_(lines(first).slice(0, -2)), second])
  t.match(v.chains[0]?.problems, [{ kind: 'truncated', message: /chain [0-9a-f]+'s start .* names its checkpoint/ }])
})

t.test('with server.workers each worker has its own chain, and the primary one too', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const file = writeConfig(config(upstream.url, join(dir, 'checkpoints-3.jsonl'), ', workers: 2'))
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  let out = ''
  child.stdout.on('data', (c: Buffer) => { out += String(c) })
  const parsedOut = (): Array<Record<string, unknown>> => lines(out).map((l) => JSON.parse(l) as Record<string, unknown>)
  for (let i = 0; i < 600 && parsedOut().filter((l) => l['msg'] === 'listening').length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  const url = String(parsedOut().find((l) => l['msg'] === 'listening')?.['url'])
  for (let i = 0; i < 20; i++) await send(`${url}/anthropic/v1/messages`, { body: '{"model":"claude-sonnet-4-5"}', headers: { 'content-type': 'application/json', 'x-forwarded-for': '8.8.8.8' } })
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  t.equal(await exited, 0)
  const v = await verify(out)
  t.equal(v.ok, true, JSON.stringify(v.chains.map((c) => c.problems)))
  t.same(v.chains.map((c) => c.start?.slot).sort(), ['primary', 'worker-1', 'worker-2'])
  t.ok(v.chains.every((c) => c.closed), 'every process closed its chain at the stop')
})

t.test('an untouched log of 100,000 lines verifies in under 2 seconds', async (t) => {
  const lines: string[] = []
  const chain = new LogChain({ write: (s: string) => { lines.push(s) } }, { integrity: { key: logKey.signing, checkpointEvery: 10_000, checkpointIntervalMs: 3_600_000, checkpointFile: null }, slot: 'main', config: 'bench.yaml', policyRevision: 'x'.repeat(64) }, null)
  const logger = createLogger('info', chain)
  const line = { decision_id: '3282b68f-ccce-40db-8536-29d35ac4f5a9', policy_revision: 'ab'.repeat(32), client_ip: '203.198.0.1', path: '/anthropic/v1/messages', schema: 1, ip_source: 'x-forwarded-for', country: 'HK', registered_country: null, location_source: 'geoip', upstream: 'anthropic', method: 'POST', model: 'claude-sonnet-4-5', canonical_model: 'claude-sonnet-4-5', rule: 'anthropic-frontier', action: 'block', enforced: true, reason: 'country HK is in the deny list of rule anthropic-frontier', status: 451 }
  for (let i = 0; i < 99_990; i++) logger.info({ ...line, duration_ms: i / 100 }, 'decision')
  chain.close()
  const f = logFile(lines.join(''))
  const started = performance.now()
  const v = await verifyLog([f], { publicKeys: [logKey.verifying] })
  const seconds = (performance.now() - started) / 1000
  t.equal(v.lines, lines.length)
  t.ok(v.lines >= 100_000)
  t.equal(v.ok, true)
  t.match(v.chains[0], { closed: true, unsigned_tail: 0 })
  t.ok(seconds < 2, `verified ${v.lines} lines in ${seconds.toFixed(2)} s`)
  t.comment(`verify-log: ${v.lines} lines in ${seconds.toFixed(2)} s (${Math.round(v.lines / seconds)} lines/s); ${readFileSync(f).length} bytes`)
})
