// Hot reload: by rename and in place, config and databases, bad files keeping the running
// revision, requests in flight finishing under their own revision, and no request lost.
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { closeSync, mkdirSync, openSync, renameSync, symlinkSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import t, { type Test } from 'tap'
import { startFakeUpstream } from './support/fake-upstream.js'
import { fixtureDir, MAXMIND_COUNTRY } from './support/fixtures.js'
import { startTestGateway, type TestGateway } from './support/gateway.js'
import { send } from './support/http.js'
import { buildMmdb } from './support/mmdb-writer.js'

const UK = '81.2.69.160' // GB in the fixture database
const claude = JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 5, messages: [] })

function configText (upstream: string, db: string, deny: string): string {
  return `server: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32] }
geoip: { databases: ["${db}"] }
upstreams:
  anthropic: { url: "${upstream}", dialect: anthropic }
policy:
  rules:
    - { name: frontier, models: ["claude-*"], deny: [${deny}], action: block }
`
}

async function waitFor (what: string, cond: () => boolean, ms = 8000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

function ukDatabase (country: string): Buffer {
  return buildMmdb(MAXMIND_COUNTRY.map((e) => e.cidr === '81.2.69.0/24'
    ? { cidr: e.cidr, data: { country: { iso_code: country }, registered_country: { iso_code: country } } }
    : e), { databaseType: 'GeoLite2-Country' })
}

/** A config and a GB database in a fresh directory, as an operator would lay them out. */
function writeFiles (upstreamUrl: string): { dir: string, db: string, file: string } {
  const dir = fixtureDir()
  const db = join(dir, 'GeoLite2-Country.mmdb')
  writeFileSync(db, ukDatabase('GB'))
  const file = join(dir, 'config.yaml')
  writeFileSync(file, configText(upstreamUrl, db, 'CN'))
  return { dir, db, file }
}

async function ask (gw: TestGateway): Promise<{ status: number, line: Record<string, unknown> | undefined }> {
  const res = await send(`${gw.url}/anthropic/v1/messages`, { body: claude, headers: { 'content-type': 'application/json', 'x-forwarded-for': UK } })
  return { status: res.status, line: gw.decisions().find((d) => d['decision_id'] === res.headers['x-geofence-decision-id']) }
}

t.test('hot reload', async (t) => {
  const upstream = await startFakeUpstream({ streamGateMs: 10_000 })
  t.teardown(upstream.close)
  const { dir, db, file } = writeFiles(upstream.url)
  const gw = await startTestGateway('', { file, reload: { debounceMs: 50, pollMs: 300 } })
  t.teardown(gw.close)
  const reloads = (): Array<Record<string, unknown>> => gw.logs().filter((l) => l['msg'] === 'reloaded')
  const failures = (): Array<Record<string, unknown>> => gw.logs().filter((l) => String(l['msg']).startsWith('reload failed'))

  const first = await ask(gw)
  t.match(first, { status: 200, line: { country: 'GB', action: 'allow' } })
  const rev1 = gw.runtime.policy.revision

  t.test('a config replaced by rename (as Kubernetes ConfigMaps and editors do)', async (t) => {
    const tmp = join(dir, '.config.yaml.tmp')
    writeFileSync(tmp, configText(upstream.url, db, 'CN, GB'))
    renameSync(tmp, file)
    await waitFor('the reload', () => gw.runtime.policy.revision !== rev1)
    t.match(reloads().at(-1), { previous_revision: rev1, policy_revision: gw.runtime.policy.revision, trigger: /changed: config\.yaml/ })
    t.match(await ask(gw), { status: 451, line: { action: 'block', policy_revision: gw.runtime.policy.revision } })
  })

  t.test('a config written in place', async (t) => {
    const before = gw.runtime.policy.revision
    writeFileSync(file, configText(upstream.url, db, 'CN'))
    await waitFor('the reload', () => gw.runtime.policy.revision !== before)
    t.equal(gw.runtime.policy.revision, rev1, 'the same file gives the same revision')
    t.match(await ask(gw), { status: 200 })
  })

  t.test('a broken config keeps the running revision and logs the file and the reason', async (t) => {
    const count = failures().length
    writeFileSync(file, configText(upstream.url, db, 'CN, UK'))
    await waitFor('the failure', () => failures().length > count)
    t.match(failures().at(-1), { level: 50, file, reason: /"UK" is not a country code/, policy_revision: rev1 })
    t.equal(gw.runtime.policy.revision, rev1)
    t.match(await ask(gw), { status: 200, line: { policy_revision: rev1 } })
    const lastReload = async (): Promise<string | undefined> => /^geofence_config_last_reload_successful (\d)$/m.exec((await send(`${gw.adminUrl}/metrics`)).body)?.[1]
    t.equal(await lastReload(), '0', 'the metric an alert watches says so')
    const good = reloads().length
    writeFileSync(file, configText(upstream.url, db, 'CN'))
    await waitFor('the recovery', () => reloads().length > good)
    // Counted just after the line is logged.
    let last = await lastReload()
    for (let i = 0; i < 40 && last !== '1'; i++) last = await new Promise((resolve) => setTimeout(resolve, 25)).then(lastReload)
    t.equal(last, '1', 'and the alert clears')
  })

  t.test('a corrupt database written in place keeps the old one serving', async (t) => {
    const count = failures().length
    writeFileSync(db, Buffer.from('garbage, half a download'))
    await waitFor('the failure', () => failures().length > count)
    t.match(failures().at(-1), { reason: new RegExp(`${db.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: not a readable MaxMind database`) })
    t.match(await ask(gw), { status: 200, line: { country: 'GB' } })
  })

  t.test('a new database by rename (as geoipupdate does) is swapped in, with an empty cache', async (t) => {
    const before = reloads().length
    const tmp = join(dir, 'GeoLite2-Country.mmdb.tmp')
    writeFileSync(tmp, ukDatabase('FR'))
    renameSync(tmp, db)
    await waitFor('the reload', () => reloads().length > before)
    t.match(await ask(gw), { status: 200, line: { country: 'FR' } }, 'the cached GB answer is gone')
  })

  t.test('a request in flight finishes under the revision it started with', async (t) => {
    const started = send(`${gw.url}/anthropic/v1/messages`, { body: JSON.stringify({ model: 'claude-sonnet-4-5', stream: true }), headers: { 'content-type': 'application/json', 'x-forwarded-for': UK } })
    await waitFor('the stream to start', () => upstream.calls.some((c) => c.body.includes('"stream":true')))
    const before = gw.runtime.policy.revision
    writeFileSync(file, configText(upstream.url, db, 'CN, FR'))
    const result = await gw.reload('test')
    t.equal(result.ok, true)
    t.not(gw.runtime.policy.revision, before)
    upstream.releaseStream()
    const res = await started
    t.equal(res.status, 200)
    t.match(res.body, /event: message_stop/)
    t.match(gw.decisions().find((d) => d['decision_id'] === res.headers['x-geofence-decision-id']), { policy_revision: before, action: 'allow' })
    t.match(await ask(gw), { status: 451, line: { policy_revision: gw.runtime.policy.revision } })
  })

  t.test('no request fails during reloads under load', async (t) => {
    writeFileSync(file, configText(upstream.url, db, 'CN'))
    await gw.reload('test')
    let stop = false
    const statuses: number[] = []
    const worker = async (): Promise<void> => {
      while (!stop) statuses.push((await send(`${gw.url}/anthropic/v1/messages`, { body: claude, headers: { 'content-type': 'application/json', 'x-forwarded-for': UK } })).status)
    }
    const workers = Array.from({ length: 8 }, worker)
    for (let i = 0; i < 6; i++) {
      const tmp = join(dir, '.swap.tmp')
      writeFileSync(tmp, configText(upstream.url, db, i % 2 === 0 ? 'CN, RU' : 'CN'))
      renameSync(tmp, file)
      await gw.reload(`load ${i}`)
      await new Promise((resolve) => setTimeout(resolve, 60))
    }
    stop = true
    await Promise.all(workers)
    t.ok(statuses.length > 50, `${statuses.length} requests during 6 reloads`)
    t.same([...new Set(statuses)], [200], 'every one of them answered 200')
  })
})

/** `geofence serve` as an operator runs it (default debounce and polling), its log lines parsed. */
async function serve (t: Test, file: string): Promise<{ child: ChildProcess, lines: Array<Record<string, unknown>>, url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const lines: Array<Record<string, unknown>> = []
  createInterface({ input: child.stdout }).on('line', (l) => { lines.push(JSON.parse(l) as Record<string, unknown>) })
  let exited = false
  child.once('exit', () => { exited = true })
  await waitFor('listening', () => exited || lines.some((l) => l['msg'] === 'listening'), 20_000)
  if (exited) throw new Error('geofence serve exited')
  return { child, lines, url: String(lines.find((l) => l['msg'] === 'listening')?.['url']) }
}

t.test('SIGHUP reloads a running geofence serve', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const { file } = writeFiles(upstream.url)
  const { child, lines } = await serve(t, file)
  child.kill('SIGHUP')
  await waitFor('the reload', () => lines.some((l) => l['msg'] === 'reloaded' && l['trigger'] === 'SIGHUP'))
  t.pass('reloaded on SIGHUP')
  child.kill('SIGTERM')
})

t.test('a config rewritten in place in two writes is never applied half written', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const { db, file } = writeFiles(upstream.url)
  // The deny list in block style and last, so that the file cut after any of its items is a
  // valid config.
  const policy = (deny: string[]): string => configText(upstream.url, db, '').replace(/ +- \{.*\n$/, `    - name: frontier
      models: ["claude-*"]
      action: block
      deny:
${deny.map((c) => `        - ${c}\n`).join('')}`)
  writeFileSync(file, policy(['CN', 'GB', 'RU']))
  const { child, lines, url } = await serve(t, file)
  const firstHalf = policy(['CN']) // valid on its own, and it lets GB through
  const whole = policy(['CN', 'GB'])
  const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex')

  let stop = false
  const answers: Array<{ status: number, id: unknown }> = []
  const worker = async (): Promise<void> => {
    while (!stop) {
      const res = await send(`${url}/anthropic/v1/messages`, { body: claude, headers: { 'content-type': 'application/json', 'x-forwarded-for': UK } })
      answers.push({ status: res.status, id: res.headers['x-geofence-decision-id'] })
    }
  }
  const workers = Array.from({ length: 3 }, worker)
  await new Promise((resolve) => setTimeout(resolve, 100))
  // One open, two writes 100 ms apart (the default debounce is 250 ms). Directory events alone
  // are debounced past the second write; a reload asked for in between (a SIGHUP from another
  // tool, or the poll on a mount that sends no events) must wait for the file to settle too.
  const fd = openSync(file, 'w')
  writeSync(fd, firstHalf)
  child.kill('SIGHUP')
  await new Promise((resolve) => setTimeout(resolve, 100))
  writeSync(fd, whole.slice(firstHalf.length))
  closeSync(fd)
  const written = Date.now()
  await waitFor('the whole file to be in force', () => lines.some((l) => l['msg'] === 'reloaded' && l['policy_revision'] === sha256(whole)))
  t.comment(`the whole file was in force ${Date.now() - written} ms after its last write`)
  await new Promise((resolve) => setTimeout(resolve, 100))
  stop = true
  await Promise.all(workers)
  child.kill('SIGTERM')
  await new Promise((resolve) => child.once('exit', resolve))

  t.ok(answers.length > 20, `${answers.length} requests while the file was written`)
  t.same([...new Set(answers.map((a) => a.status))], [451], 'every request was blocked, as the old and the whole file both say')
  t.same(lines.filter((l) => l['policy_revision'] === sha256(firstHalf)).map((l) => l['msg']), [], 'no reload and no decision under the first half')
  const ids = new Set(answers.map((a) => a.id))
  t.equal(lines.filter((l) => l['msg'] === 'decision' && ids.has(l['decision_id'])).length, answers.length, 'a decision line for every request')
})

t.test('a Kubernetes ConfigMap update (a symlinked directory swapped by rename) is picked up', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const { dir, db } = writeFiles(upstream.url)
  // The kubelet's layout: config.yaml -> ..data/config.yaml, ..data -> ..<timestamp>/
  mkdirSync(join(dir, '..2026_11_24_01'))
  writeFileSync(join(dir, '..2026_11_24_01', 'config.yaml'), configText(upstream.url, db, 'CN'))
  symlinkSync('..2026_11_24_01', join(dir, '..data'))
  const file = join(dir, 'policy.yaml')
  symlinkSync(join('..data', 'config.yaml'), file)
  const gw = await startTestGateway('', { file, reload: { debounceMs: 50, pollMs: 0 } })
  t.teardown(gw.close)
  const before = gw.runtime.policy.revision
  t.match(await ask(gw), { status: 200 })
  // An update: a new timestamped directory, a new symlink, renamed over ..data.
  mkdirSync(join(dir, '..2026_11_24_02'))
  writeFileSync(join(dir, '..2026_11_24_02', 'config.yaml'), configText(upstream.url, db, 'CN, GB'))
  symlinkSync('..2026_11_24_02', join(dir, '..data_tmp'))
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'))
  await waitFor('the reload', () => gw.runtime.policy.revision !== before)
  t.match(await ask(gw), { status: 451, line: { policy_revision: gw.runtime.policy.revision } }, 'the new policy is in force (directory events only: polling is off)')
})
