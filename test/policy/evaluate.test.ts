// The policy's meaning, as a pure function: first matching rule decides; allow and deny lists;
// unknown locations; policy.default; dry-run; case-insensitive globs.
import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { compilePolicy, globToRegExp } from '../../src/policy/compile.js'
import { evaluate, type PolicyLocation } from '../../src/policy/evaluate.js'

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
