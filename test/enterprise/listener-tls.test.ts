// The listener over TLS, with client certificates: curl against a private CA made in the test;
// a certificate names a client by its subject (RFC 4514, most specific first) or a SPIFFE URI,
// and rules judge that client as they judge token clients; `require` completes no handshake
// without a certificate; the certificate is renewed by a reload without a restart.
import { createHash } from 'node:crypto'
import { copyFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import tls from 'node:tls'
import t from 'tap'
import { distinguishedName } from '../../src/config/client-certificates.js'
import { parseConfig } from '../../src/config/load.js'
import type { ConfigError } from '../../src/errors.js'
import { curl } from '../support/curl.js'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { startTestGateway, writeConfig } from '../support/gateway.js'
import { LOOPBACK_SAN, makeCa } from '../support/pki.js'

const sha = (s: string): string => createHash('sha256').update(s).digest('hex')
const claude = JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] })
const json = { 'content-type': 'application/json', 'x-forwarded-for': '8.8.8.8' }

const ca = makeCa('Bank Client CA')
const serverCert = ca.issue('listener', { subject: '/O=Bank/CN=llm-geofence', san: LOOPBACK_SAN })
const payments = ca.issue('payments', { subject: '/C=HK/O=Bank, Ltd/CN=payments', usage: 'client' })
const research = ca.issue('research', { subject: '/O=Bank/CN=research-app', san: ['URI:spiffe://bank/ns/research/sa/app'], usage: 'client' })
const unnamed = ca.issue('unnamed', { subject: '/O=Bank/CN=somebody', usage: 'client' })
const stranger = makeCa('Elsewhere').issue('stranger', { subject: '/C=HK/O=Bank, Ltd/CN=payments', usage: 'client' })

function config (upstream: string, mode: 'request' | 'require', files = { cert: serverCert.certFile, key: serverCert.keyFile }): string {
  return `
server:
  host: 127.0.0.1
  port: 0
  tls: { cert: "file:${files.cert}", key: "file:${files.key}", client_ca: "file:${ca.certFile}", client_certificate: ${mode} }
client_ip: { trusted_proxies: [127.0.0.1/32] }
clients:
  payments: { certificate: { subject: "CN=payments,O=Bank\\\\, Ltd,C=HK" } }
  research: { certificate: { san_uri: "spiffe://bank/ns/research/sa/app" } }
  batch-job: { token_sha256: ${sha('tok-batch')} }
upstreams:
  anthropic: { url: "${upstream}", dialect: anthropic }
policy:
  default: block
  rules:
    - { name: payments-no-frontier, clients: [payments], models: ["claude-*"], allow: [], action: block }
    - { name: everyone-else, models: ["*"], deny: [], action: block }
`
}

t.test('server.tls with client_certificate: request', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(config(upstream.url, 'request'))
  t.teardown(gw.close)
  t.match(gw.url, /^https:\/\/127\.0\.0\.1:\d+$/)
  const call = async (cert?: { certFile: string, keyFile: string }, headers: Record<string, string> = {}): ReturnType<typeof curl> =>
    curl(`${gw.url}/anthropic/v1/messages`, { cacert: ca.certFile, ...(cert === undefined ? {} : { cert: cert.certFile, key: cert.keyFile }), headers: { ...json, ...headers }, body: claude })

  t.test('a certificate names a client by its subject, and a rule that denies that client refuses it', async (t) => {
    const res = await call(payments)
    t.equal(res.exit, 0)
    t.equal(res.status, 451)
    t.match(JSON.parse(res.body), { type: 'error', error: { type: 'permission_error', message: /blocked by rule "payments-no-frontier"/ } })
    t.match(gw.decisions().at(-1), { client: 'payments', rule: 'payments-no-frontier', action: 'block', status: 451 })
  })

  t.test('a SPIFFE URI names a client; a token client still works beside certificates', async (t) => {
    const res = await call(research)
    t.equal(res.status, 200)
    t.match(gw.decisions().at(-1), { client: 'research', rule: 'everyone-else', action: 'allow' })
    const token = await call(undefined, { authorization: 'Bearer tok-batch' })
    t.equal(token.status, 200)
    t.match(gw.decisions().at(-1), { client: 'batch-job' })
    t.equal(upstream.calls.at(-1)?.headers.authorization, undefined, 'the client token is not forwarded')
  })

  t.test('no certificate and no token, a certificate no client has, or one from another CA: 401', async (t) => {
    const none = await call()
    t.equal(none.status, 401)
    t.match(JSON.parse(none.body), { error: { type: 'authentication_error', message: 'a client certificate or a client token the gateway knows is required (Authorization: Bearer, x-api-key or api-key)' } })
    t.equal((await call(unnamed)).status, 401)
    const foreign = await call(stranger)
    t.equal(foreign.status, 401, 'the same subject, signed by a CA the gateway does not trust')
    t.match(JSON.parse(foreign.body).error.message, /^the client certificate was not accepted \(/)
    const both = await call(research, { authorization: 'Bearer tok-batch' })
    t.equal(both.status, 401)
    t.equal(JSON.parse(both.body).error.message, 'the client certificate names client "research" and the token client "batch-job"')
  })
})

t.test('client_certificate: require completes no handshake without a certificate', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const gw = await startTestGateway(config(upstream.url, 'require'))
  t.teardown(gw.close)
  const without = await curl(`${gw.url}/anthropic/v1/messages`, { cacert: ca.certFile, headers: json, body: claude })
  t.not(without.exit, 0, `curl fails the handshake (exit ${without.exit})`)
  t.equal(upstream.calls.length, 0)
  const withCert = await curl(`${gw.url}/anthropic/v1/messages`, { cacert: ca.certFile, cert: research.certFile, key: research.keyFile, headers: json, body: claude })
  t.equal(withCert.status, 200)
  const foreign = await curl(`${gw.url}/anthropic/v1/messages`, { cacert: ca.certFile, cert: stranger.certFile, key: stranger.keyFile, headers: json, body: claude })
  t.not(foreign.exit, 0, 'a certificate from another CA fails the handshake')
})

t.test('certificate clients only: a client\'s own provider key goes on, unless the upstream holds the key and strips the client\'s', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  // No token clients: the certificate names the client, so the client's key headers are not a
  // gateway token; they are the provider's key, which the gateway does not hold for `own-key`.
  const gw = await startTestGateway(`
server:
  host: 127.0.0.1
  port: 0
  tls: { cert: "file:${serverCert.certFile}", key: "file:${serverCert.keyFile}", client_ca: "file:${ca.certFile}", client_certificate: require }
client_ip: { trusted_proxies: [127.0.0.1/32] }
clients:
  research: { certificate: { san_uri: "spiffe://bank/ns/research/sa/app" } }
upstreams:
  own-key: { url: "${upstream.url}", dialect: anthropic }
  held-key: { url: "${upstream.url}", dialect: anthropic, strip_client_credentials: true, headers: { x-api-key: "gateway-held-key" } }
policy:
  rules:
    - { name: research-only, clients: [research], models: ["*"], deny: [], action: block }
`)
  t.teardown(gw.close)
  const call = async (name: string): ReturnType<typeof curl> => curl(`${gw.url}/${name}/v1/messages`, { cacert: ca.certFile, cert: research.certFile, key: research.keyFile, headers: { ...json, 'x-api-key': 'client-provider-key', cookie: 'session=1' }, body: claude })

  t.equal((await call('own-key')).status, 200)
  t.match(upstream.calls.at(-1)?.headers, { 'x-api-key': 'client-provider-key', cookie: 'session=1' }, 'pass-through: the client\'s provider key reaches the provider')
  t.match(gw.decisions().at(-1), { client: 'research', status: 200 })
  t.equal((await call('held-key')).status, 200)
  t.match(upstream.calls.at(-1)?.headers, { 'x-api-key': 'gateway-held-key' }, 'held: the gateway\'s key replaces it')
  t.equal(upstream.calls.at(-1)?.headers.cookie, undefined, 'and every other client credential is dropped')
  t.notMatch(gw.rawLogs(), /client-provider-key|gateway-held-key/, 'neither key is in a log line')
})

t.test('a renewed listener certificate is served after a reload, without a restart', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const file = writeConfig('')
  const dir = join(file, '..')
  copyFileSync(serverCert.certFile, join(dir, 'tls.pem'))
  copyFileSync(serverCert.keyFile, join(dir, 'tls.key'))
  writeFileSync(file, `${config(upstream.url, 'request', { cert: join(dir, 'tls.pem'), key: join(dir, 'tls.key') })}\nadmin: { host: 127.0.0.1, port: 0 }\n`)
  const gw = await startTestGateway('', { file, reload: { debounceMs: 50, pollMs: 100 } })
  t.teardown(gw.close)
  const servedCn = async (): Promise<string> => new Promise((resolve, reject) => {
    const { port } = new URL(gw.url)
    const socket = tls.connect({ host: '127.0.0.1', port: Number(port), ca: ca.cert, servername: 'localhost' }, () => {
      const cn = socket.getPeerCertificate().subject.CN
      socket.end()
      resolve(String(cn))
    })
    socket.once('error', reject)
  })
  t.equal(await servedCn(), 'llm-geofence')
  const renewed = ca.issue('renewed', { subject: '/O=Bank/CN=llm-geofence-2027', san: LOOPBACK_SAN })
  // As cert-manager renews a mounted secret: the key first, then the certificate, each renamed in.
  copyFileSync(renewed.keyFile, join(dir, 'tls.key.new'))
  copyFileSync(renewed.certFile, join(dir, 'tls.pem.new'))
  renameSync(join(dir, 'tls.key.new'), join(dir, 'tls.key'))
  renameSync(join(dir, 'tls.pem.new'), join(dir, 'tls.pem'))
  for (let i = 0; i < 50 && !gw.logs().some((l) => l['msg'] === 'listener certificate reloaded'); i++) await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(await servedCn(), 'llm-geofence-2027', 'new connections get the renewed certificate')
  t.equal((await curl(`${gw.url}/anthropic/v1/messages`, { cacert: ca.certFile, cert: research.certFile, key: research.keyFile, headers: json, body: claude })).status, 200)
})

t.test('distinguished names: one spelling for the config and the certificates', async (t) => {
  const rows: Array<[string, string | null]> = [
    ['CN=payments,O=Bank,C=HK', 'CN=payments,O=Bank,C=HK'],
    ['cn=payments, o=Bank , c=HK', 'CN=payments,O=Bank,C=HK'],
    ['commonName=payments,organizationName=Bank', 'CN=payments,O=Bank'],
    ['CN=payments,O=Bank\\, Ltd', 'CN=payments,O=Bank\\, Ltd'],
    ['CN=payments,O=Bank\\2C Ltd', 'CN=payments,O=Bank\\, Ltd'],
    ['CN=a+UID=7,O=Bank', 'CN=a+UID=7,O=Bank'],
    ['UID=7+CN=a,O=Bank', 'CN=a+UID=7,O=Bank'],
    ['CN=payments,', null],
    ['payments', null],
    ['CN=', null],
  ]
  for (const [text, want] of rows) t.equal(distinguishedName(text), want, text)
})

t.test('server.tls and certificate clients are checked at load', async (t) => {
  const problems = (yaml: string): string[] => {
    try {
      parseConfig('tls.yaml', Buffer.from(`${yaml}\nupstreams: { a: { url: "https://x.example", dialect: anthropic } }\npolicy: { rules: [] }\n`), {})
      return []
    } catch (err) {
      return (err as ConfigError).problems.map((p) => `${p.line ?? '-'}:${p.col ?? '-'} ${p.message}`)
    }
  }
  const tlsLine = `server: { tls: { cert: "file:${serverCert.certFile}", key: "file:${serverCert.keyFile}", client_ca: "file:${ca.certFile}", client_certificate: request } }`
  t.same(problems(`${tlsLine}\nclients: { p: { certificate: { subject: "CN=p,O=Bank" } } }`), [])
  t.same(problems('clients: { p: { certificate: { subject: "CN=p,O=Bank" } } }'), ['1:17 the listener asks for no client certificate: set server.tls with client_ca and client_certificate: request or require'])
  t.same(problems(`${tlsLine}\nclients: { p: { certificate: { subject: "C=HK,O=Bank,CN=p" } } }`), ['2:32 "C=HK,O=Bank,CN=p" is written least specific first: RFC 4514 puts the most specific first ("CN=...,O=...,C=..."), the reverse of openssl\'s /C=../O=../CN=..'])
  t.same(problems(`${tlsLine}\nclients: { p: { certificate: { subject: "CN=p", san_uri: "spiffe://x" } } }`), ['2:17 give one of subject (e.g. "CN=payments,O=Bank") and san_uri (e.g. spiffe://bank/ns/payments/sa/app)'])
  t.same(problems(`${tlsLine}\nclients: { p: {} }`), ['2:12 say how the client is known: token_sha256, certificate, or both'])
  t.same(problems(`server: { tls: { cert: "file:${serverCert.certFile}", key: "file:${serverCert.keyFile}", client_certificate: require } }`), [`1:${serverCert.certFile.length + serverCert.keyFile.length + 47} require needs client_ca: the CAs client certificates are verified against`])
})
