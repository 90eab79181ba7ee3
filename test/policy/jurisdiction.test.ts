// Who is calling: a rule judges the network address, the identity token's claims, or both; the
// caller passes only if every judged source passes; an unknown source goes to
// policy.unknown_location; entity:NAME matches the identity's legal entity.
import t, { type Test } from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { compilePolicy } from '../../src/policy/compile.js'
import { evaluate, type PolicyIdentity, type PolicyInput, type PolicyLocation } from '../../src/policy/evaluate.js'

const net = (country: string | null, more: Partial<PolicyLocation> = {}): PolicyLocation =>
  ({ country, registeredCountry: null, subdivisions: [], anonymous: [], ...more })
const id = (country: string, more: Partial<PolicyIdentity> = {}): PolicyIdentity => ({ country, subdivisions: [], entity: null, ...more })

const policy = (rules: string, head = 'unknown_location: block'): ReturnType<typeof compilePolicy> => compilePolicy(parseConfig('p.yaml', Buffer.from(`
upstreams:
  anthropic: { url: "http://127.0.0.1:1", dialect: anthropic }
identity:
  required: false
  issuers:
    - { issuer: "http://127.0.0.1:1", jwks_uri: "http://127.0.0.1:1/keys", audiences: [llm-geofence], claims: { country: ctry, entity: legal_entity } }
policy:
  jurisdiction: [network, identity]
  ${head}
  rules:
${rules}
`), {}))

interface Row {
  name: string
  input: Partial<PolicyInput>
  action: 'allow' | 'block' | 'route'
  reason: string | RegExp
}

const check = (t: Test, p: ReturnType<typeof compilePolicy>, rows: readonly Row[]): void => {
  for (const row of rows) {
    t.match(evaluate(p, { upstream: 'anthropic', model: 'claude-x', location: net(null), ...row.input }), { action: row.action, reason: row.reason }, row.name)
  }
}

t.test('network and identity: the caller passes only if both pass', async (t) => {
  const p = policy(`
    - { name: frontier, models: ["claude-*"], deny: [CN, HK, MO], action: block }
    - { name: network-only, models: ["gpt-*"], deny: [CN, HK, MO], action: block, jurisdiction: [network] }
    - { name: identity-only, models: ["o*"], deny: [CN, HK, MO], action: block, jurisdiction: [identity] }`)
  check(t, p, [
    { name: 'HK claim, US address: refused', input: { location: net('US'), identity: id('HK') }, action: 'block', reason: 'identity country HK is in the deny list of rule frontier' },
    { name: 'US claim, HK address: refused', input: { location: net('HK'), identity: id('US') }, action: 'block', reason: 'country HK is in the deny list of rule frontier' },
    { name: 'US and US: allowed', input: { location: net('US'), identity: id('US') }, action: 'allow', reason: 'country US and identity country US pass rule frontier' },
    { name: 'HK claim under jurisdiction [network]: allowed', input: { model: 'gpt-4o', location: net('US'), identity: id('HK') }, action: 'allow', reason: 'country US passes rule network-only' },
    { name: 'HK address under jurisdiction [identity]: allowed', input: { model: 'o3', location: net('HK'), identity: id('US') }, action: 'allow', reason: 'identity country US passes rule identity-only' },
    { name: 'HK claim under jurisdiction [identity]: refused', input: { model: 'o3', location: net('US'), identity: id('HK') }, action: 'block', reason: 'identity country HK is in the deny list of rule identity-only' },
  ])
})

t.test('an unknown source goes to policy.unknown_location, and the reason says which', async (t) => {
  const rules = '    - { name: r, deny: [HK], action: block }'
  const noToken = 'no identity token (x-geofence-identity)'
  check(t, policy(rules, 'unknown_location: block'), [
    { name: 'identity unknown, block', input: { location: net('US'), identity: null, identityProblem: noToken }, action: 'block', reason: `the caller's identity is unknown (${noToken}): policy.unknown_location is block` },
    { name: 'identity not given at all counts as unknown', input: { location: net('US') }, action: 'block', reason: "the caller's identity is unknown (no identity token): policy.unknown_location is block" },
    { name: 'both unknown', input: { location: net(null), locationProblem: 'special-purpose address', identity: null, identityProblem: noToken }, action: 'block', reason: `the caller's location is unknown (special-purpose address) and the caller's identity is unknown (${noToken}): policy.unknown_location is block` },
    { name: 'address unknown, identity known', input: { location: net(null), locationProblem: 'not in any database', identity: id('US') }, action: 'block', reason: "the caller's location is unknown (not in any database): policy.unknown_location is block" },
  ])
  check(t, policy(rules, 'unknown_location: allow'), [
    { name: 'identity unknown, allow', input: { location: net('US'), identity: null, identityProblem: noToken }, action: 'allow', reason: /identity is unknown .*: policy\.unknown_location is allow/ },
    { name: 'a failing known source decides before an unknown one', input: { location: net('HK'), identity: null }, action: 'block', reason: 'country HK is in the deny list of rule r' },
    { name: 'a failing identity decides before an unknown address', input: { location: net(null), identity: id('HK') }, action: 'block', reason: 'identity country HK is in the deny list of rule r' },
  ])
})

t.test('entity:NAME in allow and deny; codes and entities must both pass', async (t) => {
  const p = policy(`
    - { name: only-us-entity, models: ["us-*"], allow: [entity:bank-us], action: block, jurisdiction: [identity] }
    - { name: no-cn-entity, models: ["claude-*"], deny: [HK, entity:bank-cn], action: block }
    - { name: both-kinds, models: ["gpt-*"], allow: [US, GB, entity:bank-us, entity:bank-uk], action: block }`)
  check(t, p, [
    { name: 'allowed entity', input: { model: 'us-model', identity: id('SG', { entity: 'bank-us' }) }, action: 'allow', reason: 'identity country SG (entity bank-us) passes rule only-us-entity' },
    { name: 'another entity', input: { model: 'us-model', identity: id('US', { entity: 'bank-sg' }) }, action: 'block', reason: 'identity entity bank-sg is not in the allow list of rule only-us-entity' },
    { name: 'no entity in the token', input: { model: 'us-model', identity: id('US') }, action: 'block', reason: 'the identity names no entity, which is not in the allow list of rule only-us-entity' },
    { name: 'denied entity, anywhere', input: { location: net('US'), identity: id('US', { entity: 'bank-cn' }) }, action: 'block', reason: 'identity entity bank-cn is in the deny list of rule no-cn-entity' },
    { name: 'another entity passes the deny list', input: { location: net('US'), identity: id('US', { entity: 'bank-us' }) }, action: 'allow', reason: 'country US and identity country US (entity bank-us) pass rule no-cn-entity' },
    { name: 'an entity in allow does not admit an address that is not', input: { model: 'gpt-4o', location: net('SG'), identity: id('US', { entity: 'bank-us' }) }, action: 'block', reason: 'country SG is not in the allow list of rule both-kinds' },
    { name: 'country and entity both in allow', input: { model: 'gpt-4o', location: net('GB'), identity: id('GB', { entity: 'bank-uk' }) }, action: 'allow', reason: /pass rule both-kinds/ },
    { name: 'country in allow, entity not', input: { model: 'gpt-4o', location: net('GB'), identity: id('GB', { entity: 'bank-sg' }) }, action: 'block', reason: 'identity entity bank-sg is not in the allow list of rule both-kinds' },
  ])
})

t.test('identity subdivisions, routes, dry-run and anonymous flags', async (t) => {
  const p = policy(`
    - { name: crimea, models: ["claude-*"], deny: [UA-43], action: block, jurisdiction: [identity] }
    - { name: sovereign, models: ["gpt-*"], deny: [HK], action: { route: { upstream: anthropic, model: bank-llm } } }
    - { name: trial, models: ["o*"], deny: [HK], action: block, mode: dry-run }
    - { name: vpn, models: ["v*"], deny: [HK], action: block, anonymous: block, jurisdiction: [identity] }`)
  check(t, p, [
    { name: 'an identity subdivision is judged', input: { identity: id('UA', { subdivisions: ['UA-43'] }) }, action: 'block', reason: 'identity subdivision UA-43 is in the deny list of rule crimea' },
    { name: 'its country passes without it', input: { identity: id('UA', { subdivisions: ['UA-30'] }) }, action: 'allow', reason: 'identity country UA passes rule crimea' },
    { name: 'a failing identity takes the rule\'s route', input: { model: 'gpt-4o', location: net('US'), identity: id('HK') }, action: 'route', reason: 'identity country HK is in the deny list of rule sovereign: routed to anthropic (bank-llm)' },
    { name: 'anonymous flags belong to the network source: not judged here', input: { model: 'v1', location: net('US', { anonymous: ['is_anonymous_vpn'] }), identity: id('US') }, action: 'allow', reason: 'identity country US passes rule vpn' },
  ])
  t.match(evaluate(p, { upstream: 'anthropic', model: 'o3', location: net('US'), identity: id('HK') }), { action: 'block', enforced: false, rule: 'trial' }, 'dry-run records an identity block without enforcing it')
})
