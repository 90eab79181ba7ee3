// The authors' tools judge identities as serve does: `geofence explain --identity` (claims as a
// token carries them, mapped by the issuer's config), `--token FILE` (verified against the
// issuer's keys), and `geofence test` cases with `identity:`. Each source's verdict is shown.
import { writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import t from 'tap'
import { runCli } from '../support/cli.js'
import { writeConfig } from '../support/gateway.js'
import { issuerYaml, keyServer, signingKey } from '../support/key-server.js'

const cli = runCli

t.setTimeout(120_000)

t.test('explain and test judge the identity beside the address', async (t) => {
  const idp = await keyServer(t, [await signingKey('key-1')])
  const file = writeConfig(`
identity:
  issuers:
${issuerYaml(idp)}
upstreams:
  anthropic: { url: "http://127.0.0.1:1", dialect: anthropic }
policy:
  default: block
  unknown_location: block
  jurisdiction: [network, identity]
  rules:
    - { name: claude, upstreams: [anthropic], models: ["claude-*"], deny: [HK, CN, entity:bank-cn], action: block }
`)
  const explain = async (...more: string[]): Promise<Record<string, any>> => {
    const r = await cli('explain', '--config', file, '--ip', '8.8.8.8', '--model', 'claude-sonnet-4-5', '--json', ...more)
    t.equal(r.status, 0, r.stderr)
    return JSON.parse(r.stdout) as Record<string, any>
  }
  t.match(await explain('--identity', '{"ctry":"HK"}'), {
    action: 'block',
    reason: /identity country HK is in the deny list of rule claude/,
    identity: { country: 'HK', source_claim: 'ctry' },
    sources: { network: { location: 'US', verdict: 'allow' }, identity: { location: 'HK', verdict: 'block' } },
  }, 'HK staff on a US address: the identity fails, the network passes')
  t.match(await explain('--identity', '{"ctry":"HKG-IFC"}'), { identity: { country: 'HK' } }, 'claims go through the issuer\'s values mapping')
  t.match(await explain('--identity', '{"ctry":"US","legal_entity":"bank-cn"}'), { action: 'block', reason: /identity entity bank-cn is in the deny list/ })
  t.match(await explain(), { action: 'block', identity: null, reason: /identity is unknown \(no identity was given/, sources: { identity: { location: null } } }, 'without an identity the rule finds it unknown')
  const dir = dirname(file)
  writeFileSync(join(dir, 'us.jwt'), `${await idp.token({ ctry: 'US' })}\n`)
  t.match(await explain('--token', join(dir, 'us.jwt')), { action: 'allow', identity: { country: 'US', issuer: idp.issuer } }, '--token verifies the token against the issuer\'s keys')
  writeFileSync(join(dir, 'expired.jwt'), await idp.token({ ctry: 'US', exp: Math.floor(Date.now() / 1000) - 3600 }))
  const expired = await cli('explain', '--config', file, '--ip', '8.8.8.8', '--model', 'claude-sonnet-4-5', '--token', join(dir, 'expired.jwt'))
  t.equal(expired.status, 2)
  t.match(expired.stderr, /the token is refused \(expired\)/)
  const bad = await cli('explain', '--config', file, '--ip', '8.8.8.8', '--model', 'claude-sonnet-4-5', '--identity', '{"ctry":"Atlantis"}')
  t.equal(bad.status, 2)
  t.match(bad.stderr, /the identity claims cannot be used/)
  const text = await cli('explain', '--config', file, '--ip', '203.198.0.1', '--model', 'claude-sonnet-4-5', '--identity', '{"ctry":"US"}')
  t.match(text.stdout, /identity: +US from http:\/\/127\.0\.0\.1:\d+ \(claim ctry\)\nsources: +network HK: block; identity US: allow/)

  const fetchesBefore = idp.jwksFetches
  writeFileSync(join(dir, 'cases.test.yaml'), `config: ${file}
cases:
  - { name: HK staff on a US address, ip: 8.8.8.8, model: claude-sonnet-4-5, identity: { ctry: HK }, expect: block }
  - { name: US staff in the US, ip: 8.8.8.8, model: claude-sonnet-4-5, identity: { ctry: US }, expect: allow }
  - { name: US staff in Hong Kong, ip: 203.198.0.1, model: claude-sonnet-4-5, identity: { ctry: US }, expect: block }
  - { name: no identity, ip: 8.8.8.8, model: claude-sonnet-4-5, expect: block }
`)
  const tested = await cli('test', join(dir, 'cases.test.yaml'))
  t.equal(tested.status, 0, tested.stdout)
  t.match(tested.stdout, /4 passed, 0 failed/)
  t.equal(idp.jwksFetches, fetchesBefore, 'claims-only tools fetch no keys')
})
