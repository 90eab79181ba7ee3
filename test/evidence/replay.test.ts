// geofence replay: a log recorded by the real gateway, decided again under a candidate policy,
// must count exactly what a live gateway under the candidate decides for the same requests.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig, parseConfig } from '../../src/config/load.js'
import type { Identity } from '../../src/identity/verifier.js'
import { createLogger } from '../../src/observability/logger.js'
import { decisionRecord } from '../../src/pipeline/record.js'
import { beginRequest, decideRequest } from '../../src/pipeline/request.js'
import type { Runtime } from '../../src/runtime.js'
import { candidateLocator, replay, type ReplayReport } from '../../src/evidence/replay.js'
import { createRuntime } from '../../src/runtime.js'
import { fixtureDir, writeMmdb } from '../support/fixtures.js'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { startTestGateway, writeConfig } from '../support/gateway.js'
import { send } from '../support/http.js'

t.setTimeout(120_000)
const CLI = ['--import', 'tsx', 'src/cli.ts']
const cli = (...args: string[]): { status: number | null, stdout: string, stderr: string } => {
  const r = spawnSync(process.execPath, [...CLI, ...args], { encoding: 'utf8', timeout: 60_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

const IP = { CN: '114.114.114.114', US: '8.8.8.8', HK: '203.198.0.1', GB: '81.2.69.142', RU: '77.88.8.8', DE: '185.220.101.7', PRIVATE: '10.1.2.3' }

/** The recorded policy, and the candidate: HK moved to deny for Claude, gpt-4o-mini from HK and GB routed, RU let through for OpenAI. */
function policy (url: string, candidate: boolean, extra = ''): string {
  return `
server: { host: 127.0.0.1, port: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32] }
clients:
  payments-app: { token_sha256: ${sha('payments-token')} }
  research-app: { token_sha256: ${sha('research-token')} }
upstreams:
  anthropic: { url: "${url}", dialect: anthropic }
  openai: { url: "${url}", dialect: openai${candidate ? ', endpoints: ["GET /v1/models"]' : ''} }
  sovereign: { url: "${url}", dialect: openai-compatible }
policy:
  default: block
  unknown_location: block
  rules:
    - { name: anthropic-frontier, upstreams: [anthropic], models: ["claude-*"], deny: [CN, RU${candidate ? ', HK' : ''}], action: block }
${candidate ? '    - { name: mini-routed, upstreams: [openai], models: [gpt-4o-mini], deny: [HK, GB], action: { route: { upstream: sovereign, model: local-small } } }\n' : ''}    - { name: openai-frontier, upstreams: [openai], models: ["gpt-*"], deny: [CN${candidate ? '' : ', RU'}], action: block }
    - { name: research-only, upstreams: [anthropic], models: ["research-*"], clients: [research-app], deny: [], action: block }
    - { name: sovereign, upstreams: [sovereign], models: ["local-*"], deny: [], action: block }
${extra}`
}

function sha (token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

interface Req { ip: string, method: string, path: string, body?: unknown, token?: string, raw?: string }

/** Every combination the two policies differ on, and some they agree on, and refusals. */
function requests (): Req[] {
  const out: Req[] = []
  for (const ip of Object.values(IP)) {
    for (const token of ['payments-token', 'research-token']) {
      out.push({ ip, token, method: 'POST', path: '/anthropic/v1/messages', body: { model: 'claude-sonnet-4-5', max_tokens: 1, messages: [] } })
      out.push({ ip, token, method: 'POST', path: '/anthropic/v1/messages', body: { model: 'research-model', max_tokens: 1, messages: [] } })
      out.push({ ip, token, method: 'POST', path: '/openai/v1/chat/completions', body: { model: 'gpt-4o', messages: [] } })
      out.push({ ip, token, method: 'POST', path: '/openai/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [] } })
      out.push({ ip, token, method: 'GET', path: '/openai/v1/models' })
    }
  }
  // Refused before a decision: not JSON (400), no such mount (404), no client token (401).
  out.push({ ip: IP.US, token: 'payments-token', method: 'POST', path: '/openai/v1/chat/completions', raw: '{not json' })
  out.push({ ip: IP.US, token: 'payments-token', method: 'GET', path: '/nowhere/v1/models' })
  out.push({ ip: IP.US, method: 'GET', path: '/openai/v1/models' })
  return out
}

interface Run { log: string, ids: string[], lines: Array<Record<string, unknown>> }

async function record (yaml: string, reqs: readonly Req[], file?: string): Promise<Run> {
  const gw = await startTestGateway(yaml, { reload: false, ...(file === undefined ? {} : { file }) })
  const ids: string[] = []
  try {
    for (const r of reqs) {
      const res = await send(`${gw.url}${r.path}`, {
        method: r.method,
        headers: {
          'x-forwarded-for': r.ip,
          ...(r.token === undefined ? {} : { authorization: `Bearer ${r.token}` }),
          ...(r.body === undefined && r.raw === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(r.raw !== undefined ? { body: r.raw } : r.body === undefined ? {} : { body: JSON.stringify(r.body) }),
      })
      ids.push(String(res.headers['x-geofence-decision-id']))
    }
  } finally {
    await gw.close()
  }
  const dir = mkdtempSync(join(tmpdir(), 'geofence-replay-'))
  const log = join(dir, 'decisions.log')
  writeFileSync(log, gw.rawLogs())
  return { log, ids, lines: gw.decisions() }
}

/** What a request came to, as replay compares it: allow (a dry-run refusal too), block, or where it was routed. */
function outcome (l: Record<string, unknown>): string {
  if (l['action'] === 'allow' || l['enforced'] === false) return 'allow'
  return l['action'] === 'block' ? 'block' : `route ${String(l['routed_upstream'])} ${String(l['routed_model'])}`
}
const decided = (l: Record<string, unknown>): boolean => l['rule'] !== null || l['setting'] !== undefined

/** The counts replay must give, worked out from the two live runs request by request. */
function expected (before: Run, after: Run): Pick<ReplayReport, 'unchanged' | 'newly_blocked' | 'newly_allowed' | 'newly_routed' | 'not_decided' | 'changed'> {
  const byId = (run: Run): Map<string, Record<string, unknown>> => new Map(run.lines.map((l) => [String(l['decision_id']), l]))
  const a = byId(before)
  const b = byId(after)
  const want = { unchanged: 0, newly_blocked: 0, newly_allowed: 0, newly_routed: 0, not_decided: 0, changed: [] as string[] }
  before.ids.forEach((id, i) => {
    const was = a.get(id)
    const now = b.get(after.ids[i] ?? '')
    if (was === undefined || now === undefined) throw new Error(`request ${i} left no decision line`)
    if (!decided(was)) {
      want.not_decided++
      return
    }
    const [x, y] = [outcome(was), outcome(now)]
    if (x === y) {
      want.unchanged++
      return
    }
    want.changed.push(id)
    if (y === 'allow') want.newly_allowed++
    else if (y === 'block') want.newly_blocked++
    else want.newly_routed++
  })
  return want
}

t.test('replay counts what a live gateway under the candidate decides, request by request', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const reqs = requests()
  const before = await record(policy(upstream.url, false), reqs)
  const candidateFile = writeConfig(policy(upstream.url, true))
  const after = await record('', reqs, candidateFile)
  const want = expected(before, after)
  t.ok(want.newly_blocked > 0 && want.newly_allowed > 0 && want.newly_routed > 0 && want.not_decided === 3, `the two runs differ every way (${JSON.stringify({ ...want, changed: want.changed.length })})`)

  const candidate = await createRuntime(await loadConfig(candidateFile), { identityKeys: false })
  const report = await replay([before.log], candidate)
  t.match(report, { unchanged: want.unchanged, newly_blocked: want.newly_blocked, newly_allowed: want.newly_allowed, newly_routed: want.newly_routed, not_decided: want.not_decided }, 'the same counts')
  t.same(report.changed, want.changed, 'the same changed decision ids, in log order')
  t.equal(report.decisions + report.not_decided, reqs.length, 'one decision line per request')
  t.ok(report.other_lines > 0, 'start-up and shutdown lines are counted apart')
  t.same(report.breakdown.newly_routed.rule, { 'mini-routed': want.newly_routed }, 'newly routed, by the rule that routes')
  t.same(Object.keys(report.breakdown.newly_blocked.country).sort(), ['HK'], 'newly blocked: HK, for Claude')
  t.same(report.breakdown.newly_blocked.model, { 'claude-sonnet-4-5': want.newly_blocked })
  t.same(Object.keys(report.breakdown.newly_allowed.rule).sort(), ['mini-routed', 'openai-frontier', 'the upstream\'s endpoints list'], 'newly allowed: RU for OpenAI (gpt-4o-mini now passes mini-routed), and the listed endpoint')
  t.same(report.breakdown.newly_allowed.client, { 'payments-app': want.newly_allowed / 2, 'research-app': want.newly_allowed / 2 })

  // Under the policy that wrote the log, nothing changes.
  const same = await replay([before.log], await createRuntime(await loadConfig(writeConfig(policy(upstream.url, false))), { identityKeys: false }))
  t.match(same, { unchanged: want.unchanged + want.changed.length, newly_blocked: 0, newly_allowed: 0, newly_routed: 0, changed: [] }, 'the recorded policy replays unchanged')

  t.test('the CLI: --json for CI, the exit status follows --fail-on', async (t) => {
    const json = cli('replay', '--config', candidateFile, '--log', before.log, '--json')
    t.equal(json.status, 0, json.stderr)
    const parsed = JSON.parse(json.stdout) as ReplayReport
    t.match(parsed, { unchanged: want.unchanged, newly_blocked: want.newly_blocked, newly_allowed: want.newly_allowed, newly_routed: want.newly_routed, changed: want.changed })
    const text = cli('replay', '--config', candidateFile, before.log, '--fail-on', 'newly-allowed')
    t.equal(text.status, 1, 'newly allowed requests fail the run')
    t.match(text.stdout, /newly blocked\s+\d+\n\s+by rule now:\s+anthropic-frontier/)
    for (const id of want.changed) t.ok(text.stdout.includes(id), `lists ${id}`)
    const same = cli('replay', '--config', writeConfig(policy(upstream.url, false)), '--log', before.log, '--fail-on', 'changed')
    t.equal(same.status, 0, 'nothing changed: exit 0')
    t.equal(cli('replay', '--config', candidateFile, '--log', before.log, '--fail-on', 'sometimes').status, 2)
  })

  t.test('with new databases, callers whose full address was logged are located again', async (t) => {
    // The new database puts the US caller in HK: its Claude requests are newly blocked too.
    const db = writeMmdb(fixtureDir(), 'moved.mmdb', [{ cidr: '8.8.8.0/24', data: { country_code: 'HK' } }], 'test-country')
    const relocated = await replay([before.log], candidate, { locator: await candidateLocator(candidate, [db, 'embedded']) })
    const usClaude = before.lines.filter((l) => l['client_ip'] === IP.US && l['canonical_model'] === 'claude-sonnet-4-5').length
    t.equal(relocated.newly_blocked, want.newly_blocked + usClaude, 'the moved caller is newly blocked')
    t.equal(relocated.relocated, report.decisions, 'every decision located again')
    const cliRun = cli('replay', '--config', candidateFile, '--log', before.log, '--databases', `${db},embedded`, '--json')
    t.equal((JSON.parse(cliRun.stdout) as ReplayReport).newly_blocked, relocated.newly_blocked, cliRun.stderr)
  })
})

t.test('a truncated address is kept where the log put it', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const run = await record(policy(upstream.url, false, 'logging: { client_ip: truncated }'), [{ ip: IP.US, token: 'payments-token', method: 'POST', path: '/anthropic/v1/messages', body: { model: 'claude-sonnet-4-5', max_tokens: 1, messages: [] } }])
  const candidate = await createRuntime(await loadConfig(writeConfig(policy(upstream.url, true))), { identityKeys: false })
  const db = writeMmdb(fixtureDir(), 'moved.mmdb', [{ cidr: '8.8.8.0/24', data: { country_code: 'HK' } }], 'test-country')
  const r = await replay([run.log], candidate, { locator: await candidateLocator(candidate, [db]) })
  t.match(r, { unchanged: 1, relocated: 0, kept_location: 1 })
})

t.test('lines of an unknown schema are refused with where and why', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'geofence-replay-'))
  const config = writeConfig(policy('http://127.0.0.1:1', false))
  const line = { level: 30, time: '2026-11-24T04:33:17.436Z', decision_id: 'x', client_ip: '8.8.8.8', path: '/anthropic/v1/messages', schema: 2, upstream: 'anthropic', rule: 'r', action: 'allow', enforced: true, status: 200, duration_ms: 1, msg: 'decision' }
  const future = join(dir, 'future.log')
  writeFileSync(future, `{"level":30,"msg":"listening"}\n${JSON.stringify(line)}\n`)
  const r = cli('replay', '--config', config, '--log', future)
  t.equal(r.status, 2)
  t.match(r.stderr, `${future}:2: a decision line of schema 2; this geofence reads schema 1`)
  const old = join(dir, 'old.log')
  const { schema: _, ...unversioned } = line
  writeFileSync(old, `${JSON.stringify(unversioned)}\n`)
  t.match(cli('replay', '--config', config, '--log', old).stderr, `${old}:1: a decision line without a schema version`)
})

t.test('identities: the jurisdiction a token stated is held fixed, whoever the subject', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'geofence-replay-'))
  const jwks = join(dir, 'jwks.json')
  writeFileSync(jwks, JSON.stringify({ keys: [{ kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0', kid: 'k1' }] }))
  const yaml = (jurisdiction: string, deny: string): string => `
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams: { anthropic: { url: "http://127.0.0.1:1", dialect: anthropic } }
identity:
  required: false
  issuers: [ { issuer: "https://login.bank.example", jwks_file: "${jwks}", audiences: [llm-geofence], claims: { country: ctry, entity: legal_entity } } ]
policy:
  jurisdiction: [${jurisdiction}]
  rules: [ { name: claude, models: ["claude-*"], deny: [${deny}], action: block } ]
`
  const build = async (text: string): Promise<Runtime> => createRuntime(parseConfig(join(dir, 'c.yaml'), Buffer.from(text), {}), { identityKeys: false })
  const recorded = await build(yaml('network', 'CN'))
  const candidate = await build(yaml('network, identity', 'CN, HK, entity:bank-cn'))
  const who = (i: number): Identity | null => i % 4 === 3
    ? null
    : { issuer: 'https://login.bank.example', subject: `user-${i}`, country: ['HK', 'US', 'GB'][i % 3] ?? 'US', subdivisions: [], entity: i % 5 === 0 ? 'bank-cn' : 'bank-hk', sourceClaim: 'ctry', jti: `jti-${i}` }
  /** What `runtime` decides for request i, and the line it writes. */
  const decideOne = async (runtime: Runtime, i: number): Promise<{ line: string, action: string }> => {
    const head = { peer: '127.0.0.1', method: 'POST', url: '/anthropic/v1/messages', headers: { 'x-forwarded-for': ['8.8.8.8', '203.198.0.1'][i % 2] ?? '', 'content-type': 'application/json' } }
    const { state } = beginRequest(runtime, head, `id-${i}`)
    const identity = who(i)
    state.identity = identity
    state.identityResult = identity === null ? 'absent' : 'ok'
    if (identity === null) state.identityProblem = 'no identity token (x-geofence-identity)'
    await decideRequest(state, head, Buffer.from('{"model":"claude-sonnet-4-5"}'))
    const lines: string[] = []
    createLogger('info', { write: (s: string) => { lines.push(s) } }).info(decisionRecord(state, 'POST', head.url, 200), 'decision')
    const d = state.decision
    return { line: lines.join(''), action: d === null ? 'none' : d.action === 'allow' || !d.enforced ? 'allow' : d.action }
  }
  const log = join(dir, 'identities.log')
  const want = { unchanged: 0, newly_blocked: 0, newly_allowed: 0 }
  let text = ''
  for (let i = 0; i < 200; i++) {
    const before = await decideOne(recorded, i)
    const after = await decideOne(candidate, i)
    text += before.line
    if (before.action === after.action) want.unchanged++
    else if (after.action === 'block') want.newly_blocked++
    else want.newly_allowed++
  }
  writeFileSync(log, text)
  t.ok(want.newly_blocked > 0 && want.unchanged > 0, JSON.stringify(want))
  t.match(JSON.parse(text.split('\n')[3] ?? '{}'), { identity_reason: 'no identity token (x-geofence-identity)', identity_result: 'absent' }, 'why the identity was unknown is on the line')
  t.match(await replay([log], candidate), { ...want, newly_routed: 0, not_decided: 0 })
})
