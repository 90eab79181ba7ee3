// One policy for a fleet (policy_source): three gateways, each started from a signed bootstrap
// file, pull a signed policy from a loopback HTTPS server (a private CA made here, policy_source.ca)
// with If-None-Match. A new policy is picked up at each gateway's next poll; a wrongly signed,
// unsigned or invalid one, a 404, a 500 or a server that is down leave the last good policy in
// force (counted by result); a restart with cache_dir while the server is down starts on the
// cached approved policy; without an approved policy, or without signatures, nothing starts.
import { createHash, generateKeyPairSync } from 'node:crypto'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { signPolicy } from '../../src/config/policy-signature.js'
import { readPrivateKey, type SigningKey } from '../../src/config/signing-keys.js'
import { runCli } from '../support/cli.js'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { startForwardProxy } from '../support/forward-proxy.js'
import { startTestGateway, type TestGateway } from '../support/gateway.js'
import { send } from '../support/http.js'
import { LOOPBACK_SAN, makeCa } from '../support/pki.js'
import { startPolicyServer } from '../support/policy-server.js'

t.setTimeout(240_000)
const dir = mkdtempSync(join(tmpdir(), 'geofence-fleet-'))

function keyPair (name: string): { publicFile: string, key: SigningKey } {
  const pair = generateKeyPairSync('ed25519')
  const privateFile = join(dir, `${name}.pem`)
  const publicFile = join(dir, `${name}.pub`)
  writeFileSync(privateFile, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }))
  writeFileSync(publicFile, pair.publicKey.export({ type: 'spki', format: 'pem' }))
  const key = readPrivateKey(`file:${privateFile}`)
  if ('problem' in key) throw new Error(key.problem)
  return { publicFile, key }
}
const compliance = keyPair('compliance')
const stranger = keyPair('stranger')

const ca = makeCa('Policy Test CA')
const serverPem = ca.issue('policy-server', { subject: '/O=Test/CN=policy.bank.test', san: LOOPBACK_SAN })
const server = await startPolicyServer(serverPem)
t.teardown(async () => { await server.stop().catch(() => {}) })
const upstream = await startFakeUpstream()
t.teardown(upstream.close)

const POLL = '200ms'
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex')

/** A published policy: a complete config without the bootstrap's sections. */
function policyDoc (deny: string, more = ''): string {
  return `# the bank's fleet policy
upstreams: { anthropic: { url: "${upstream.url}", dialect: anthropic } }
policy:
  default: block
  unknown_location: block
  rules:
    - { name: frontier, models: ["claude-*"], deny: [${deny}], action: block }
${more}`
}

let n = 0
/** The signature `geofence sign` makes for `doc`. */
async function signed (doc: string, key: SigningKey): Promise<string> {
  const file = join(dir, `doc-${++n}.yaml`)
  writeFileSync(file, doc)
  const r = await signPolicy(file, key)
  if ('problem' in r) throw new Error(r.problem)
  return readFileSync(r.sigFile, 'utf8')
}
async function publish (doc: string, key: SigningKey | null = compliance.key): Promise<void> {
  server.publish(doc, key === null ? null : await signed(doc, key))
}

/** A bootstrap file for gateway `name` (its own document path, so the server's log tells the gateways apart), signed unless said. */
async function bootstrap (name: string, opts: { cacheDir?: string | null, proxy?: string, sign?: boolean, signatureSection?: boolean, url?: string, more?: string } = {}): Promise<string> {
  const home = join(dir, name)
  mkdirSync(home, { recursive: true })
  const file = join(home, 'bootstrap.yaml')
  const cacheDir = opts.cacheDir === undefined ? join(home, 'cache') : opts.cacheDir
  writeFileSync(file, `
server: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32] }
${opts.signatureSection === false ? '' : `policy_signature: { public_keys: ["file:${compliance.publicFile}"] }`}
policy_source:
  url: ${opts.url ?? `${server.origin}/fleet/${name}.yaml`}
  poll: ${POLL}
  ca: "file:${ca.certFile}"
${cacheDir === null ? '' : `  cache_dir: ${cacheDir}\n`}${opts.proxy === undefined ? '' : `  proxy: ${opts.proxy}\n`}${opts.more ?? ''}`)
  if (opts.sign !== false) {
    const r = await signPolicy(file, compliance.key)
    if ('problem' in r) throw new Error(r.problem)
  }
  return file
}

async function start (file: string): Promise<TestGateway> {
  const gw = await startTestGateway('', { file, reload: { debounceMs: 20, pollMs: 0 } })
  t.teardown(gw.close)
  return gw
}

/** Waits for something the gateways show (a revision, a counter, a request the server saw); never a bare sleep. */
async function until (what: string, ok: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

async function fetches (gw: TestGateway, result: string): Promise<number> {
  const m = new RegExp(`geofence_policy_source_fetches_total\\{result="${result}"\\} (\\d+)`).exec(await gw.metrics.registry.metrics())
  return Number(m?.[1] ?? NaN)
}

/** A request from a caller in the United States, through the gateway: its status. */
async function ask (gw: TestGateway): Promise<number> {
  const r = await send(`${gw.url}/anthropic/v1/messages`, { body: '{"model":"claude-sonnet-4-5","max_tokens":1,"messages":[]}', headers: { 'content-type': 'application/json', 'x-forwarded-for': '8.8.8.8' } })
  return r.status
}

const v1 = policyDoc('CN')
const v2 = policyDoc('CN, US')
const names = ['g1', 'g2', 'g3']
const gateways: TestGateway[] = []
const files: string[] = []

t.test('three gateways start on the published policy; each poll sends If-None-Match and a 304 keeps it', async (t) => {
  await publish(v1)
  for (const name of names) {
    const file = await bootstrap(name)
    files.push(file)
    gateways.push(await start(file))
  }
  for (const [i, gw] of gateways.entries()) {
    t.equal(gw.runtime.policy.revision, sha256(v1), `${names[i]}: the fetched policy is in force`)
    t.equal(await ask(gw), 200, `${names[i]}: a US caller passes under v1`)
    t.match(gw.decisions().at(-1), { policy_revision: sha256(v1), policy_key: compliance.key.id }, 'the decision line names the fetched revision and the key that signed it')
    t.match(gw.logs().find((l) => l['msg'] === 'listening'), { policy_source: `${server.origin}/fleet/${names[i]}.yaml`, policy_key: compliance.key.id })
  }
  for (const name of names) {
    await until(`${name} polls with If-None-Match`, () => server.requests.some((r) => r.path === `/fleet/${name}.yaml` && r.status === 304))
    const conditional = server.requests.filter((r) => r.path === `/fleet/${name}.yaml` && r.status === 304)
    t.ok(conditional.every((r) => r.ifNoneMatch === server.etagOf(v1)), `${name}: If-None-Match carries the ETag of the policy in force`)
  }
  for (const gw of gateways) {
    t.equal(gw.runtime.policy.revision, sha256(v1), 'a 304 keeps the policy')
    // The server logs its 304 as it answers; the gateway counts it once the answer is in.
    await until('the 304 counted', async () => (await fetches(gw, 'not_modified')) >= 1)
    t.ok(await fetches(gw, 'not_modified') >= 1, 'counted as not_modified')
    t.equal(await fetches(gw, 'updated'), 1, 'one policy applied (at start)')
    t.match(await gw.metrics.registry.metrics(), /geofence_policy_source_last_success_timestamp_seconds \d/)
    t.match(await gw.metrics.registry.metrics(), /geofence_policy_source_poll_seconds 0\.2/)
  }
})

t.test('a changed policy is picked up by every gateway at its next poll', async (t) => {
  const signature = await signed(v2, compliance.key)
  const mark = server.requests.length
  server.publish(v2, signature)
  for (const gw of gateways) await until('the new revision', () => gw.runtime.policy.revision === sha256(v2))
  for (const [i, gw] of gateways.entries()) {
    const first = server.requests.slice(mark).find((r) => r.path === `/fleet/${names[i]}.yaml`)
    t.match(first, { status: 200, etag: server.etagOf(v2), ifNoneMatch: server.etagOf(v1) }, `${names[i]}: the first poll after publishing fetched the new policy`)
    t.equal(await ask(gw), 451, `${names[i]}: a US caller is blocked under v2`)
    t.match(gw.decisions().at(-1), { policy_revision: sha256(v2), policy_key: compliance.key.id })
    t.match(gw.logs().find((l) => l['msg'] === 'policy source: new policy applied'), { policy_revision: sha256(v2), etag: server.etagOf(v2) })
    t.equal(await fetches(gw, 'updated'), 2)
  }
})

/** Publishes what must be refused, waits until every gateway has counted `result` for it, and checks v2 still decides. */
async function refused (t: Test, what: string, result: string, publishIt: () => Promise<void>, reason: RegExp): Promise<void> {
  const before = await Promise.all(gateways.map(async (gw) => fetches(gw, result)))
  await publishIt()
  for (const [i, gw] of gateways.entries()) await until(`${names[i]} counts ${result} (${what})`, async () => (await fetches(gw, result)) > (before[i] ?? 0))
  for (const [i, gw] of gateways.entries()) {
    t.equal(gw.runtime.policy.revision, sha256(v2), `${what}: ${names[i]} keeps the last good policy`)
    t.equal(await ask(gw), 451, `${what}: ${names[i]} still decides by it`)
    t.ok(gw.logs().some((l) => l['msg'] === 'policy source: not applied; the last good policy stays in force' && l['result'] === result && reason.test(String(l['reason']))), `${what}: logged with the reason`)
  }
}

t.test('a wrongly signed, unsigned or invalid policy is never applied', async (t) => {
  const v3 = policyDoc('CN')
  await refused(t, 'signed by another key', 'bad_signature', async () => { await publish(`${v3}# by a stranger\n`, stranger.key) }, /is signed by key [0-9a-f]{16}, which is not one of policy_signature.public_keys/)
  await refused(t, 'no signature', 'bad_signature', async () => { await publish(`${v3}# unsigned\n`, null) }, /the policy is not signed: .*\.sig answered 404/)
  await refused(t, "another document's signature", 'bad_signature', async () => { server.publish(`${v3}# altered\n`, await signed(v3, compliance.key)) }, /does not verify with key [0-9a-f]{16}: the config changed after it was signed/)
  await refused(t, 'signed but invalid', 'invalid', async () => { await publish(policyDoc('CN', '    - { name: other, upstreams: [nowhere], deny: [], action: block }\n')) }, /unknown upstream "nowhere"/)
  await refused(t, 'signed but sets a bootstrap section', 'invalid', async () => { await publish(`server: { port: 1 }\n${v3}`) }, /a fetched policy cannot set server/)
  const logged = gateways[0]?.logs().find((l) => l['msg'] === 'reload failed; the running revision stays in force' && /nowhere/.test(String(l['reason'])))
  t.match(logged, { file: `${server.origin}/fleet/g1.yaml`, policy_revision: sha256(v2) }, 'an invalid policy is a failed reload, named by its URL')
})

t.test('the server answering 404 or 500, or down: the last good policy stays in force', async (t) => {
  await publish(v2)
  server.mode = '404'
  await refused(t, '404', 'not_found', async () => {}, /answered 404/)
  server.mode = '500'
  await refused(t, '500', 'server_error', async () => {}, /answered 500/)
  server.mode = 'ok'
  await refused(t, 'the server down', 'unreachable', async () => { await server.stop() }, /could not be fetched/)
})

t.test('a restart with cache_dir while the server is down starts on the cached approved policy', async (t) => {
  const [first] = gateways
  await first?.close()
  const again = await start(files[0] ?? '')
  t.equal(again.runtime.policy.revision, sha256(v2), 'the cached policy is in force')
  t.equal(await ask(again), 451)
  t.match(again.decisions().at(-1), { policy_revision: sha256(v2), policy_key: compliance.key.id })
  t.match(again.logs().find((l) => /starting on the cached copy/.test(String(l['msg']))), { result: 'unreachable', policy_revision: sha256(v2) })

  const empty = await bootstrap('no-cache')
  await t.rejects(startTestGateway('', { file: empty, reload: false }), { message: /policy_source\.url: no approved policy from https:\/\/127\.0\.0\.1:\d+\/fleet\/no-cache\.yaml: .*could not be fetched.*; cache_dir holds no approved copy/ }, 'no cache and no server: nothing starts')

  // A cached copy altered on disk is verified again, and refused.
  const cacheDir = join(dir, 'g2', 'cache')
  const tampered = await bootstrap('tampered', { cacheDir })
  const cacheFile = join(cacheDir, readdirSync(cacheDir).find((f) => f.endsWith('.json')) ?? '')
  const cached = JSON.parse(readFileSync(cacheFile, 'utf8')) as Record<string, unknown> & { document: string }
  // g2's approved copy, with its document edited, as the cache of a gateway whose source is another URL.
  writeFileSync(join(cacheDir, `policy-${sha256(`${server.origin}/fleet/tampered.yaml`).slice(0, 16)}.json`), JSON.stringify({
    ...cached,
    url: `${server.origin}/fleet/tampered.yaml`,
    document: Buffer.from(Buffer.from(cached.document, 'base64').toString('utf8').replace('CN, US', 'CN')).toString('base64'),
  }))
  await t.rejects(startTestGateway('', { file: tampered, reload: false }), { message: /the copy in cache_dir is refused too: .*does not verify with key/ }, 'an altered cache is refused')

  // The server back: the gateway started from cache asks with the cached ETag and is told it is current.
  await server.restart()
  const mark = server.requests.length
  await until('a 304 for the cached copy', () => server.requests.slice(mark).some((r) => r.path === '/fleet/g1.yaml' && r.status === 304))
  t.equal(server.requests.slice(mark).find((r) => r.path === '/fleet/g1.yaml')?.ifNoneMatch, server.etagOf(v2), 'If-None-Match carries the cached ETag')
  t.equal(again.runtime.policy.revision, sha256(v2))
})

t.test('through the egress proxy: the policy is fetched through a CONNECT tunnel', async (t) => {
  const proxy = await startForwardProxy()
  t.teardown(proxy.close)
  const gw = await start(await bootstrap('proxied', { proxy: proxy.url }))
  t.equal(gw.runtime.policy.revision, sha256(v2))
  const port = Number(new URL(server.origin).port)
  t.match(proxy.calls, [{ hostname: '127.0.0.1', port, isHttp: false }], 'a tunnel to the policy server')
})

t.test('no signatures, no start: one line naming the setting', async (t) => {
  const cases: Array<[string, Promise<string>, RegExp]> = [
    ['an unsigned bootstrap', bootstrap('unsigned', { sign: false }), /bootstrap\.yaml: the config is not signed: policy_signature requires .*bootstrap\.yaml\.sig/],
    ['a URL without policy_signature', bootstrap('keyless', { signatureSection: false, sign: false }), /bootstrap\.yaml:\d+:\d+: policy_source: a policy fetched from a URL must be signed: set policy_signature/],
    ['an http:// URL', bootstrap('plain', { url: 'http://127.0.0.1:1/fleet.yaml' }), /policy_source\.url: must be an https:\/\/ URL/],
  ]
  for (const [what, made, why] of cases) {
    const r = await runCli('serve', '--config', await made)
    t.equal(r.status, 2, `${what}: exit 2`)
    const lines = r.stderr.trim().split('\n')
    t.match(lines[0], why, `${what}: the line names the setting`)
    t.match(lines[1], /^1 problem\(s\) in .*; nothing was started\.$/)
  }
  const extra = await bootstrap('extra', { more: 'upstreams: { a: { url: "https://x", dialect: anthropic } }\n' })
  const r = await runCli('serve', '--config', extra)
  t.match(r.stderr, /upstreams: a bootstrap file \(with policy_source\) holds only server, admin, client_ip, logging, policy_signature, policy_source/)

  const valid = await runCli('validate', files[1] ?? '')
  t.equal(valid.status, 0)
  t.match(valid.stdout, `valid bootstrap (signed by key ${compliance.key.id}); the policy is fetched from ${server.origin}/fleet/g2.yaml every 0.2s`)
  const explained = await runCli('explain', '--config', files[1] ?? '', '--ip', '8.8.8.8', '--model', 'claude-sonnet-4-5')
  t.equal(explained.status, 2)
  t.match(explained.stderr, /policy_source: this is a bootstrap file: its policy is fetched from .*; check the published policy itself/)
})
