// policy_signature: a config must come with FILE.sig over its bytes and its trust files. Unsigned,
// wrongly signed, signed by an unknown key, or a trust file changed after signing: the gateway
// does not start, and a reload keeps the running revision (logged and counted). Signed: it
// starts, and every decision line names the key.
import { spawnSync } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../../src/config/load.js'
import { signPolicy, trustFilePaths } from '../../src/config/policy-signature.js'
import { readPrivateKey, type SigningKey } from '../../src/config/signing-keys.js'
import { ConfigError } from '../../src/errors.js'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { startTestGateway, type TestGateway } from '../support/gateway.js'
import { send } from '../support/http.js'

t.setTimeout(180_000)
const dir = mkdtempSync(join(tmpdir(), 'geofence-signed-'))

function keyPair (name: string, type: 'ed25519' | 'p256'): { privateFile: string, publicFile: string, key: SigningKey } {
  const pair = type === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const privateFile = join(dir, `${name}.pem`)
  const publicFile = join(dir, `${name}.pub`)
  writeFileSync(privateFile, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }))
  writeFileSync(publicFile, pair.publicKey.export({ type: 'spki', format: 'pem' }))
  const key = readPrivateKey(`file:${privateFile}`)
  if ('problem' in key) throw new Error(key.problem)
  return { privateFile, publicFile, key }
}
const ed = keyPair('policy-ed25519', 'ed25519')
const p256 = keyPair('policy-p256', 'p256')
const stranger = keyPair('stranger', 'ed25519')

const jwks = join(dir, 'jwks.json')
const JWKS = JSON.stringify({ keys: [{ kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0', kid: 'k1' }] })
writeFileSync(jwks, JWKS)

function policy (upstream: string, deny: string, opts: { signatureSection?: boolean } = {}): string {
  return `
server: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32] }
upstreams: { anthropic: { url: "${upstream}", dialect: anthropic } }
identity:
  required: false
  issuers:
    - { issuer: "https://login.bank.example", jwks_file: "${jwks}", audiences: [llm-geofence], claims: { country: ctry } }
policy: { rules: [ { name: frontier, models: ["claude-*"], deny: [${deny}], action: block } ] }
${opts.signatureSection === false ? '' : `policy_signature: { public_keys: ["file:${ed.publicFile}", "file:${p256.publicFile}"] }`}
`
}

let n = 0
/** A config file written atomically (a rename), as the README asks. */
function write (file: string, text: string): void {
  const tmp = `${file}.tmp${++n}`
  writeFileSync(tmp, text)
  renameSync(tmp, file)
}
async function sign (file: string, key: SigningKey): Promise<void> {
  const r = await signPolicy(file, key)
  if ('problem' in r) throw new Error(r.problem)
}
async function refusal (file: string): Promise<string> {
  try {
    await loadConfig(file)
  } catch (err) {
    if (err instanceof ConfigError) return err.message
    throw err
  }
  return 'loaded'
}

t.test('sign covers the config and its trust files, not secrets or databases', async (t) => {
  t.same(trustFilePaths(Buffer.from(`
identity: { issuers: [ { issuer: x, jwks_file: /etc/jwks.json } ] }
egress: { tls: { ca: "file:/etc/ca.pem", client_ca: ["/etc/a.pem", "-----BEGIN CERTIFICATE-----\\nMIIB"] } }
upstreams: { a: { url: "https://x", dialect: anthropic, headers: { x-api-key: "file:/run/secrets/key" } } }
geoip: { databases: [/var/lib/GeoIP2-City.mmdb] }
`)), ['/etc/jwks.json', '/etc/ca.pem', '/etc/a.pem'])
  t.match(trustFilePaths(Buffer.from('identity: { issuers: [ { jwks_file: "${JWKS_DIR}/jwks.json" } ] }')), { problem: /names an environment variable/ })
})

t.test('start: unsigned, wrongly signed, an unknown key, a trust file changed: refused; signed: served', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const file = join(dir, 'start.yaml')
  write(file, policy(upstream.url, 'HK'))
  const refused = async (why: RegExp | string): Promise<void> => {
    t.match(await refusal(file), why)
    await t.rejects(startTestGateway('', { file, reload: false }), { message: why })
  }
  await refused(`the config is not signed: policy_signature requires ${file}.sig (geofence sign --key KEY ${file})`)
  await sign(file, stranger.key)
  await refused(`${file}.sig is signed by key ${stranger.key.id}, which is not one of policy_signature.public_keys (${ed.key.id}, ${p256.key.id})`)
  await sign(file, ed.key)
  write(file, policy(upstream.url, 'HK, CN'))
  await refused(/does not verify with key [0-9a-f]{16}: the config changed after it was signed/)
  await sign(file, ed.key)
  writeFileSync(jwks, JWKS.replace('"k1"', '"k2"'))
  await refused(/jwks\.json changed after the config was signed \(sha256 [0-9a-f]{12}… when signed, [0-9a-f]{12}… now\)/)
  writeFileSync(jwks, JWKS)
  const sig = JSON.parse(readFileSync(`${file}.sig`, 'utf8')) as { signature: string }
  writeFileSync(`${file}.sig`, JSON.stringify({ ...sig, signature: Buffer.alloc(64, 7).toString('base64') }))
  await refused(/does not verify with key [0-9a-f]{16}: the signature is not one that key made over these files/)

  for (const signer of [ed, p256]) {
    await sign(file, signer.key)
    const gw = await startTestGateway('', { file, reload: false })
    t.teardown(gw.close)
    await send(`${gw.url}/anthropic/v1/messages`, { body: '{"model":"claude-sonnet-4-5"}', headers: { 'content-type': 'application/json', 'x-forwarded-for': '8.8.8.8' } })
    t.match(gw.decisions(), [{ policy_key: signer.key.id, policy_revision: gw.runtime.policy.revision }], `${signer.key.algorithm}: the decision line names the key`)
    t.match(gw.logs().find((l) => l['msg'] === 'listening'), { policy_key: signer.key.id })
    await gw.close()
  }
})

t.test('reload: only a config signed by a key read at start replaces the running revision', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const file = join(dir, 'reload.yaml')
  write(file, policy(upstream.url, 'HK'))
  await sign(file, ed.key)
  const gw: TestGateway = await startTestGateway('', { file, reload: false })
  t.teardown(gw.close)
  const started = gw.runtime.policy.revision
  const failures = async (): Promise<number> => Number(/geofence_config_reloads_total\{result="failure"\} (\d+)/.exec(await gw.metrics.registry.metrics())?.[1])
  const expectRefused = async (what: string, why: RegExp): Promise<void> => {
    const r = await gw.reload(what)
    t.equal(r.ok, false, `${what}: refused`)
    t.match(r.error, why, what)
    t.equal(gw.runtime.policy.revision !== started ? 'replaced' : 'kept', 'kept', `${what}: the running revision stays`)
    t.match(gw.logs().at(-1), { msg: 'reload failed; the running revision stays in force', reason: why, policy_revision: started })
  }

  write(file, policy(upstream.url, 'HK, CN'))
  rmSync(`${file}.sig`)
  await expectRefused('unsigned', /the config is not signed/)
  await sign(file, stranger.key)
  await expectRefused('an unknown key', /signed by key [0-9a-f]{16}, which is not one of policy_signature\.public_keys/)
  const signedFor = policy(upstream.url, 'HK, CN')
  await sign(file, ed.key)
  write(file, `${signedFor}# changed after signing\n`)
  await expectRefused('wrongly signed', /the config changed after it was signed/)
  write(file, signedFor)
  writeFileSync(jwks, JWKS.replace('"k1"', '"k3"'))
  await expectRefused('a trust file changed after signing', /jwks\.json changed after the config was signed/)
  writeFileSync(jwks, JWKS)
  t.equal(await failures(), 4, 'every refusal counted (geofence_config_reloads_total{result="failure"})')
  t.match(await gw.metrics.registry.metrics(), /geofence_config_last_reload_successful 0/)

  const ok = await gw.reload('signed')
  t.equal(ok.ok, true, ok.error ?? '')
  t.not(gw.runtime.policy.revision, started, 'a signed config replaces the revision')
  t.match(gw.logs().at(-1), { msg: 'reloaded', policy_key: ed.key.id })

  // A signed config without policy_signature: applied, but the requirement read at start stays.
  write(file, policy(upstream.url, 'HK', { signatureSection: false }))
  await sign(file, p256.key)
  const dropped = await gw.reload('drops its own requirement')
  t.equal(dropped.ok, true)
  t.match(gw.logs().find((l) => l['msg'] === 'policy_signature is read at start only: the keys read at start still decide which signatures are accepted'), { policy_signature_in_file: null })
  write(file, policy(upstream.url, 'HK, RU', { signatureSection: false }))
  rmSync(`${file}.sig`)
  await expectRefusedAgain()
  async function expectRefusedAgain (): Promise<void> {
    const r = await gw.reload('unsigned, after the section was dropped')
    t.equal(r.ok, false, 'an unsigned config is still refused')
    t.match(r.error, /the config is not signed/)
  }
})

t.test('the CLI: sign, then validate and serve check it', async (t) => {
  const cli = (...args: string[]): { status: number | null, stdout: string, stderr: string } => spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { encoding: 'utf8', timeout: 60_000 })
  const file = join(dir, 'cli.yaml')
  write(file, policy('http://127.0.0.1:1', 'HK'))
  const unsigned = cli('validate', file)
  t.equal(unsigned.status, 2)
  t.match(unsigned.stderr, `${file}: the config is not signed`)
  const serve = cli('serve', '--config', file)
  t.equal(serve.status, 2, 'serve refuses to start')
  t.match(serve.stderr, /the config is not signed[\s\S]*nothing was started/)
  const signed = cli('sign', '--key', ed.privateFile, file)
  t.equal(signed.status, 0, signed.stderr)
  t.match(signed.stdout, `${file}.sig: ${file} (sha256 `)
  t.match(signed.stdout, `signed by key ${ed.key.id} (ed25519), with the trust files it names:\n  ${jwks} (sha256 `)
  const valid = cli('validate', file)
  t.equal(valid.status, 0, valid.stderr)
  t.match(valid.stdout, `signed by key ${ed.key.id}`)
  t.equal(cli('sign', '--key', ed.publicFile, file).status, 2, 'a public key cannot sign')
})
