// The policy's meaning, as a pure function: first matching rule decides; allow and deny lists;
// unknown locations; policy.default; dry-run; case-insensitive globs.
import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { compilePolicy, globToRegExp } from '../../src/policy/compile.js'
import { decidedBy, evaluate, type PolicyLocation } from '../../src/policy/evaluate.js'

const loc = (country: string | null, more: Partial<PolicyLocation> = {}): PolicyLocation =>
  ({ country, registeredCountry: null, subdivisions: [], anonymous: [], ...more })

const policy = (rules: string, head = 'default: block\n  unknown_location: block'): ReturnType<typeof compilePolicy> => compilePolicy(parseConfig('p.yaml', Buffer.from(`
groups:
  restricted: [CN, HK, MO, RU]
  allies: [US, GB, group:eu-core]
  eu-core: [DE, FR]
upstreams:
  anthropic: { url: "http://127.0.0.1:1", dialect: anthropic }
  openai: { url: "http://127.0.0.1:1", dialect: openai }
policy:
  ${head}
  rules:
${rules}
`), {}))

t.test('globs are anchored and case-insensitive', async (t) => {
  const re = globToRegExp(['claude-*', 'gpt-4?', 'o1'])
  for (const m of ['claude-sonnet-4-5', 'CLAUDE-OPUS', 'gpt-4o', 'o1', 'O1']) t.ok(re.test(m), m)
  for (const m of ['my-claude-1', 'gpt-4o-mini', 'o1-preview', 'xo1']) t.notOk(re.test(m), m)
  t.ok(globToRegExp(['a.b']).test('a.b'))
  t.notOk(globToRegExp(['a.b']).test('axb'), 'regex characters are literal')
})

t.test('the first rule whose upstreams and models match decides', async (t) => {
  const p = policy(`
    - { name: haiku-everywhere, upstreams: [anthropic], models: ["claude-haiku-*"], deny: [] , action: block }
    - { name: claude-frontier, upstreams: [anthropic], models: ["claude-*"], deny: [group:restricted], action: block }
    - { name: openai-allies, upstreams: [openai], models: ["*"], allow: [group:allies], action: block }`)
  t.match(evaluate(p, { upstream: 'anthropic', model: 'claude-haiku-4-5', location: loc('HK') }), { action: 'allow', rule: 'haiku-everywhere' })
  t.match(evaluate(p, { upstream: 'anthropic', model: 'claude-sonnet-4-5', location: loc('HK') }), { action: 'block', rule: 'claude-frontier', reason: 'country HK is in the deny list of rule claude-frontier' })
  t.match(evaluate(p, { upstream: 'anthropic', model: 'claude-sonnet-4-5', location: loc('JP') }), { action: 'allow', rule: 'claude-frontier' })
  t.match(evaluate(p, { upstream: 'openai', model: 'claude-sonnet-4-5', location: loc('HK') }), { action: 'block', rule: 'openai-allies' }, 'rules are per upstream')
  t.match(evaluate(p, { upstream: 'openai', model: 'gpt-4o', location: loc('FR') }), { action: 'allow', rule: 'openai-allies' }, 'groups nest')
  t.match(evaluate(p, { upstream: 'openai', model: 'gpt-4o', location: loc('JP') }), { action: 'block', reason: 'country JP is not in the allow list of rule openai-allies' })
})

t.test('allow and deny together: in allow and not in deny', async (t) => {
  const p = policy('    - { name: r, models: ["*"], allow: [group:allies], deny: [FR], action: block }')
  t.match(evaluate(p, { upstream: 'openai', model: 'm', location: loc('DE') }), { action: 'allow' })
  t.match(evaluate(p, { upstream: 'openai', model: 'm', location: loc('FR') }), { action: 'block' })
  t.match(evaluate(p, { upstream: 'openai', model: 'm', location: loc('JP') }), { action: 'block' })
})

t.test('unknown location, no rule, no model', async (t) => {
  const p = policy('    - { name: r, upstreams: [anthropic], models: ["claude-*"], deny: [CN], action: block }')
  t.match(evaluate(p, { upstream: 'anthropic', model: 'claude-x', location: loc(null), locationProblem: 'special-purpose address' }),
    { action: 'block', rule: 'r', reason: "the caller's location is unknown (special-purpose address): policy.unknown_location is block" })
  t.match(evaluate(p, { upstream: 'anthropic', model: 'mistral', location: loc('US') }), { action: 'block', rule: null, reason: 'no rule matches model "mistral": policy.default is block' })
  t.match(evaluate(p, { upstream: 'anthropic', model: null, location: loc('US') }), { action: 'block', rule: null })
  const open = policy('    - { name: r, models: ["claude-*"], deny: [CN], action: block }', 'default: allow\n  unknown_location: allow')
  t.match(evaluate(open, { upstream: 'anthropic', model: 'mistral', location: loc('CN') }), { action: 'allow', rule: null })
  t.match(evaluate(open, { upstream: 'anthropic', model: 'claude-x', location: loc(null) }), { action: 'allow', rule: 'r' })
})

t.test('dry-run: globally and per rule, a block is recorded but not enforced', async (t) => {
  const global = policy('    - { name: r, models: ["*"], deny: [CN], action: block }', 'mode: dry-run')
  t.match(evaluate(global, { upstream: 'openai', model: 'm', location: loc('CN') }), { action: 'block', enforced: false })
  const perRule = policy(`
    - { name: trial, models: ["gpt-*"], deny: [CN], action: block, mode: dry-run }
    - { name: live, models: ["*"], deny: [CN], action: block }`)
  t.match(evaluate(perRule, { upstream: 'openai', model: 'gpt-4o', location: loc('CN') }), { action: 'block', enforced: false, rule: 'trial' })
  t.match(evaluate(perRule, { upstream: 'openai', model: 'o3', location: loc('CN') }), { action: 'block', enforced: true, rule: 'live' })
})

t.test('subdivisions: Crimea denied while Ukraine passes; allow lists may name them too', async (t) => {
  const p = policy(`
    - { name: ukraine, upstreams: [anthropic], models: ["*"], deny: [UA-43, UA-40], action: block }
    - { name: only-kyiv, upstreams: [openai], models: ["*"], allow: [UA-30], action: block }`)
  t.match(evaluate(p, { upstream: 'anthropic', model: 'm', location: loc('UA', { subdivisions: ['UA-43'] }) }), { action: 'block', reason: 'subdivision UA-43 is in the deny list of rule ukraine' })
  t.match(evaluate(p, { upstream: 'anthropic', model: 'm', location: loc('UA', { subdivisions: ['UA-30'] }) }), { action: 'allow' })
  t.match(evaluate(p, { upstream: 'anthropic', model: 'm', location: loc('UA') }), { action: 'allow' }, 'no subdivision known: the country decides')
  t.match(evaluate(p, { upstream: 'openai', model: 'm', location: loc('UA', { subdivisions: ['UA-30'] }) }), { action: 'allow' })
  t.match(evaluate(p, { upstream: 'openai', model: 'm', location: loc('UA', { subdivisions: ['UA-46'] }) }), { action: 'block' })
})

t.test('anonymous callers: block, allow or unknown, globally and per rule', async (t) => {
  const vpn = loc('US', { anonymous: ['is_anonymous', 'is_anonymous_vpn'] })
  const rules = `
    - { name: strict, upstreams: [anthropic], models: ["*"], deny: [CN], action: block, anonymous: block }
    - { name: lenient, upstreams: [openai], models: ["gpt-*"], deny: [CN], action: block, anonymous: allow }
    - { name: unsure, upstreams: [openai], models: ["*"], deny: [CN], action: block, anonymous: unknown }`
  const p = policy(rules)
  t.match(evaluate(p, { upstream: 'anthropic', model: 'm', location: vpn }), { action: 'block', rule: 'strict', reason: 'the caller is anonymous (is_anonymous, is_anonymous_vpn): anonymous is block' })
  t.match(evaluate(p, { upstream: 'openai', model: 'gpt-4o', location: vpn }), { action: 'allow', rule: 'lenient' })
  t.match(evaluate(p, { upstream: 'openai', model: 'o3', location: vpn }), { action: 'block', rule: 'unsure', reason: /location is unknown \(anonymous: is_anonymous, is_anonymous_vpn\)/ })
  t.match(evaluate(p, { upstream: 'anthropic', model: 'm', location: loc('US') }), { action: 'allow' }, 'not anonymous')
  const global = policy('    - { name: r, models: ["*"], deny: [CN], action: block }', 'anonymous: block')
  t.match(evaluate(global, { upstream: 'openai', model: 'm', location: vpn }), { action: 'block' }, 'policy.anonymous applies to rules without their own')
  const dflt = policy('    - { name: r, models: ["*"], deny: [CN], action: block }')
  t.match(evaluate(dflt, { upstream: 'openai', model: 'm', location: vpn }), { action: 'allow' }, 'the default is allow (flags are still logged)')
})

t.test('policy.location: country, registered_country, strictest; a registered-only record is never silently allowed', async (t) => {
  const rules = '    - { name: r, models: ["*"], deny: [RU], action: block }'
  const gbRu = loc('GB', { registeredCountry: 'RU' })
  const ruGb = loc('RU', { registeredCountry: 'GB' })
  const registeredOnly = loc(null, { registeredCountry: 'GB' })
  const country = policy(rules)
  t.match(evaluate(country, { upstream: 'openai', model: 'm', location: gbRu }), { action: 'allow' })
  t.match(evaluate(country, { upstream: 'openai', model: 'm', location: registeredOnly, locationProblem: 'only a registered country' }), { action: 'block', reason: /unknown \(only a registered country\)/ })
  const registered = policy(rules, 'location: registered_country')
  t.match(evaluate(registered, { upstream: 'openai', model: 'm', location: gbRu }), { action: 'block', reason: 'registered country RU is in the deny list of rule r' })
  t.match(evaluate(registered, { upstream: 'openai', model: 'm', location: registeredOnly }), { action: 'allow' })
  const strictest = policy(rules, 'location: strictest')
  t.match(evaluate(strictest, { upstream: 'openai', model: 'm', location: gbRu }), { action: 'block', reason: 'registered country RU is in the deny list of rule r' })
  t.match(evaluate(strictest, { upstream: 'openai', model: 'm', location: ruGb }), { action: 'block', reason: 'country RU is in the deny list of rule r' })
  t.match(evaluate(strictest, { upstream: 'openai', model: 'm', location: loc('GB', { registeredCountry: 'GB' }) }), { action: 'allow' })
  t.match(evaluate(strictest, { upstream: 'openai', model: 'm', location: registeredOnly }), { action: 'block', reason: /unknown/ }, 'strictest needs the country')
})

t.test('route: a failing caller is routed, with the target in the decision', async (t) => {
  const p = policy(`
    - { name: r, upstreams: [openai], models: ["gpt-*"], deny: [HK], action: { route: { upstream: openai, model: local-70b } } }`)
  t.same(evaluate(p, { upstream: 'openai', model: 'gpt-4o', location: loc('HK') }), {
    action: 'route', enforced: true, rule: 'r', reason: 'country HK is in the deny list of rule r: routed to openai (local-70b)', route: { upstream: 'openai', model: 'local-70b' },
  })
})

t.test('an endpoint the dialect does not list: policy.unknown_endpoint, whatever policy.default says', async (t) => {
  const rules = '    - { name: r, models: ["*"], deny: [], action: block }'
  const open = policy(rules, 'default: allow\n  unknown_location: allow\n  unknown_model: allow')
  const input = { upstream: 'openai', model: null, unknownEndpoint: 'POST /v1/foo', location: loc('US') }
  const d = evaluate(open, input)
  t.match(d, { action: 'block', enforced: true, rule: null, setting: 'unknown_endpoint', reason: 'the endpoint POST /v1/foo is not one the gateway knows: policy.unknown_endpoint is block' })
  t.equal(decidedBy(d), 'policy.unknown_endpoint')
  t.match(evaluate(policy(rules, 'default: block\n  unknown_endpoint: allow'), input), { action: 'allow', setting: 'unknown_endpoint', reason: /policy\.unknown_endpoint is allow/ })
  t.match(evaluate(policy(rules, 'mode: dry-run\n  default: allow'), input), { action: 'block', enforced: false, setting: 'unknown_endpoint' })
})
