// The decision: a pure, synchronous function of the compiled policy and what the gateway read
// from the request (upstream, model, country). Same inputs, same decision, in `serve` and `explain`.
import type { CompiledRule, Policy } from './compile.js'

export interface PolicyInput {
  upstream: string
  /** Null when the endpoint carries no model. */
  model: string | null
  /** Null when the caller's location is unknown. */
  country: string | null
  /** Why the country is unknown, for the reason text. */
  locationProblem?: string | undefined
}

export interface Decision {
  action: 'allow' | 'block'
  /** False when a block was only recorded (dry-run): the request goes through. */
  enforced: boolean
  /** The rule that decided; null for policy.default. */
  rule: string | null
  reason: string
}

export function evaluate (policy: Policy, input: PolicyInput): Decision {
  const defaultEnforced = policy.mode === 'enforce'
  if (input.model === null) {
    return { action: policy.default, enforced: defaultEnforced, rule: null, reason: `the endpoint names no model: policy.default is ${policy.default}` }
  }
  const rule = firstMatch(policy.rulesByUpstream.get(input.upstream) ?? [], input.model)
  if (rule === undefined) {
    return { action: policy.default, enforced: defaultEnforced, rule: null, reason: `no rule matches model "${input.model}": policy.default is ${policy.default}` }
  }
  if (input.country === null) {
    const why = input.locationProblem === undefined ? '' : ` (${input.locationProblem})`
    return { action: policy.unknownLocation, enforced: rule.enforced, rule: rule.name, reason: `the caller's location is unknown${why}: policy.unknown_location is ${policy.unknownLocation}` }
  }
  if (rule.allow !== null && !rule.allow.has(input.country)) {
    return { action: rule.action, enforced: rule.enforced, rule: rule.name, reason: `country ${input.country} is not in the allow list of rule ${rule.name}` }
  }
  if (rule.deny?.has(input.country) === true) {
    return { action: rule.action, enforced: rule.enforced, rule: rule.name, reason: `country ${input.country} is in the deny list of rule ${rule.name}` }
  }
  return { action: 'allow', enforced: rule.enforced, rule: rule.name, reason: `country ${input.country} passes rule ${rule.name}` }
}

function firstMatch (rules: readonly CompiledRule[], model: string): CompiledRule | undefined {
  for (const rule of rules) if (rule.model.test(model)) return rule
  return undefined
}
