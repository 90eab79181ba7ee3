// The decision: a pure, synchronous function of the compiled policy and what the gateway read
// from the request (upstream, model, location). Same inputs, same decision, in `serve`,
// `explain` and `test`.
import type { CompiledRule, Policy } from './compile.js'

export interface PolicyLocation {
  country: string | null
  registeredCountry: string | null
  subdivisions: readonly string[]
  anonymous: readonly string[]
}

export interface PolicyInput {
  upstream: string
  /** The canonical model id (policy/model-id.ts); null when the endpoint carries none. */
  model: string | null
  /** The model as the request wrote it (decoded): a glob that matches it matches too. */
  rawModel?: string | undefined
  /** The endpoint carries a model the gateway cannot see, and why: policy.unknown_model. */
  unknownModel?: string | undefined
  /** A model-less endpoint listed in the upstream's `endpoints` (that entry). */
  listedEndpoint?: string | undefined
  location: PolicyLocation
  /** The authenticated client's name, or null without client authentication. */
  client?: string | null
  /** Why the location is unknown, for the reason text. */
  locationProblem?: string | undefined
}

export interface Decision {
  action: 'allow' | 'block' | 'route'
  /** False when a block or route was only recorded (dry-run): the request goes through unchanged. */
  enforced: boolean
  /** The rule that decided; null when a policy setting did (see `setting`). */
  rule: string | null
  /** Without a rule: policy.default, policy.unknown_model, or an upstream's endpoints list. */
  setting?: 'default' | 'unknown_model' | 'endpoints'
  reason: string
  /** Where a routed request goes instead. */
  route?: { upstream: string, model: string }
}

/** What decided, in a person's words: the rule, or the setting that decided without one. */
export function decidedBy (d: Pick<Decision, 'rule' | 'setting'>): string {
  if (d.rule !== null) return `rule ${d.rule}`
  return d.setting === 'endpoints' ? 'the upstream\'s endpoints list' : `policy.${d.setting ?? 'default'}`
}

export function evaluate (policy: Policy, input: PolicyInput): Decision {
  const defaultEnforced = policy.mode === 'enforce'
  if (input.unknownModel !== undefined) {
    return { action: policy.unknownModel, enforced: defaultEnforced, rule: null, setting: 'unknown_model', reason: `the model cannot be seen (${input.unknownModel}): policy.unknown_model is ${policy.unknownModel}` }
  }
  if (input.model === null && input.listedEndpoint !== undefined) {
    return { action: 'allow', enforced: defaultEnforced, rule: null, setting: 'endpoints', reason: `the endpoint names no model and is listed in upstreams.${input.upstream}.endpoints (${input.listedEndpoint})` }
  }
  if (input.model === null) {
    return { action: policy.default, enforced: defaultEnforced, rule: null, setting: 'default', reason: `the endpoint names no model: policy.default is ${policy.default}` }
  }
  const rule = firstMatch(policy.rulesByUpstream.get(input.upstream) ?? [], input.model, input.rawModel, input.client ?? null)
  if (rule === undefined) {
    return { action: policy.default, enforced: defaultEnforced, rule: null, setting: 'default', reason: `no rule matches model "${input.model}": policy.default is ${policy.default}` }
  }
  const loc = input.location
  const flags = loc.anonymous.join(', ')
  if (flags !== '' && rule.anonymous === 'block') {
    return { action: 'block', enforced: rule.enforced, rule: rule.name, reason: `the caller is anonymous (${flags}): anonymous is block` }
  }
  const unknown = (why: string | undefined): Decision => ({
    action: policy.unknownLocation,
    enforced: rule.enforced,
    rule: rule.name,
    reason: `the caller's location is unknown${why === undefined ? '' : ` (${why})`}: policy.unknown_location is ${policy.unknownLocation}`,
  })
  if (flags !== '' && rule.anonymous === 'unknown') return unknown(`anonymous: ${flags}`)

  // Which codes are judged, per policy.location. Each set must pass the rule.
  const judged: Array<{ label: string, codes: readonly string[] }> = []
  if (policy.location === 'registered_country') {
    if (loc.registeredCountry === null) return unknown(input.locationProblem ?? 'no registered country')
    judged.push({ label: 'registered country', codes: [loc.registeredCountry] })
  } else {
    if (loc.country === null) return unknown(input.locationProblem)
    judged.push({ label: 'country', codes: [loc.country, ...loc.subdivisions] })
    if (policy.location === 'strictest' && loc.registeredCountry !== null && loc.registeredCountry !== loc.country) {
      judged.push({ label: 'registered country', codes: [loc.registeredCountry] })
    }
  }
  for (const { label, codes } of judged) {
    const failure = check(rule, label, codes)
    if (failure !== null) return fail(rule, failure)
  }
  const first = judged[0]?.codes[0] ?? ''
  return { action: 'allow', enforced: rule.enforced, rule: rule.name, reason: `${judged[0]?.label ?? 'country'} ${first} passes rule ${rule.name}` }
}

/** Why `codes` (a country, then its subdivisions) fail the rule, or null when they pass. */
function check (rule: CompiledRule, label: string, codes: readonly string[]): string | null {
  if (rule.allow !== null && !codes.some((c) => rule.allow?.has(c) === true)) {
    return `${label} ${codes[0] ?? ''} is not in the allow list of rule ${rule.name}`
  }
  const denied = rule.deny === null ? undefined : codes.find((c) => rule.deny?.has(c) === true)
  if (denied !== undefined) {
    const what = denied === codes[0] ? `${label} ${denied}` : `subdivision ${denied}`
    return `${what} is in the deny list of rule ${rule.name}`
  }
  return null
}

function fail (rule: CompiledRule, reason: string): Decision {
  if (rule.action.kind === 'route') {
    return {
      action: 'route',
      enforced: rule.enforced,
      rule: rule.name,
      reason: `${reason}: routed to ${rule.action.upstream} (${rule.action.model})`,
      route: { upstream: rule.action.upstream, model: rule.action.model },
    }
  }
  return { action: 'block', enforced: rule.enforced, rule: rule.name, reason }
}

/** The first rule for this client whose globs match the canonical id or the id as written. */
function firstMatch (rules: readonly CompiledRule[], model: string, raw: string | undefined, client: string | null): CompiledRule | undefined {
  for (const rule of rules) {
    if (rule.clients !== null && (client === null || !rule.clients.has(client))) continue
    if (rule.model.test(model) || (raw !== undefined && raw !== model && rule.model.test(raw))) return rule
  }
  return undefined
}
