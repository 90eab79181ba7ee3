// The Grafana dashboard and the Prometheus alert rules in config/ name only series a running
// gateway exports, from its first scrape and whatever its configuration; the rules are valid
// (promtool where it is installed, their structure always).
import { execFile, spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { parse, stringify } from 'yaml'
import { startFakeUpstream } from '../support/fake-upstream.js'
import { ANONYMOUS_IP, fixtureDir, MAXMIND_CITY, writeMmdb } from '../support/fixtures.js'
import { baseConfig, startTestGateway } from '../support/gateway.js'
import { send } from '../support/http.js'

const DASHBOARD = 'config/grafana/llm-geofence.json'
const RULES = 'config/prometheus/alerts.yaml'
/** Series Prometheus makes itself for every target, not the gateway. */
const PROMETHEUS_MADE = new Set(['up'])
const HAS_PROMTOOL = spawnSync('promtool', ['--version']).error === undefined

interface Rule { alert?: unknown, expr?: unknown, for?: unknown, labels?: Record<string, unknown>, annotations?: Record<string, unknown> }
interface Group { name?: unknown, rules?: unknown }

/** Every PromQL expression of the dashboard (panels, rows, annotations) and of the rules, with where it is. */
function expressions (): Array<{ where: string, expr: string }> {
  const out: Array<{ where: string, expr: string }> = []
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Record<string, any>
  const walk = (panels: Array<Record<string, any>>): void => {
    for (const p of panels) {
      for (const target of p['targets'] ?? []) out.push({ where: `${DASHBOARD}: panel "${String(p['title'])}" ${String(target.refId)}`, expr: target.expr })
      walk(p['panels'] ?? [])
    }
  }
  walk(dashboard['panels'])
  for (const a of dashboard['annotations']?.list ?? []) if (typeof a.expr === 'string') out.push({ where: `${DASHBOARD}: annotation "${String(a.name)}"`, expr: a.expr })
  const groups = (parse(readFileSync(RULES, 'utf8')) as { groups: Group[] }).groups
  for (const g of groups) for (const r of g.rules as Rule[]) out.push({ where: `${RULES}: ${String(r.alert)}`, expr: String(r.expr) })
  return out
}

/** The template variables' queries: label_values(METRIC{...}, label). */
function variableMetrics (): Array<{ where: string, name: string }> {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Record<string, any>
  return (dashboard['templating']?.list ?? []).flatMap((v: Record<string, any>) => {
    const query = typeof v['query'] === 'string' ? v['query'] : v['query']?.query
    const m = typeof query === 'string' ? /^label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)/.exec(query) : null
    return m === null ? [] : [{ where: `${DASHBOARD}: variable $${String(v['name'])}`, name: m[1] ?? '' }]
  })
}

const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan'])

/**
 * The metric names an expression reads: strings, label matchers, ranges and grouping lists
 * taken out, then every identifier that is not a function call, a keyword or part of a number.
 */
function metricNames (expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
  const names = new Set<string>()
  for (const m of bare.matchAll(/(?<![A-Za-z0-9_:.$])[A-Za-z_:][A-Za-z0-9_:]*(?![A-Za-z0-9_:]|\s*\()/g)) {
    if (!PROMQL_WORDS.has(m[0].toLowerCase())) names.add(m[0])
  }
  return [...names]
}

/** Families as the admin port declares them (`# TYPE name kind`), so a family with no sample yet counts. */
async function exportedFamilies (adminUrl: string): Promise<Map<string, string>> {
  const text = (await send(`${adminUrl}/metrics`)).body
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1] ?? '', m[2] ?? '']))
}

/** A histogram's or summary's series (_bucket, _sum, _count) belong to its family. */
function family (name: string, families: ReadonlyMap<string, string>): string | undefined {
  if (families.has(name)) return name
  const base = name.replace(/_(?:bucket|sum|count)$/, '')
  return ['histogram', 'summary'].includes(families.get(base) ?? '') ? base : undefined
}

t.test('metric names are read out of PromQL', async (t) => {
  t.same(metricNames('sum by (le, upstream) (rate(geofence_request_duration_seconds_bucket{job=~"$job", code=~"5.."}[$__rate_interval]))'), ['geofence_request_duration_seconds_bucket'])
  t.same(metricNames('(time() - max by (database) (a_seconds{x="by (y)"})) / 86400 > 35 and on (job) b offset 5m'), ['a_seconds', 'b'])
  t.same(metricNames('up{job="x"} == 0 or absent(up{job="x"})'), ['up'])
  t.same(metricNames('histogram_quantile(0.95, sum(rate(c_bucket[5m])) by (le)) > bool 1e3'), ['c_bucket'])
})

t.test('the dashboard and the alert rules name only exported metrics, from the first scrape, whatever the configuration', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const minimal = await startTestGateway(`
upstreams:
  anthropic: { url: "${upstream.url}", dialect: anthropic }
geoip: { cache: { max_entries: 0 } }
policy: { default: allow, rules: [] }
server: { host: 127.0.0.1, port: 0, max_event_loop_delay: 0 }
`)
  t.teardown(minimal.close)
  const dir = fixtureDir()
  const city = writeMmdb(dir, 'GeoIP2-City.mmdb', MAXMIND_CITY, 'GeoIP2-City')
  const anonymous = writeMmdb(dir, 'GeoIP2-Anonymous-IP.mmdb', ANONYMOUS_IP, 'GeoIP2-Anonymous-IP')
  const full = await startTestGateway(`${baseConfig(upstream.url, { policy: '  anonymous: block' })}
geoip: { databases: ["${city}", embedded], anonymous_ip: "${anonymous}" }
networks: [{ cidr: 10.20.0.0/16, country: HK, name: hk-office }]
`)
  t.teardown(full.close)

  // No request has been made: every family must be there already.
  const families = await exportedFamilies(minimal.adminUrl)
  t.same([...families.keys()].sort(), [...(await exportedFamilies(full.adminUrl)).keys()].sort(), 'the same families with the smallest and a full configuration')
  const documented = [...readFileSync('README.md', 'utf8').matchAll(/^\| `(geofence_\w+)`/gm)].map((m) => m[1]).sort()
  t.same([...families.keys()].filter((n) => n.startsWith('geofence_')).sort(), documented, 'the gateway\'s own families are those the README\'s table lists')

  const uses = [
    ...expressions().flatMap(({ where, expr }) => metricNames(expr).map((name) => ({ where, name }))),
    ...variableMetrics(),
  ]
  t.ok(uses.length > 30, `${uses.length} metric references in ${expressions().length} expressions and the template variables`)
  const missing = uses.filter(({ name }) => !PROMETHEUS_MADE.has(name) && family(name, families) === undefined)
  t.same(missing, [], 'every name is an exported family (or a histogram series of one)')
  const unused = [...families.keys()].filter((f) => f.startsWith('geofence_') && !uses.some((u) => family(u.name, families) === f))
  t.same(unused, [], 'and the dashboard or a rule shows every geofence_ family')
})

t.test('the alert rules are valid', async (t) => {
  const doc = parse(readFileSync(RULES, 'utf8')) as { groups?: Group[] }
  t.ok(Array.isArray(doc.groups) && doc.groups.length > 0, 'groups')
  const names = new Set<string>()
  for (const g of doc.groups ?? []) {
    t.type(g.name, 'string', 'each group has a name')
    t.ok(Array.isArray(g.rules) && g.rules.length > 0, `group ${String(g.name)} has rules`)
    for (const r of (g.rules ?? []) as Rule[]) {
      const name = String(r.alert)
      t.match(r.alert, /^[A-Za-z_][A-Za-z0-9_]*$/, `${name}: an alert name`)
      t.notOk(names.has(name), `${name}: a unique name`)
      names.add(name)
      t.ok(typeof r.expr === 'string' && r.expr.trim() !== '', `${name}: an expr`)
      t.match(r.for, /^(?:\d+[smhdwy])+$/, `${name}: a for duration`)
      t.match(r.labels?.['severity'], /^(?:critical|warning|info)$/, `${name}: a severity`)
      t.ok(typeof r.annotations?.['summary'] === 'string' && typeof r.annotations['description'] === 'string', `${name}: a summary and a description`)
      t.ok(balanced(String(r.expr)), `${name}: brackets balance`)
    }
  }
  for (const wanted of ['GeofenceDown', 'GeofenceReloadFailing', 'GeofenceErrorRateHigh', 'GeofenceDatabaseStale', 'GeofenceBlockRateHigh']) t.ok(names.has(wanted), `${wanted} is there`)
  if (!HAS_PROMTOOL) {
    t.comment('promtool is not on PATH: the rules were checked for structure only (install the Debian package prometheus for `promtool check rules`)')
    return
  }
  t.comment('promtool is on PATH: `promtool check rules` ran as well as the structure check')
  const { stdout } = await promisify(execFile)('promtool', ['check', 'rules', RULES])
  t.match(stdout, /SUCCESS: \d+ rules found/, 'promtool check rules')
})

t.test('the dashboard is valid', async (t) => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Record<string, any>
  t.equal(dashboard['uid'], 'llm-geofence')
  const panels = dashboard['panels'] as Array<Record<string, any>>
  t.equal(new Set(panels.map((p) => p['id'])).size, panels.length, 'panel ids are unique')
  for (const p of panels.filter((p) => p['type'] !== 'row')) {
    t.same(p['datasource'], { type: 'prometheus', uid: '${datasource}' }, `"${String(p['title'])}" reads the chosen data source`)
    t.ok(p['targets'].length > 0 && p['targets'].every((x: Record<string, unknown>) => typeof x['expr'] === 'string' && balanced(String(x['expr']))), `"${String(p['title'])}" has queries`)
  }
  for (const wanted of ['Decisions by action', 'Decisions by rule', 'Decisions by caller country (top 10)', 'Decisions by upstream', 'Block rate',
    'Request duration', 'Upstream time to first byte', 'Upstream errors', 'Location cache hit ratio', 'Reloads', 'Database age', 'In flight']) {
    t.ok(panels.some((p) => p['title'] === wanted), `a "${wanted}" panel`)
  }
  if (!HAS_PROMTOOL) {
    t.comment('promtool is not on PATH: the dashboard\'s expressions were checked for balanced brackets only')
    return
  }
  // Each expression as a recording rule, Grafana's variables filled in, for promtool's parser.
  const file = join(fixtureDir(), 'dashboard-rules.yaml')
  const rules = expressions().filter((e) => e.where.startsWith(DASHBOARD)).map((e, i) => ({
    record: `dashboard:expression_${i}`,
    expr: e.expr.replace(/\$__\w+/g, '5m').replace(/\$\w+/g, '.*'),
  }))
  writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules }] }))
  const { stdout } = await promisify(execFile)('promtool', ['check', 'rules', file])
  t.comment('promtool is on PATH: every dashboard expression was parsed by `promtool check rules`')
  t.match(stdout, new RegExp(`SUCCESS: ${rules.length} rules found`), 'promtool parses every dashboard expression')
})

t.test('the error-rate series counts a gateway 502', async (t) => {
  const gw = await startTestGateway(baseConfig('http://127.0.0.1:1'))
  t.teardown(gw.close)
  t.equal((await send(`${gw.url}/anthropic/v1/messages`, { body: JSON.stringify({ model: 'claude-sonnet-4-5' }), headers: { 'x-forwarded-for': '8.8.8.8' } })).status, 502)
  t.match((await send(`${gw.adminUrl}/metrics`)).body, /geofence_responses_total\{upstream="anthropic",code="502"\} 1/, 'counted')
})

function balanced (expr: string): boolean {
  const open: string[] = []
  const pairs: Record<string, string> = { ')': '(', ']': '[', '}': '{' }
  for (const c of expr.replace(/"(?:[^"\\]|\\.)*"/g, '""')) {
    if ('([{'.includes(c)) open.push(c)
    else if (c in pairs && open.pop() !== pairs[c]) return false
  }
  return open.length === 0
}
