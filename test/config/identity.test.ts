// The identity section and the policy's jurisdiction lists are checked at load, every problem
// with its key path: whose tokens, where their keys are, which algorithms, which claims.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { ConfigError } from '../../src/errors.js'

const BASE = `upstreams:
  anthropic: { url: https://api.anthropic.com, dialect: anthropic }
`
const POLICY = `policy:
  jurisdiction: [network, identity]
  rules:
    - { name: r, deny: [HK], action: block }
`
const ISSUER = `identity:
  issuers:
    - issuer: https://login.bank.example/tenant/v2.0
      discovery: true
      audiences: [llm-geofence]
      claims: { country: ctry, subdivision: work_subdivision, entity: legal_entity }
      values: { HKG-IFC: HK, LON-CW: GB }
`

function problems (yaml: string): string[] {
  try {
    parseConfig('p.yaml', Buffer.from(yaml), {})
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n')
    throw err
  }
  return []
}

t.test('the README example loads, with the documented defaults', async (t) => {
  const config = parseConfig('p.yaml', Buffer.from(BASE + POLICY + ISSUER), {})
  t.same(config.policy.jurisdiction, ['network', 'identity'])
  t.same(config.policy.rules[0]?.jurisdiction, ['network', 'identity'], 'a rule takes policy.jurisdiction')
  const id = config.identity
  t.ok(id)
  t.match(id, { header: 'x-geofence-identity', required: true, clockSkewMs: 60_000, maxStaleMs: 86_400_000, refreshMs: 600_000, refetchCooldownMs: 30_000 })
  t.match(id?.issuers[0], {
    issuer: 'https://login.bank.example/tenant/v2.0',
    keys: { kind: 'discovery', url: 'https://login.bank.example/tenant/v2.0/.well-known/openid-configuration' },
    audiences: ['llm-geofence'],
    algorithms: ['RS256', 'ES256', 'EdDSA'],
    claims: { country: { text: 'ctry' }, subdivision: { text: 'work_subdivision' }, entity: { text: 'legal_entity' }, subject: { text: 'sub' } },
  })
  t.same([...(id?.issuers[0]?.values ?? [])], [['HKG-IFC', 'HK'], ['LON-CW', 'GB']])
})

t.test('without the jurisdiction key, network only (as before identity existed)', async (t) => {
  const config = parseConfig('p.yaml', Buffer.from(`${BASE}policy:\n  rules:\n    - { name: r, deny: [HK], action: block }\n`), {})
  t.same(config.policy.jurisdiction, ['network'])
  t.same(config.policy.rules[0]?.jurisdiction, ['network'])
  t.equal(config.identity, null)
})

t.test('the identity source needs an identity section', async (t) => {
  t.same(problems(BASE + POLICY), ['p.yaml:4:27: policy.jurisdiction[1]: the identity source needs an identity section (identity: { issuers: [...] }) that says whose tokens to believe'])
  t.same(problems(`${BASE}policy:\n  rules:\n    - { name: r, deny: [HK], action: block, jurisdiction: [identity] }\n`),
    ['p.yaml:5:60: policy.rules[0].jurisdiction[0]: the identity source needs an identity section (identity: { issuers: [...] }) that says whose tokens to believe'])
  t.match(problems(`${BASE}policy:\n  jurisdiction: [network, network]\n  rules: []\n`), [/policy\.jurisdiction: must NOT have duplicate items/])
  t.match(problems(`${BASE}policy:\n  jurisdiction: [caller]\n  rules: []\n`), [/policy\.jurisdiction\[0\]: must be one of: network, identity/])
})

t.test('algorithms: none and HS* are refused, whatever the case; unknown ones named', async (t) => {
  const withAlgs = (algs: string): string => BASE + POLICY + ISSUER.replace('      audiences:', `      algorithms: [${algs}]\n      audiences:`)
  t.same(problems(withAlgs('RS256, PS384, ES512, EdDSA')), [])
  t.same(problems(withAlgs('none')), ['p.yaml:11:20: identity.issuers[0].algorithms[0]: "none" is never accepted: an unsigned token proves nothing'])
  t.match(problems(withAlgs('RS256, HS256')), [/identity\.issuers\[0\]\.algorithms\[1\]: "HS256" is never accepted: its key is a shared secret/])
  t.match(problems(withAlgs('hs512')), [/"hs512" is never accepted/])
  t.same(problems(withAlgs('rs256')), ['p.yaml:11:20: identity.issuers[0].algorithms[0]: "rs256" must be written RS256'])
  t.match(problems(withAlgs('RSA-OAEP')), [/unknown algorithm "RSA-OAEP" \(known: RS256, RS384, .*EdDSA, Ed25519\)/])
  t.match(problems(withAlgs('')), [/algorithms: an empty list accepts no token/])
})

t.test('keys: exactly one source; https unless on this machine', async (t) => {
  const keys = (lines: string, issuer = 'https://login.bank.example/tenant/v2.0'): string => BASE + POLICY + ISSUER
    .replace('      discovery: true\n', lines)
    .replace('https://login.bank.example/tenant/v2.0', issuer)
  t.same(problems(keys('      jwks_uri: https://login.bank.example/keys\n')), [])
  t.same(problems(keys('      jwks_uri: http://127.0.0.1:8443/keys\n')), [], 'loopback http is allowed')
  t.same(problems(keys('      jwks_uri: "http://[::1]:8443/keys"\n')), [])
  t.same(problems(keys('      discovery: true\n', 'http://localhost:8443/realm')), [])
  t.same(problems(keys('')), ['p.yaml:9:7: identity.issuers[0]: say where the keys are: discovery: true (from {issuer}/.well-known/openid-configuration), jwks_uri: URL, or jwks_file: PATH'])
  t.same(problems(keys('      discovery: true\n      jwks_uri: https://login.bank.example/keys\n')),
    ['p.yaml:9:7: identity.issuers[0]: give one of discovery, jwks_uri and jwks_file, not discovery and jwks_uri'])
  t.same(problems(keys('      jwks_uri: http://login.bank.example/keys\n')),
    ['p.yaml:10:7: identity.issuers[0].jwks_uri: "http://login.bank.example/keys": keys are fetched over https only (plain http only from a loopback address)'])
  t.match(problems(keys('      discovery: true\n', 'sts-bank')), [/identity\.issuers\[0\]\.issuer: discovery needs the issuer to be its URL: "sts-bank" is not a URL/])
  t.match(problems(keys('      discovery: true\n', 'http://10.0.0.5/realm')), [/identity\.issuers\[0\]\.issuer: discovery needs the issuer to be its URL: .*https only/])
})

t.test('jwks_file: read at load, public signing keys only', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'geofence-jwks-'))
  const write = (name: string, body: string): string => {
    const file = join(dir, name)
    writeFileSync(file, body)
    return file
  }
  const withFile = (file: string): string => BASE + POLICY + ISSUER.replace('      discovery: true\n', `      jwks_file: ${file}\n`)
  const good = write('good.json', JSON.stringify({ keys: [{ kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0', kid: 'k1' }] }))
  const config = parseConfig('p.yaml', Buffer.from(withFile(good)), {})
  t.match(config.identity?.issuers[0]?.keys, { kind: 'jwks_file', file: good, jwks: { keys: [{ kid: 'k1' }] } })
  t.match(problems(withFile(join(dir, 'missing.json'))), [/identity\.issuers\[0\]\.jwks_file: cannot read .*missing\.json: ENOENT/])
  t.match(problems(withFile(write('bad.json', '{"keys": ['))), [/jwks_file: .*bad\.json is not JSON/])
  t.match(problems(withFile(write('shape.json', '{"kty":"RSA"}'))), [/jwks_file: .*shape\.json: not a JSON Web Key Set/])
  t.match(problems(withFile(write('oct.json', '{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}'))), [/keys\[0\] is a shared secret \(kty oct\)/])
  t.match(problems(withFile(write('private.json', '{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b","d":"c"}]}'))), [/keys\[0\] holds a private key/])
})

t.test('claim paths and values', async (t) => {
  t.same(problems(BASE + POLICY + ISSUER.replace('country: ctry', 'country: address.country')), [])
  t.same(problems(BASE + POLICY + ISSUER.replace('country: ctry', 'country: "address..country"')),
    ['p.yaml:12:17: identity.issuers[0].claims.country: "address..country" is not a claim path (write a claim\'s name, or names joined by dots for a nested claim: address.country)'])
  t.match(problems(BASE + POLICY + ISSUER.replace('entity: legal_entity', 'entity: __proto__.x')), [/claims\.entity: "__proto__\.x" is not a claim path/])
  t.match(problems(BASE + POLICY + ISSUER.replace('subdivision: work_subdivision', 'subdivision: "a b"')), [/claims\.subdivision: "a b" is not a claim path/])
  t.match(problems(BASE + POLICY + ISSUER.replace('claims: { country: ctry,', 'claims: {')), [/identity\.issuers\[0\]\.claims: missing required key "country"/])
  t.same(problems(BASE + POLICY + ISSUER.replace('LON-CW: GB', 'LON-CW: GB, KYIV-HQ: UA-30')), [], 'a value may map to a subdivision')
  t.same(problems(BASE + POLICY + ISSUER.replace('LON-CW: GB', 'LON-CW: UK')), [
    'p.yaml:13:30: identity.issuers[0].values.LON-CW: "UK" is not a country code: UK is not an ISO 3166-1 code; the United Kingdom is GB: a value must map to an ISO 3166-1 country code (HK) or an ISO 3166-2 subdivision code (UA-30)',
  ])
  t.match(problems(BASE + POLICY + ISSUER.replace('LON-CW: GB', 'LON-CW: London')), [/values\.LON-CW: "London" is not an ISO 3166-1 alpha-2 country code: a value must map/])
})

t.test('the header, durations, duplicate issuers', async (t) => {
  const head = (lines: string): string => BASE + POLICY + ISSUER.replace('identity:\n', `identity:\n${lines}`)
  t.same(problems(head('  header: X-Bank-Identity\n  required: false\n  clock_skew: 30s\n  max_stale: 1h\n  refresh: 5m\n  refetch_cooldown: 10s\n')), [])
  t.equal(parseConfig('p.yaml', Buffer.from(head('  header: X-Bank-Identity\n')), {}).identity?.header, 'x-bank-identity')
  t.match(problems(head('  header: authorization\n')), [/identity\.header: "authorization" carries something else the gateway reads or forwards/])
  t.match(problems(head('  header: "a b"\n')), [/identity\.header: "a b" is not a header name/])
  t.match(problems(head('  max_stale: 1m\n')), [/identity\.max_stale: shorter than identity\.refresh \(10m\)/])
  t.match(problems(head('  refetch_cooldown: 0s\n')), [/identity\.refetch_cooldown: must be more than 0/])
  t.match(problems(head('  clock_skew: soon\n')), [/identity\.clock_skew: "soon" is not a duration/])
  const twice = ISSUER + ISSUER.split('\n').slice(2).join('\n')
  t.match(problems(BASE + POLICY + twice), [/identity\.issuers\[1\]\.issuer: duplicate issuer "https:\/\/login\.bank\.example\/tenant\/v2\.0" \(also identity\.issuers\[0\]\)/])
})

t.test('entity:NAME entries: only where the identity is judged and an issuer names the claim', async (t) => {
  const rule = (r: string, iss = ISSUER): string => `${BASE}policy:\n  rules:\n    - ${r}\n${iss}`
  const config = parseConfig('p.yaml', Buffer.from(rule('{ name: r, deny: [HK, entity:bank-cn], action: block, jurisdiction: [network, identity] }')), {})
  t.same([...(config.policy.rules[0]?.deny ?? [])], ['HK'])
  t.same([...(config.policy.rules[0]?.denyEntities ?? [])], ['bank-cn'])
  const only = parseConfig('p.yaml', Buffer.from(rule('{ name: r, allow: [entity:bank-us], action: block, jurisdiction: [identity] }')), {})
  t.equal(only.policy.rules[0]?.allow, null, 'a list of entities only does not restrict the location')
  t.same([...(only.policy.rules[0]?.allowEntities ?? [])], ['bank-us'])
  t.same(problems(rule('{ name: r, deny: [entity:bank-cn], action: block }')),
    ['p.yaml:5:25: policy.rules[0].deny[0]: an entity is read from the identity token, which this rule does not judge: write jurisdiction: [network, identity] or [identity]'])
  t.same(problems(rule('{ name: r, deny: [entity:bank-cn], action: block }', '')),
    ['p.yaml:5:25: policy.rules[0].deny[0]: an entity is read from the identity token: add an identity section, and jurisdiction: [network, identity] or [identity]'])
  t.match(problems(rule('{ name: r, deny: [entity:bank-cn], action: block, jurisdiction: [identity] }', ISSUER.replace(', entity: legal_entity', ''))),
    [/deny\[0\]: no issuer says which claim holds the entity \(identity\.issuers\[\]\.claims\.entity\)/])
  t.match(problems(rule('{ name: r, deny: ["entity:"], action: block, jurisdiction: [identity] }')), [/deny\[0\]: "entity:": an entity name is letters/])
})

t.test('a rule that judges only the identity may name subdivisions without a City database', async (t) => {
  const yaml = `${BASE}policy:\n  rules:\n    - { name: r, deny: [UA-43], action: block, jurisdiction: [identity] }\n${ISSUER}`
  t.same(parseConfig('p.yaml', Buffer.from(yaml), {}).policy.rules[0]?.subdivisionPaths, [])
  const both = `${BASE}policy:\n  rules:\n    - { name: r, deny: [UA-43], action: block, jurisdiction: [network, identity] }\n${ISSUER}`
  t.same(parseConfig('p.yaml', Buffer.from(both), {}).policy.rules[0]?.subdivisionPaths, [['policy', 'rules', 0, 'deny', 0]])
})
