// `geofence test FILE...`: table-driven policy tests for compliance teams' CI, in the spirit
// of `opa test`. Each file names a config (relative to the test file) and cases of
// { name, ip, model, upstream?, client?, expect: allow | block | route:MODEL }, or, instead of
// model and upstream, a whole request: { request: "POST /bedrock/model/.../converse",
// headers?, body? } (a body given as a mapping is sent as JSON). Every case goes through the
// same pipeline as `explain` and a live request.
import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { LineCounter, parseDocument } from 'yaml'
import { ConfigError } from './errors.js'
import { explainRequest, explainWith, identityOf, type ExplainRequest, type Explanation } from './explain.js'
import { decidedBy } from './policy/evaluate.js'
import { loadRuntime, type Runtime } from './runtime.js'

export interface CaseResult {
  file: string
  name: string
  expect: string
  got: string
  ok: boolean
  explanation?: Explanation
  problem?: string
}

interface RawCase { name?: unknown, ip?: unknown, model?: unknown, upstream?: unknown, client?: unknown, identity?: unknown, expect?: unknown, request?: unknown, headers?: unknown, body?: unknown }

const CASE_KEYS = new Set(['name', 'ip', 'model', 'upstream', 'client', 'identity', 'request', 'headers', 'body', 'expect'])
const REQUEST = /^[A-Z]+ \/\S*$/
const EXPECT = /^(allow|block|route:.+)$/

export async function runPolicyTests (files: readonly string[]): Promise<CaseResult[]> {
  const runtimes = new Map<string, Runtime>()
  const results: CaseResult[] = []
  for (const file of files) {
    const text = await readFile(file, 'utf8')
    const lineCounter = new LineCounter()
    const doc = parseDocument(text, { lineCounter, uniqueKeys: true })
    if (doc.errors.length > 0) throw new ConfigError(file, doc.errors.map((e) => ({ path: [], message: e.message.split('\n')[0] ?? e.message })))
    const raw = doc.toJS() as { config?: unknown, cases?: unknown } | null
    const problems: Array<{ path: Array<string | number>, message: string }> = []
    if (raw === null || typeof raw !== 'object') throw new ConfigError(file, [{ path: [], message: 'a test file is a mapping with "config" and "cases"' }])
    for (const key of Object.keys(raw)) if (key !== 'config' && key !== 'cases') problems.push({ path: [key], message: `unknown key "${key}" (known keys: config, cases)` })
    if (typeof raw.config !== 'string') problems.push({ path: ['config'], message: 'must be the path of a config file, relative to this file' })
    const cases = Array.isArray(raw.cases) ? raw.cases as RawCase[] : []
    if (raw.cases !== undefined && !Array.isArray(raw.cases)) problems.push({ path: ['cases'], message: 'must be a list of cases' })
    cases.forEach((c, i) => {
      if (c === null || typeof c !== 'object') { problems.push({ path: ['cases', i], message: 'a case is a mapping' }); return }
      for (const key of Object.keys(c)) if (!CASE_KEYS.has(key)) problems.push({ path: ['cases', i, key], message: `unknown key "${key}" (known keys: ${[...CASE_KEYS].join(', ')})` })
      for (const key of ['name', 'ip', 'expect'] as const) if (typeof c[key] !== 'string') problems.push({ path: ['cases', i, key], message: 'required, a string' })
      if ((c.model === undefined) === (c.request === undefined)) problems.push({ path: ['cases', i], message: 'a case names a model, or a whole request (request: "POST /upstream/path"), not both' })
      if (c.model !== undefined && typeof c.model !== 'string') problems.push({ path: ['cases', i, 'model'], message: 'must be a string' })
      if (c.request !== undefined && (typeof c.request !== 'string' || !REQUEST.test(c.request))) problems.push({ path: ['cases', i, 'request'], message: 'must be "METHOD /upstream/path?query"' })
      if (c.request === undefined && (c.headers !== undefined || c.body !== undefined)) problems.push({ path: ['cases', i], message: 'headers and body go with request' })
      if (c.request !== undefined && c.upstream !== undefined) problems.push({ path: ['cases', i, 'upstream'], message: 'a request names its upstream in its path' })
      if (c.headers !== undefined && (c.headers === null || typeof c.headers !== 'object' || Object.values(c.headers).some((v) => typeof v !== 'string'))) problems.push({ path: ['cases', i, 'headers'], message: 'must map header names to strings' })
      if (c.body !== undefined && (c.body === null || (typeof c.body !== 'string' && typeof c.body !== 'object'))) problems.push({ path: ['cases', i, 'body'], message: 'must be a string, or a mapping sent as JSON' })
      if (c.identity !== undefined && (c.identity === null || typeof c.identity !== 'object' || Array.isArray(c.identity))) problems.push({ path: ['cases', i, 'identity'], message: 'must be the identity token\'s claims, a mapping (ctry: HK)' })
      for (const key of ['upstream', 'client'] as const) if (c[key] !== undefined && typeof c[key] !== 'string') problems.push({ path: ['cases', i, key], message: 'must be a string' })
      if (typeof c.expect === 'string' && !EXPECT.test(c.expect)) problems.push({ path: ['cases', i, 'expect'], message: 'must be allow, block or route:MODEL' })
    })
    if (problems.length > 0) {
      throw new ConfigError(file, problems.map((p) => {
        const node = doc.getIn(p.path, true) as { range?: [number, number, number] } | undefined
        const pos = node?.range === undefined ? undefined : lineCounter.linePos(node.range[0])
        return { ...p, ...(pos === undefined ? {} : { line: pos.line, col: pos.col }) }
      }))
    }
    const configFile = resolve(dirname(file), raw.config as string)
    let runtime = runtimes.get(configFile)
    if (runtime === undefined) {
      // Tests run before a policy is signed: its signature is not checked.
      runtime = await loadRuntime(configFile, { identityKeys: false, policyKeys: null })
      runtimes.set(configFile, runtime)
    }
    for (const c of cases) {
      const name = c.name as string
      const expect = c.expect as string
      const id = await identityOf(runtime, c.identity === undefined ? undefined : { claims: c.identity as Record<string, unknown> })
      const e = 'problem' in id
        ? id
        : c.request === undefined
          ? explainWith(runtime, c.ip as string, c.model as string, c.upstream as string | undefined, c.client as string | undefined, id.identity)
          : await explainRequest(runtime, c.ip as string, caseRequest(c), c.client as string | undefined, id.identity)
      if ('problem' in e) {
        results.push({ file, name, expect, got: 'error', ok: false, problem: e.problem })
        continue
      }
      const got = e.action === 'route' ? `route:${e.route?.model ?? ''}` : e.action
      results.push({ file, name, expect, got, ok: got === expect, explanation: e })
    }
  }
  return results
}

function caseRequest (c: RawCase): ExplainRequest {
  const [method = '', url = '/'] = (c.request as string).split(' ')
  const headers = Object.fromEntries(Object.entries((c.headers ?? {}) as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]))
  const body = c.body === undefined ? undefined : Buffer.from(typeof c.body === 'string' ? c.body : JSON.stringify(c.body), 'utf8')
  return { method, url, headers, body }
}

export function formatResults (results: readonly CaseResult[]): string {
  const lines: string[] = []
  for (const r of results) {
    if (r.ok) continue
    const why = r.problem ?? (r.explanation === undefined
      ? ''
      : `${decidedBy(r.explanation)}: ${r.explanation.reason}; caller ${r.explanation.client_ip} -> ${r.explanation.location.country ?? 'unknown'}${r.explanation.location.network === undefined ? '' : ` (network ${r.explanation.location.network})`}${r.explanation.enforced ? '' : ' (dry-run)'}`)
    lines.push(`FAIL ${r.file}: ${r.name}\n     expected ${r.expect}, got ${r.got}: ${why}`)
  }
  const passed = results.filter((r) => r.ok).length
  lines.push(`${passed} passed, ${results.length - passed} failed`)
  return `${lines.join('\n')}\n`
}
