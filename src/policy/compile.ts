// Config -> lookup tables, once per revision: rules grouped by upstream, model globs as one
// anchored case-insensitive RegExp per rule, allow/deny lists as sets of codes.
import type { AnonymousPolicy, JurisdictionSource, LocationBasis, Mode, PolicySettings, RuleAction, Verdict } from './rules.js'

export interface CompiledRule {
  name: string
  model: RegExp
  allow: ReadonlySet<string> | null
  deny: ReadonlySet<string> | null
  action: RuleAction
  enforced: boolean
  anonymous: AnonymousPolicy
  /** Null: every caller; else only requests authenticated as one of these clients. */
  clients: ReadonlySet<string> | null
  /** Which locations are judged: the network address, the identity token, or both. */
  jurisdiction: readonly JurisdictionSource[]
  /** `entity:NAME` entries (the identity's legal entity); null when the list names none. */
  allowEntities: ReadonlySet<string> | null
  denyEntities: ReadonlySet<string> | null
}

export interface Policy {
  revision: string
  mode: Mode
  default: Verdict
  unknownLocation: Verdict
  unknownModel: Verdict
  unknownEndpoint: Verdict
  location: LocationBasis
  /** The rules that apply to each upstream, in file order. */
  rulesByUpstream: ReadonlyMap<string, readonly CompiledRule[]>
}

export function globToRegExp (globs: readonly string[]): RegExp {
  const alternatives = globs.map((g) => g.split('').map((ch) => {
    if (ch === '*') return '.*'
    if (ch === '?') return '.'
    return ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&')
  }).join(''))
  return new RegExp(`^(?:${alternatives.join('|')})$`, 'is')
}

/** What compiling needs of a config: its revision, its upstreams' names and its policy section. */
export interface PolicySource {
  revision: string
  upstreams: ReadonlyMap<string, unknown>
  policy: PolicySettings
}

export function compilePolicy (config: PolicySource): Policy {
  const rules = config.policy.rules.map((r) => ({
    upstreams: r.upstreams,
    compiled: {
      name: r.name,
      model: globToRegExp(r.models),
      allow: r.allow,
      deny: r.deny,
      action: r.action,
      enforced: r.mode === 'enforce',
      anonymous: r.anonymous,
      clients: r.clients === null ? null : new Set(r.clients),
      jurisdiction: r.jurisdiction,
      allowEntities: r.allowEntities,
      denyEntities: r.denyEntities,
    } satisfies CompiledRule,
  }))
  const rulesByUpstream = new Map<string, CompiledRule[]>()
  for (const name of config.upstreams.keys()) {
    rulesByUpstream.set(name, rules.filter((r) => r.upstreams === null || r.upstreams.includes(name)).map((r) => r.compiled))
  }
  return {
    revision: config.revision,
    mode: config.policy.mode,
    default: config.policy.default,
    unknownLocation: config.policy.unknownLocation,
    unknownModel: config.policy.unknownModel,
    unknownEndpoint: config.policy.unknownEndpoint,
    location: config.policy.location,
    rulesByUpstream,
  }
}
