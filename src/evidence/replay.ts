// `geofence replay`: every decision a log recorded, decided again under a candidate policy, to
// see what a change would do before it is rolled out. What the log recorded is held fixed (the
// caller's location, the identity's jurisdiction, the client, the endpoint, the models as
// written); only the policy (and, with new databases, the location of callers whose full
// address was logged) changes. The models are named again under the candidate's model_aliases,
// and decided by the very code `serve` decides with (pipeline/decision.ts).
//
// Speed: a day's log is millions of lines. The facts of a decision are one contiguous run of
// its line (pipeline/record.ts writes them so), from `"schema"` to the identity's `"subject"`
// or `"duration_ms"`; that run is the cache key, so a line whose facts were seen before costs
// a few `indexOf`s and one map lookup, and only a line with new facts is parsed and decided.
import type { UpstreamConfig } from '../config/validate.js'
import { DIALECTS } from '../dialects/registry.js'
import { canonicalAddress } from '../geo/address.js'
import { DEFAULT_DATABASE, openDatabase } from '../geo/databases.js'
import { Locator, type Location } from '../geo/locator.js'
import { EMBEDDED_DATABASE } from '../config/validate.js'
import { decide } from '../pipeline/decision.js'
import { nameModel } from '../pipeline/models.js'
import { decidedBy, type Decision } from '../policy/evaluate.js'
import type { Runtime } from '../runtime.js'
import { eachLine, type LinePlace } from './lines.js'
import { readDecisionLine, type Facts } from './decision-line.js'

export const CHANGES = ['newly_blocked', 'newly_allowed', 'newly_routed'] as const
export type Change = typeof CHANGES[number]
type Category = 'unchanged' | Change

/** What became of the changed requests, by what each now depends on. */
export interface Breakdown {
  /** The rule (or setting) that decides under the candidate. */
  rule: Record<string, number>
  /** The rule (or setting) that decided when the line was written. */
  logged_rule: Record<string, number>
  model: Record<string, number>
  country: Record<string, number>
  client: Record<string, number>
}

export interface ReplayReport {
  candidate: { config: string, policy_revision: string }
  files: string[]
  /** Every line read. */
  lines: number
  /** Decision lines decided again. */
  decisions: number
  unchanged: number
  newly_blocked: number
  newly_allowed: number
  newly_routed: number
  /** Decision lines of requests refused before any decision (400, 401, 404, 413, 415, 499, ...): not decided again. */
  not_decided: number
  /** Lines that are not decision lines (start, reloads, checkpoints). */
  other_lines: number
  /** Lines that are not JSON. */
  unreadable: number
  /** With new databases: decisions whose caller was located again, and those whose log holds no full address. */
  relocated?: number
  kept_location?: number
  breakdown: Record<Change, Breakdown>
  /** The decision ids of the changed requests, in log order. */
  changed: string[]
}

export interface ReplayOptions {
  /** Locate callers again with these databases, where the log carries the caller's full address. */
  locator?: Locator
}

/**
 * A locator over candidate databases (`embedded` is the built-in one), with the candidate's
 * networks and Anonymous IP database, and a cache as large as a day's distinct callers.
 */
export async function candidateLocator (candidate: Runtime, files: readonly string[]): Promise<Locator> {
  const databases = await Promise.all(files.map(async (f) => openDatabase(f === EMBEDDED_DATABASE ? DEFAULT_DATABASE : f, 'location')))
  return new Locator(databases, { maxEntries: 1_000_000, ttlMs: 0 }, { networks: candidate.config.networks, anonymous: candidate.locator.anonymousDb })
}

/** What one set of facts came to, and how many lines had them. */
interface Entry {
  kind: 'decision' | 'not_decided' | 'other'
  category: Category
  rule: string
  loggedRule: string
  model: string
  country: string
  client: string
  count: number
}

const OTHER: Entry = { kind: 'other', category: 'unchanged', rule: '', loggedRule: '', model: '', country: '', client: '', count: 0 }
/** The cache is cleared (its counts added up first) past this many distinct fact sets. */
const MAX_ENTRIES = 100_000

const SCHEMA_KEY = '"schema":'
const SUBJECT_KEY = ',"subject":'
const DURATION_KEY = ',"duration_ms":'
const ID_KEY = '"decision_id":"'
const IP_KEY = '"client_ip":"'
/** Keys a line of our layout may hold before its facts, and after them. */
const HEAD_KEYS = new Set(['level', 'time', 'pid', 'hostname', 'decision_id', 'policy_revision', 'policy_key', 'client_ip', 'path'])
const TAIL_KEYS = new Set(['duration_ms', 'upstream_error', 'cut', 'msg', 'chain', 'seq', 'prev'])

export async function replay (files: readonly string[], candidate: Runtime, opts: ReplayOptions = {}): Promise<ReplayReport> {
  const report: ReplayReport = {
    candidate: { config: candidate.config.file, policy_revision: candidate.policy.revision },
    files: [...files],
    lines: 0,
    decisions: 0,
    unchanged: 0,
    newly_blocked: 0,
    newly_allowed: 0,
    newly_routed: 0,
    not_decided: 0,
    other_lines: 0,
    unreadable: 0,
    ...(opts.locator === undefined ? {} : { relocated: 0, kept_location: 0 }),
    breakdown: { newly_blocked: emptyBreakdown(), newly_allowed: emptyBreakdown(), newly_routed: emptyBreakdown() },
    changed: [],
  }
  const cache = new Map<string, Entry>()
  const locator = opts.locator
  const locationIds = new Map<Location, number>()
  const flush = (): void => {
    for (const e of cache.values()) addUp(report, e)
    cache.clear()
  }

  /** A line that had `entry`'s facts: its id if it changed, and whether its caller was located again. */
  const counted = (entry: Entry, line: string, relocated: Location | null): void => {
    if (entry.kind !== 'decision') return
    if (entry.category !== 'unchanged') report.changed.push(decisionId(line))
    if (locator === undefined) return
    if (relocated === null) report.kept_location = (report.kept_location ?? 0) + 1
    else report.relocated = (report.relocated ?? 0) + 1
  }

  for (const file of files) {
    report.lines += await eachLine(file, (line, n) => {
      if (line.length === 0) return
      // The fast path: a line of our layout whose facts were seen before.
      let key: string | null = null
      let relocated: Location | null = null
      const s = line.indexOf(SCHEMA_KEY)
      if (s > 0 && line.charCodeAt(s - 1) === 44 /* , */ && line.charCodeAt(s + SCHEMA_KEY.length) === 49 /* 1 */ && line.charCodeAt(s + SCHEMA_KEY.length + 1) === 44) {
        // From the end: duration_ms is near it, and the identity (if any) just before it.
        const duration = line.lastIndexOf(DURATION_KEY)
        const end = duration > s && line.charCodeAt(duration - 1) === 125 /* } */ ? line.lastIndexOf(SUBJECT_KEY, duration) : duration
        if (end > s) {
          key = line.slice(s, end)
          if (locator !== undefined) {
            relocated = relocate(line, locator)
            if (relocated !== null) {
              let id = locationIds.get(relocated)
              if (id === undefined) locationIds.set(relocated, id = locationIds.size)
              key = `${id}\u0001${key}`
            }
          }
          const hit = cache.get(key)
          if (hit !== undefined) {
            hit.count++
            counted(hit, line, relocated)
            return
          }
        }
      }
      // New facts, or a line of another layout: parsed and decided.
      const judged = judgeLine(line, { file, line: n }, candidate, relocated)
      if (judged === null) {
        report.unreadable++
        return
      }
      judged.count = 1
      counted(judged, line, relocated)
      if (key !== null && judged.kind !== 'other' && conforms(line)) {
        if (cache.size >= MAX_ENTRIES) flush()
        // A copy: the key would otherwise keep the whole read it was sliced from alive.
        cache.set(Buffer.from(key, 'utf8').toString('utf8'), judged)
      } else {
        addUp(report, judged)
      }
    })
  }
  flush()
  return report
}

function emptyBreakdown (): Breakdown {
  return { rule: {}, logged_rule: {}, model: {}, country: {}, client: {} }
}

function addUp (report: ReplayReport, e: Entry): void {
  if (e.count === 0) return
  if (e.kind === 'other') {
    report.other_lines += e.count
    return
  }
  if (e.kind === 'not_decided') {
    report.not_decided += e.count
    return
  }
  report.decisions += e.count
  report[e.category] += e.count
  if (e.category === 'unchanged') return
  const b = report.breakdown[e.category]
  b.rule[e.rule] = (b.rule[e.rule] ?? 0) + e.count
  b.logged_rule[e.loggedRule] = (b.logged_rule[e.loggedRule] ?? 0) + e.count
  b.model[e.model] = (b.model[e.model] ?? 0) + e.count
  b.country[e.country] = (b.country[e.country] ?? 0) + e.count
  b.client[e.client] = (b.client[e.client] ?? 0) + e.count
}

/** The decision id, copied out of the line (a slice would keep the whole read alive). */
function decisionId (line: string): string {
  const at = line.indexOf(ID_KEY)
  if (at === -1) return '(no decision id)'
  const start = at + ID_KEY.length
  return Buffer.from(line.slice(start, line.indexOf('"', start)), 'latin1').toString('latin1')
}

/** The caller's location under the new databases, or null when the line holds no full address. */
function relocate (line: string, locator: Locator): Location | null {
  const at = line.indexOf(IP_KEY)
  if (at === -1) return null
  const start = at + IP_KEY.length
  const ip = canonicalAddress(line.slice(start, line.indexOf('"', start)))
  return ip === null ? null : locator.locate(ip)
}

/**
 * Whether the line's keys are in the order pipeline/record.ts writes them, so that the run from
 * "schema" holds every fact: only then does the run stand for the line in the cache. Called
 * once per new run, not per line.
 */
function conforms (line: string): boolean {
  const obj = JSON.parse(line) as Record<string, unknown>
  const keys = Object.keys(obj)
  const first = keys.indexOf('schema')
  const identity = obj['identity']
  const last = identity === undefined ? keys.indexOf('duration_ms') : keys.indexOf('identity')
  if (first === -1 || last === -1) return false
  if (!keys.slice(0, first).every((k) => HEAD_KEYS.has(k))) return false
  if (!keys.slice(last + 1).every((k) => TAIL_KEYS.has(k))) return false
  if (identity !== undefined) {
    const idKeys = Object.keys(identity as object)
    if (idKeys.slice(0, 5).join() !== 'country,subdivisions,entity,issuer,source_claim') return false
  }
  return true
}

/** A line decided from its parsed JSON; null when it is not JSON. */
function judgeLine (line: string, place: LinePlace, candidate: Runtime, relocated: Location | null): Entry | null {
  let obj: Record<string, unknown>
  try {
    const parsed: unknown = JSON.parse(line)
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return null
    obj = parsed as Record<string, unknown>
  } catch {
    return null
  }
  if (obj['msg'] !== 'decision') return { ...OTHER }
  const { logged, facts } = readDecisionLine(obj, place)
  const country = relocated === null ? facts.location.country : relocated.country
  const common = {
    loggedRule: logged.rule ?? decidedBy({ rule: null, ...(logged.setting === undefined ? {} : { setting: logged.setting }) }),
    model: facts.modelLabel,
    country: country ?? 'unknown',
    client: facts.client ?? '(none)',
    count: 0,
  }
  if (logged.rule === null && logged.setting === undefined) return { ...common, kind: 'not_decided', category: 'unchanged', rule: '' }
  const now = redecide(candidate, relocated === null ? facts : { ...facts, location: relocated, locationProblem: relocated.reason })
  const before = outcome(logged)
  const after = outcome(now)
  const category: Category = before === after ? 'unchanged' : after === 'allow' ? 'newly_allowed' : after === 'block' ? 'newly_blocked' : 'newly_routed'
  return { ...common, kind: 'decision', category, rule: now.rule ?? (now.setting === undefined ? '(no upstream)' : decidedBy(now)) }
}

/** What a request came to: allowed, blocked, or routed to where (a dry-run block or route is allowed). */
function outcome (d: Pick<Decision, 'action' | 'enforced' | 'route'>): string {
  if (d.action === 'allow' || !d.enforced) return 'allow'
  if (d.action === 'block') return 'block'
  return `route ${d.route?.upstream ?? ''} ${d.route?.model ?? ''}`
}

/** The decision the candidate takes on the recorded facts, by the stage `serve` decides with. */
export function redecide (candidate: Runtime, f: Facts): Decision {
  const upstream: UpstreamConfig | undefined = f.upstream === null ? undefined : candidate.config.upstreams.get(f.upstream)
  if (upstream === undefined) {
    return { action: 'block', enforced: true, rule: null, reason: `the candidate mounts no upstream "${f.upstream ?? ''}" (a 404)` }
  }
  const dialect = DIALECTS[upstream.dialect]
  const written = f.batchModels ?? (f.model === null ? [] : [f.model])
  const models = written.map((m) => nameModel(dialect, upstream, m))
  const listed = models.length === 0 && f.unknownModel === undefined && f.unlistedEndpoint === undefined && f.endpoint !== undefined && upstream.endpoints?.test(f.endpoint) === true
  const { decision } = decide({
    runtime: candidate,
    upstream,
    client: f.client,
    location: f.location,
    locationProblem: f.locationProblem,
    identity: f.identity,
    identityProblem: f.identityProblem,
  }, { dialect }, {
    models,
    ...(f.unknownModel === undefined ? {} : { unseen: f.unknownModel }),
    ...(f.unlistedEndpoint === undefined ? {} : { unlistedEndpoint: f.unlistedEndpoint }),
    ...(listed && f.endpoint !== undefined ? { listedEndpoint: f.endpoint } : {}),
    // The decision only asks whether a route could be carried out on the request.
    rewrite: f.notRoutable === undefined ? { kind: 'query', param: 'model' } : { kind: 'refused', why: f.notRoutable },
  })
  return decision
}

/** The summary a compliance officer reads. */
export function formatReplay (r: ReplayReport): string {
  const n = (x: number): string => x.toLocaleString('en-US')
  const width = Math.max(...[r.decisions, r.not_decided].map((x) => n(x).length))
  const row = (label: string, x: number): string => `  ${label.padEnd(16)}${n(x).padStart(width)}`
  const top = (counts: Record<string, number>): string => Object.entries(counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 10).map(([k, v]) => `${k} ${n(v)}`).join(', ')
  const out = [
    `replay of ${r.files.join(', ')} under ${r.candidate.config} (revision ${r.candidate.policy_revision.slice(0, 12)})`,
    `${n(r.decisions)} decisions decided again${r.relocated === undefined ? '' : ` (${n(r.relocated)} callers located again with the new databases, ${n(r.kept_location ?? 0)} kept their logged location: no full address)`}:`,
    row('unchanged', r.unchanged),
  ]
  for (const change of CHANGES) {
    out.push(row(change.replace('_', ' '), r[change]))
    if (r[change] === 0) continue
    const b = r.breakdown[change]
    out.push(`      by rule now:      ${top(b.rule)}`)
    out.push(`      by rule before:   ${top(b.logged_rule)}`)
    out.push(`      by model:         ${top(b.model)}`)
    out.push(`      by country:       ${top(b.country)}`)
    out.push(`      by client:        ${top(b.client)}`)
  }
  out.push(`not decided again: ${n(r.not_decided)} requests refused before a decision (400, 401, 404, 413, 415, ...)`)
  out.push(`other lines: ${n(r.other_lines)}${r.unreadable > 0 ? `; ${n(r.unreadable)} lines are not JSON` : ''}`)
  out.push(`changed decisions (${n(r.changed.length)}):`)
  for (const id of r.changed) out.push(`  ${id}`)
  return `${out.join('\n')}\n`
}
