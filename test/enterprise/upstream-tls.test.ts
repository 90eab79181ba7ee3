// Upstream TLS: a private CA made in the test signs the fake upstream's certificate; the
// gateway verifies it with the upstream's tls.ca and refuses it without; mutual TLS with a
// client certificate; servername and min_version; through the egress proxy too (HTTP and
// WebSocket); and the files read again by a reload.
import { copyFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import WebSocket from 'ws'
import { parseConfig } from '../../src/config/load.js'
import type { ConfigError } from '../../src/errors.js'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { startForwardProxy } from '../support/forward-proxy.js'
import { startTestGateway, writeConfig } from '../support/gateway.js'
import { json, send } from '../support/http.js'
import { LOOPBACK_SAN, makeCa } from '../support/pki.js'

const fromUs = { 'content-type': 'application/json', 'x-forwarded-for': '8.8.8.8' }
const message = json({ model: 'claude-sonnet-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }).body
const POLICY = `
client_ip: { trusted_proxies: [127.0.0.1/32] }
policy: { rules: [ { name: everyone, deny: [], action: block } ] }
`

t.test('upstream tls: a private CA, mutual TLS, servername, min_version, through the proxy', async (t) => {
  const ca = makeCa('Bank Root CA')
  const server = ca.issue('upstream', { subject: '/O=Bank/CN=llm-upstream', san: LOOPBACK_SAN })
  const named = ca.issue('named', { subject: '/O=Bank/CN=llm.bank.internal', san: ['DNS:llm.bank.internal'] })
  const client = ca.issue('gateway-client', { subject: '/O=Bank/CN=llm-geofence', usage: 'client' })
  const other = makeCa('Someone Else')

  const upstream = await startFakeUpstream({ tls: { key: server.key, cert: server.cert } })
  t.teardown(upstream.close)
  const mutual = await startFakeUpstream({ tls: { key: server.key, cert: server.cert, ca: ca.cert, requestCert: true, rejectUnauthorized: true } })
  t.teardown(mutual.close)
  const byName = await startFakeUpstream({ tls: { key: named.key, cert: named.cert } })
  t.teardown(byName.close)
  const old = await startFakeUpstream({ tls: { key: server.key, cert: server.cert, maxVersion: 'TLSv1.2' } })
  t.teardown(old.close)
  const proxy = await startForwardProxy()
  t.teardown(proxy.close)

  const gw = await startTestGateway(`
server: { host: 127.0.0.1, port: 0 }
egress: { proxy: "${proxy.url}", no_proxy: [localhost] }
upstreams:
  trusted: { url: "${upstream.url}", dialect: anthropic, tls: { ca: "file:${ca.certFile}" } }
  untrusted: { url: "${upstream.url}", dialect: anthropic, proxy: none }
  wrong-ca: { url: "${upstream.url}", dialect: anthropic, tls: { ca: "file:${other.certFile}" } }
  mutual: { url: "${mutual.url}", dialect: anthropic, tls: { ca: "file:${ca.certFile}", cert: "file:${client.certFile}", key: "file:${client.keyFile}" } }
  no-client-cert: { url: "${mutual.url}", dialect: anthropic, tls: { ca: "file:${ca.certFile}" } }
  by-name: { url: "${byName.url}", dialect: anthropic, tls: { ca: "file:${ca.certFile}", servername: llm.bank.internal } }
  by-address: { url: "${byName.url}", dialect: anthropic, tls: { ca: "file:${ca.certFile}" } }
  old: { url: "${old.url}", dialect: anthropic, tls: { ca: "file:${ca.certFile}", min_version: TLSv1.3 } }
  old-ok: { url: "${old.url}", dialect: anthropic, tls: { ca: "file:${ca.certFile}" } }
  openai: { url: "${upstream.url}", dialect: openai, tls: { ca: "file:${ca.certFile}" } }
${POLICY}`)
  t.teardown(gw.close)
  const call = async (name: string): Promise<{ status: number, body: any }> => {
    const res = await send(`${gw.url}/${name}/v1/messages`, { body: message, headers: fromUs })
    return { status: res.status, body: res.json() }
  }

  t.test('verified with tls.ca, through the proxy: an HTTPS upstream reached only through a CONNECT tunnel', async (t) => {
    const before = proxy.calls.length
    t.match(await call('trusted'), { status: 200, body: { type: 'message' } })
    t.match(proxy.calls.slice(before), [{ hostname: '127.0.0.1', port: Number(new URL(upstream.url).port), isHttp: false }])
    t.match(upstream.calls.at(-1), { url: '/v1/messages' })
  })

  t.test('refused without the CA (the system\'s CAs do not know it), or with another CA', async (t) => {
    for (const name of ['untrusted', 'wrong-ca']) {
      const before = upstream.calls.length
      const res = await call(name)
      t.equal(res.status, 502, name)
      t.match(res.body.error, { type: 'api_error', message: /^the upstream's TLS certificate was not accepted \((?:UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\)$/ }, name)
      t.equal(upstream.calls.length, before, `${name}: no request was sent`)
    }
  })

  t.test('mutual TLS: the gateway presents its client certificate', async (t) => {
    t.match(await call('mutual'), { status: 200 })
    const without = await call('no-client-cert')
    t.equal(without.status, 502, 'an upstream that requires a client certificate refuses the gateway without one')
  })

  t.test('servername: SNI and the name checked, when the URL is an address', async (t) => {
    t.match(await call('by-name'), { status: 200 })
    const res = await call('by-address')
    t.equal(res.status, 502)
    t.match(res.body.error.message, /ERR_TLS_CERT_ALTNAME_INVALID/)
  })

  t.test('min_version: TLSv1.3 refuses an upstream that stops at TLS 1.2', async (t) => {
    t.match(await call('old-ok'), { status: 200 })
    t.equal((await call('old')).status, 502)
  })

  t.test('a wss:// Realtime WebSocket is verified with tls.ca and tunnelled through the proxy', async (t) => {
    const before = proxy.calls.length
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/openai/v1/realtime?model=gpt-realtime`, { headers: { 'x-forwarded-for': '8.8.8.8' } })
    const first = await new Promise<Record<string, any>>((resolve, reject) => {
      ws.once('message', (d) => { resolve(JSON.parse(d.toString()) as Record<string, any>) })
      ws.once('error', reject)
    })
    ws.close()
    t.match(first, { type: 'session.created' })
    t.match(proxy.calls.slice(before), [{ hostname: '127.0.0.1', isHttp: false }])
  })
})

t.test('the files are read again by a reload, and a reload watches them', async (t) => {
  const first = makeCa('First CA')
  const second = makeCa('Second CA')
  const server = second.issue('upstream', { subject: '/CN=upstream', san: LOOPBACK_SAN })
  const upstream = await startFakeUpstream({ tls: { key: server.key, cert: server.cert } })
  t.teardown(upstream.close)
  const file = writeConfig('')
  const caFile = join(file, '..', 'upstream-ca.pem')
  copyFileSync(first.certFile, caFile)
  writeFileSync(file, `
server: { host: 127.0.0.1, port: 0 }
upstreams:
  anthropic: { url: "${upstream.url}", dialect: anthropic, tls: { ca: "file:${caFile}" } }
admin: { host: 127.0.0.1, port: 0 }
${POLICY}`)
  const gw = await startTestGateway('', { file, reload: { debounceMs: 50, pollMs: 100 } })
  t.teardown(gw.close)
  const status = async (): Promise<number> => (await send(`${gw.url}/anthropic/v1/messages`, { body: message, headers: fromUs })).status
  t.equal(await status(), 502, 'the first CA did not sign the upstream')
  const revision = gw.runtime
  // Replaced as Kubernetes replaces a mounted secret: a new file renamed over the old one.
  copyFileSync(second.certFile, `${caFile}.new`)
  const { renameSync } = await import('node:fs')
  renameSync(`${caFile}.new`, caFile)
  for (let i = 0; i < 50 && gw.runtime === revision; i++) await new Promise((resolve) => setTimeout(resolve, 100))
  t.not(gw.runtime, revision, 'a new revision was built when the CA file changed')
  t.equal(await status(), 200, 'and it connects with the new CA')
  t.match(gw.logs().find((l) => l['msg'] === 'reloaded'), { trigger: 'changed: upstream-ca.pem' })
})

t.test('upstream tls is checked at load, with the line and column', async (t) => {
  const ca = makeCa()
  const a = ca.issue('a', { subject: '/CN=a', usage: 'client' })
  const b = ca.issue('b', { subject: '/CN=b', usage: 'client' })
  const problems = (tls: string, url = 'https://x.example'): string[] => {
    try {
      parseConfig('tls.yaml', Buffer.from(`upstreams:\n  a:\n    url: "${url}"\n    dialect: anthropic\n    tls: ${tls}\npolicy: { rules: [] }\n`), {})
      return []
    } catch (err) {
      return (err as ConfigError).problems.map((p) => `${p.line ?? '-'}:${p.col ?? '-'} ${p.message}`)
    }
  }
  t.same(problems(`{ ca: "file:${ca.certFile}", cert: "file:${a.certFile}", key: "file:${a.keyFile}", servername: llm.bank, min_version: TLSv1.3 }`), [])
  t.same(problems(`{ ca: "${ca.certFile}" }`), ['5:12 write the file as file:PATH (e.g. file:/etc/llm-geofence/ca.pem)'])
  t.same(problems('{ ca: "file:/nonexistent/ca.pem" }'), ['5:12 cannot read /nonexistent/ca.pem: ENOENT'])
  t.same(problems(`{ ca: "file:${ca.keyFile}" }`), [`5:12 ${ca.keyFile} holds no certificate in PEM (-----BEGIN CERTIFICATE-----)`])
  t.same(problems(`{ cert: "file:${a.certFile}" }`), ['5:5 a certificate and its private key go together: give cert and key'])
  t.same(problems(`{ cert: "file:${a.certFile}", key: "file:${b.keyFile}" }`), [`5:${27 + a.certFile.length} ${b.keyFile} is not the private key of the certificate in ${a.certFile}`])
  t.same(problems('{ min_version: TLSv1.1 }'), ['5:12 must be one of: TLSv1.2, TLSv1.3'])
  t.same(problems(`{ ca: "file:${ca.certFile}" }`, 'http://x.example'), ['5:5 tls applies to an https:// upstream'])
})
