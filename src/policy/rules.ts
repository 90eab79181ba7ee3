// A policy as data: the settings and rules that config/ validates a file into and that
// compile.ts turns into lookup tables. The policy owns these types; config/ fills them in.

export type Mode = 'enforce' | 'dry-run'
export type Verdict = 'block' | 'allow'
/** What a rule does with an anonymous (VPN, hosting, Tor) caller: `unknown` treats it as an unknown location. */
export type AnonymousPolicy = 'block' | 'allow' | 'unknown'
/** Which country of a database record the policy judges. */
export type LocationBasis = 'country' | 'registered_country' | 'strictest'

/** Where a caller's jurisdiction is read from: the network address, or the identity token. */
export type JurisdictionSource = 'network' | 'identity'

export type RuleAction = { kind: 'block' } | { kind: 'route', upstream: string, model: string }

export interface RuleConfig {
  name: string
  /** Null: every upstream. */
  upstreams: readonly string[] | null
  models: readonly string[]
  /** False when the rule has no `models` key (it matches every model). */
  modelsListed: boolean
  /** Country and subdivision codes after groups are expanded; null when the rule has no such list. */
  allow: ReadonlySet<string> | null
  deny: ReadonlySet<string> | null
  action: RuleAction
  mode: Mode
  anonymous: AnonymousPolicy
  /** Null: every client (and requests without client authentication). */
  clients: readonly string[] | null
  /** Where the rule names subdivisions (directly or through a group), for the City-database check. */
  subdivisionPaths: ReadonlyArray<Array<string | number>>
  /** Which locations the rule judges (policy.jurisdiction unless the rule has its own). */
  jurisdiction: readonly JurisdictionSource[]
  /** The identity's legal entities of `entity:NAME` entries; null when the list names none. */
  allowEntities: ReadonlySet<string> | null
  denyEntities: ReadonlySet<string> | null
}

/** The `policy:` section as validated. */
export interface PolicySettings {
  mode: Mode
  default: Verdict
  unknownLocation: Verdict
  unknownModel: Verdict
  /** An endpoint the dialect's table does not list (default block), whatever `default` says. */
  unknownEndpoint: Verdict
  anonymous: AnonymousPolicy
  location: LocationBasis
  /** The locations every rule judges unless it names its own (default: the network). */
  jurisdiction: readonly JurisdictionSource[]
  rules: readonly RuleConfig[]
}
