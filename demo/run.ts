// npm run demo: see the gateway work, offline, in a few seconds. A fake provider on loopback
// (it speaks the Anthropic and OpenAI APIs), the gateway in front of it as a sidecar would
// run, a demo identity provider's key (in memory), and four calls an application would make
// for its users. Each call prints what the application got back and the gateway's decision line.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { startGateway } from '../src/server.js'
import { startFakeUpstream } from '../test/support/fake-upstream.js'

const ISSUER = 'https://login.bank.example/tenant/v2.0'
const dir = mkdtempSync(join(tmpdir(), 'geofence-demo-'))
const provider = await startFakeUpstream()
const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'demo', alg: 'ES256', use: 'sig' }] }))
writeFileSync(join(dir, 'config.yaml'), `
# The sidecar pattern: the application (on 127.0.0.1) forwards its end user's address in
# X-Forwarded-For and the user's identity token in x-geofence-identity.
server: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
client_ip: { trusted_proxies: [127.0.0.1/32, "::1/128"] }
logging: { client_ip: truncated }
identity:
  required: true
  issuers:
    - issuer: ${ISSUER}
      jwks_file: ${join(dir, 'jwks.json')}
      audiences: [llm-geofence]
      claims: { country: ctry, entity: legal_entity }
groups:
  restricted: [CN, HK, MO, RU, BY, IR, KP, CU, SY]
upstreams:
  anthropic: { url: "${provider.url}", dialect: anthropic, headers: { x-api-key: "held-by-the-gateway" }, strip_client_credentials: true }
  openai:    { url: "${provider.url}", dialect: openai }
  sovereign: { url: "${provider.url}", dialect: openai-compatible }
policy:
  default: block
  unknown_location: block
  jurisdiction: [network, identity]     # every location judged must pass
  rules:
    - { name: claude-frontier, upstreams: [anthropic], models: ["claude-*"], deny: [group:restricted], action: block }
    - { name: gpt-to-sovereign, upstreams: [openai], models: ["gpt-*"], deny: [group:restricted], action: { route: { upstream: sovereign, model: bank-llm-70b } } }
    - { name: sovereign, upstreams: [sovereign], models: ["bank-llm-*"], deny: [], action: block }
`)

const lines: string[] = []
const gw = await startGateway(join(dir, 'config.yaml'), { destination: { write: (s: string) => { lines.push(s) } }, reload: false })

const token = async (ctry: string, who: string): Promise<string> => new SignJWT({ ctry, legal_entity: `bank-${ctry.toLowerCase()}` })
  .setProtectedHeader({ alg: 'ES256', kid: 'demo' })
  .setIssuer(ISSUER).setAudience('llm-geofence').setSubject(who).setIssuedAt().setExpirationTime('5m')
  .sign(privateKey)

const calls: Array<{ title: string, path: string, ip: string, ctry: string, model: string }> = [
  { title: 'A New York analyst asks for Claude', path: '/anthropic/v1/messages', ip: '8.8.8.8', ctry: 'US', model: 'claude-sonnet-5-5' },
  { title: 'A Hong Kong analyst on the New York VPN asks for Claude', path: '/anthropic/v1/messages', ip: '8.8.8.8', ctry: 'HK', model: 'claude-sonnet-5-5' },
  { title: 'A New York analyst travelling in Hong Kong asks for Claude', path: '/anthropic/v1/messages', ip: '203.198.0.1', ctry: 'US', model: 'claude-sonnet-5-5' },
  { title: 'A Hong Kong analyst asks for GPT: sent to the bank\'s own model instead', path: '/openai/v1/chat/completions', ip: '203.198.0.1', ctry: 'HK', model: 'gpt-6.1-sol' },
]
for (const c of calls) {
  const res = await fetch(`${gw.url}${c.path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': c.ip, 'x-geofence-identity': await token(c.ctry, `employee-${c.ctry}`) },
    body: JSON.stringify({ model: c.model, max_tokens: 16, messages: [{ role: 'user', content: 'hello' }] }),
  })
  const body = await res.json() as Record<string, any>
  await new Promise((resolve) => setTimeout(resolve, 20))
  const decision = lines.map((l) => JSON.parse(l) as Record<string, any>).find((l) => l['decision_id'] === res.headers.get('x-geofence-decision-id'))
  const routed = res.headers.get('x-geofence-routed-model')
  process.stdout.write(`\n${c.title}\n  caller ${c.ip} (${decision?.['country'] ?? '?'}), identity ${c.ctry}, model ${c.model}\n`)
  process.stdout.write(`  -> HTTP ${res.status}${routed === null ? '' : `, routed to ${routed}`}: ${res.status === 200 ? JSON.stringify(body['model'] ?? body['choices']?.[0]?.message ?? body['content']) : String(body['error']?.message ?? JSON.stringify(body))}\n`)
  process.stdout.write(`  decision line: ${JSON.stringify({ action: decision?.['action'], rule: decision?.['rule'], reason: decision?.['reason'], status: decision?.['status'], identity: decision?.['identity']?.country, decision_id: decision?.['decision_id'] })}\n`)
}
const tokens = provider.calls.filter((c) => c.headers['x-geofence-identity'] !== undefined).length
process.stdout.write(`\nWhat reached the provider: ${provider.calls.length} of ${calls.length} calls; identity tokens among them: ${tokens}.\n`)
await gw.close()
await provider.close()
