// The decision: a pure, synchronous function of the compiled policy and what the gateway read
// from the request (upstream, model, location, identity). Same inputs, same decision, in
// `serve`, `explain` and `test`.
import type { CompiledRule, Policy } from './compile.js'

export interface PolicyLocation {
  country: string | null
  registeredCountry: string | null
  subdivisions: readonly string[]
  anonymous: readonly string[]
}

/** The end user's location as a verified identity token states it (src/identity/). */
export interface PolicyIdentity {
  country: string
  /** ISO 3166-2 codes of `country`. */
  subdivisions: readonly string[]
  /** The legal entity, matched by `entity:NAME`; null when the token names none. */
  entity: string | null
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
  /** An endpoint the dialect does not list ("METHOD /path"): policy.unknown_endpoint. */
  unknownEndpoint?: string | undefined
  location: PolicyLocation
  /** The authenticated client's name, or null without client authentication. */
  client?: string | null
  /** Why the location is unknown, for the reason text. */
  locationProblem?: string | undefined
  /**
   * The identity token's location, judged by rules whose jurisdiction names identity; null (or
   * absent) when there is no verified identity: such a rule then goes to policy.unknown_location.
   */
  identity?: PolicyIdentity | null
  /** Why the identity is unknown, for the reason text. */
  identityProblem?: string | undefined
}

export interface Decision {
  action: 'allow' | 'block' | 'route'
  /** False when a block or route was only recorded (dry-run): the request goes through unchanged. */
  enforced: boolean
  /** The rule that decided; null when a policy setting did (see `setting`). */
  rule: string | null
  /** Without a rule: policy.default, policy.unknown_model, policy.unknown_endpoint, or an upstream's endpoints list. */
  setting?: 'default' | 'unknown_model' | 'unknown_endpoint' | 'endpoints'
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
  if (input.unknownEndpoint !== undefined) {
    return { action: policy.unknownEndpoint, enforced: defaultEnforced, rule: null, setting: 'unknown_endpoint', reason: `the endpoint ${input.unknownEndpoint} is not one the gateway knows: policy.unknown_endpoint is ${policy.unknownEndpoint}` }
  }
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
  // Each judged source must pass; a source that fails decides, else an unknown one does.
  const judged: Judged[] = []
  const unknowns: string[] = []
  if (rule.jurisdiction.includes('network')) {
    const loc = input.location
    const flags = loc.anonymous.join(', ')
    if (flags !== '' && rule.anonymous === 'block') {
      return { action: 'block', enforced: rule.enforced, rule: rule.name, reason: `the caller is anonymous (${flags}): anonymous is block` }
    }
    const network = flags !== '' && rule.anonymous === 'unknown' ? `anonymous: ${flags}` : networkCodes(policy, loc, input.locationProblem, judged)
    if (network !== null) unknowns.push(`the caller's location is unknown${network === undefined ? '' : ` (${network})`}`)
  }
  if (rule.jurisdiction.includes('identity')) {
    const id = input.identity ?? null
    if (id === null) unknowns.push(`the caller's identity is unknown (${input.identityProblem ?? 'no identity token'})`)
    else judged.push({ label: 'identity country', codes: [id.country, ...id.subdivisions], entity: id.entity })
  }
  for (const j of judged) {
    const failure = check(rule, j)
    if (failure !== null) return fail(rule, failure)
  }
  if (unknowns.length > 0) {
    return { action: policy.unknownLocation, enforced: rule.enforced, rule: rule.name, reason: `${unknowns.join(' and ')}: policy.unknown_location is ${policy.unknownLocation}` }
  }
  // One label per source: a strictest registered country is only a further check of the country.
  const shown = judged.filter((j, i) => i === 0 || j.entity !== undefined)
  const passes = shown.map((j) => `${j.label} ${j.codes[0] ?? ''}${j.entity === undefined || j.entity === null ? '' : ` (entity ${j.entity})`}`).join(' and ')
  return { action: 'allow', enforced: rule.enforced, rule: rule.name, reason: `${passes === '' ? 'country' : passes} ${shown.length > 1 ? 'pass' : 'passes'} rule ${rule.name}` }
}

/** A set of codes (a country, then its subdivisions) that must pass the rule; an identity's entity too. */
interface Judged {
  label: string
  codes: readonly string[]
  /** Set for the identity source: its entity, or null when the token names none. */
  entity?: string | null
}

/**
 * Adds the network codes judged per policy.location to `judged`; returns null when they are
 * known, else why the location is unknown (undefined: no reason given).
 */
function networkCodes (policy: Policy, loc: PolicyLocation, problem: string | undefined, judged: Judged[]): string | undefined | null {
  if (policy.location === 'registered_country') {
    if (loc.registeredCountry === null) return problem ?? 'no registered country'
    judged.push({ label: 'registered country', codes: [loc.registeredCountry] })
    return null
  }
  if (loc.country === null) return problem
  judged.push({ label: 'country', codes: [loc.country, ...loc.subdivisions] })
  if (policy.location === 'strictest' && loc.registeredCountry !== null && loc.registeredCountry !== loc.country) {
    judged.push({ label: 'registered country', codes: [loc.registeredCountry] })
  }
  return null
}

/**
 * Why a judged source fails the rule, or null when it passes. Codes pass when one is in `allow`
 * (if the rule lists codes) and none is in `deny`; an identity's entity likewise against the
 * `entity:` entries. Across the two kinds both must pass.
 */
function check (rule: CompiledRule, { label, codes, entity }: Judged): string | null {
  if (rule.allow !== null && !codes.some((c) => rule.allow?.has(c) === true)) {
    return `${label} ${codes[0] ?? ''} is not in the allow list of rule ${rule.name}`
  }
  const denied = rule.deny === null ? undefined : codes.find((c) => rule.deny?.has(c) === true)
  if (denied !== undefined) {
    const what = denied === codes[0] ? `${label} ${denied}` : `${entity === undefined ? '' : 'identity '}subdivision ${denied}`
    return `${what} is in the deny list of rule ${rule.name}`
  }
  if (entity === undefined) return null
  if (rule.allowEntities !== null && (entity === null || !rule.allowEntities.has(entity))) {
    return `${entity === null ? 'the identity names no entity, which' : `identity entity ${entity}`} is not in the allow list of rule ${rule.name}`
  }
  if (entity !== null && rule.denyEntities?.has(entity) === true) return `identity entity ${entity} is in the deny list of rule ${rule.name}`
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
