// Config file -> validated Config, or a ConfigError listing every problem with file:line:col.
// Steps: YAML (syntax and duplicate keys), ${ENV} substitution, shape (JSON Schema), meaning.
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml'
import { ConfigError, formatKeyPath, type ConfigProblem } from '../errors.js'
import { BOOTSTRAP_SCHEMA, CONFIG_SCHEMA, type RawBootstrap, type RawConfig } from './schema.js'
import { geoipFiles, validate, validateBootstrap, type BootstrapConfig, type Config, type GeoipFiles } from './validate.js'
import { policyManifest, sameManifest, verifyFetchedPolicy, verifyPolicy } from './policy-signature.js'
import { BOOTSTRAP_KEYS, bootstrapKeyProblems, fetchedKeyProblems } from './policy-source.js'
import type { SigningKey } from './signing-keys.js'

export type { BootstrapConfig, Config } from './validate.js'

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g

const ajv = new Ajv({ allErrors: true, coerceTypes: true, strict: true, allowUnionTypes: true, verbose: true })
const checkShape = ajv.compile<RawConfig>(CONFIG_SCHEMA)
// Compiling a schema is most of what loading a config costs at start: the bootstrap's is compiled
// only when a bootstrap file is read.
let bootstrapShape: ValidateFunction<RawBootstrap> | null = null
const checkBootstrapShape = (): ValidateFunction<RawBootstrap> => (bootstrapShape ??= ajv.compile<RawBootstrap>(BOOTSTRAP_SCHEMA))

/**
 * A config that cannot be loaded, with the databases it names (null when those cannot be
 * read from it), so that its databases are opened in the same pass (runtime.ts): one run
 * reports every problem of the file.
 */
export class ConfigLoadError extends ConfigError {
  readonly geoip: GeoipFiles | null
  readonly position: Config['position']
  constructor (file: string, problems: ConfigProblem[], geoip: GeoipFiles | null, position: Config['position']) {
    super(file, problems)
    this.geoip = geoip
    this.position = position
  }
}

export interface LoadOptions {
  /**
   * Whose signature the file must carry (policy_signature). `own` (the default, at start): the
   * keys the file itself names, if any. A list: these keys, whatever the file says (a reload
   * keeps the keys read at start: a signed config cannot drop its own signing requirement).
   * null: not checked (tools that read a policy before it is signed: explain, test, replay).
   */
  policyKeys?: 'own' | readonly SigningKey[] | null
  /** For a bootstrap file (policy_source): the policy fetched from its URL (src/policy-source.ts). */
  fetched?: FetchedPolicy | null
}

/** A policy document and its signature as fetched from policy_source.url (and URL.sig). */
export interface FetchedPolicy {
  url: string
  bytes: Buffer
  signature: Buffer
}

/** A config file, or a bootstrap file combined with `opts.fetched`; signatures checked as `opts.policyKeys` says. */
export async function loadConfig (file: string, env: NodeJS.ProcessEnv = process.env, opts: LoadOptions = {}): Promise<Config> {
  const bytes = await readConfigFile(file)
  const wanted = opts.policyKeys === undefined ? 'own' : opts.policyKeys
  if (isBootstrap(bytes)) {
    const boot = await checkBootstrap(file, bytes, env, wanted)
    if (opts.fetched == null) {
      throw new ConfigError(file, [{ path: ['policy_source'], message: `this is a bootstrap file: its policy is fetched from ${boot.config.policySource.url} by geofence serve; check the published policy itself (geofence validate POLICY.yaml)` }])
    }
    return loadFetched(boot, opts.fetched, env, wanted === 'own' ? boot.config.policySignature?.keys ?? [] : wanted ?? [])
  }
  if (wanted === null) return parseConfig(file, bytes, env)
  // The trust files are hashed before the config is read and again after: what was checked is
  // what was loaded.
  const manifest = await policyManifest(bytes)
  const config = parseConfig(file, bytes, env)
  const keys = wanted === 'own' ? config.policySignature?.keys ?? null : wanted
  if (keys === null) return config
  const refused = (message: string): ConfigError => new ConfigError(file, [{ path: [], message }])
  const verified = await verifyPolicy(file, manifest, keys)
  if ('problem' in verified) throw refused(verified.problem)
  if ('problem' in manifest || !sameManifest(manifest, await policyManifest(bytes))) throw refused('a file the config names changed while it was being read; it is read again at the next change')
  config.policyKey = verified.key
  return config
}

/** A bootstrap file (policy_source), checked and, unless `policyKeys` is null, its signature verified; null when the file is a whole config. */
export async function loadBootstrap (file: string, env: NodeJS.ProcessEnv = process.env, opts: Pick<LoadOptions, 'policyKeys'> = {}): Promise<BootstrapConfig | null> {
  const bytes = await readConfigFile(file)
  if (!isBootstrap(bytes)) return null
  return (await checkBootstrap(file, bytes, env, opts.policyKeys === undefined ? 'own' : opts.policyKeys)).config
}

async function readConfigFile (file: string): Promise<Buffer> {
  try {
    return await readFile(file)
  } catch (err) {
    throw new ConfigError(file, [{ path: [], message: `cannot read the file: ${(err as Error).message}` }])
  }
}

/** A file whose top level names policy_source is a bootstrap file (config/policy-source.ts). */
function isBootstrap (bytes: Buffer): boolean {
  const doc = parseDocument(bytes.toString('utf8'), { uniqueKeys: false })
  return isMap(doc.contents) && doc.contents.items.some((p) => isScalar(p.key) && p.key.value === 'policy_source')
}

interface Bootstrap {
  config: BootstrapConfig
  /** Its sections as written (after ${ENV}), joined to each fetched policy. */
  raw: RawBootstrap
}

async function checkBootstrap (file: string, bytes: Buffer, env: NodeJS.ProcessEnv, wanted: 'own' | readonly SigningKey[] | null): Promise<Bootstrap> {
  const manifest = await policyManifest(bytes)
  const read = readYaml(file, bytes, env)
  const { raw, problems, add } = read
  bootstrapKeyProblems(raw as Record<string, unknown>, (path, message) => { add([{ path, message }]) })
  const check = checkBootstrapShape()
  if (problems.length === 0 && !check(raw)) add(shapeProblems(check.errors ?? []))
  if (problems.length > 0) throw new ConfigError(file, problems)
  const boot = raw as RawBootstrap
  const { config, problems: meaning } = validateBootstrap(boot, { file, revision: sha256(bytes), position: read.position, env })
  add(meaning)
  if (problems.length > 0 || config === null) throw new ConfigError(file, problems)
  const keys = wanted === 'own' ? config.policySignature?.keys ?? null : wanted
  if (keys !== null) {
    const refused = (message: string): ConfigError => new ConfigError(file, [{ path: [], message }])
    const verified = await verifyPolicy(file, manifest, keys)
    if ('problem' in verified) throw refused(verified.problem)
    if ('problem' in manifest || !sameManifest(manifest, await policyManifest(bytes))) throw refused('a file the bootstrap names changed while it was being read; it is read again at the next change')
    config.policyKey = verified.key
  }
  return { config, raw: boot }
}

/**
 * The fetched policy joined to the bootstrap's sections: verified with `keys` (over its bytes
 * and the trust files it names, which are this gateway's local files), then checked as one
 * config. Its revision is the sha256 of the fetched bytes (what `geofence validate` prints for
 * the published file); problems are reported against the URL, with line and column.
 */
async function loadFetched (boot: Bootstrap, fetched: FetchedPolicy, env: NodeJS.ProcessEnv, keys: readonly SigningKey[]): Promise<Config> {
  const refused = (message: string): ConfigError => new ConfigError(fetched.url, [{ path: [], message }])
  const verified = await verifyFetchedPolicy(fetched, keys)
  if ('problem' in verified) throw refused(verified.problem)
  const read = readYaml(fetched.url, fetched.bytes, env)
  const { raw, problems, add } = read
  fetchedKeyProblems(raw as Record<string, unknown>, (path, message) => { add([{ path, message }]) })
  if (problems.length > 0) throw new ConfigError(fetched.url, problems)
  const { policy_source: _source, ...site } = boot.raw
  const joined = { ...(raw as object), ...site }
  if (!checkShape(joined)) {
    add(shapeProblems(checkShape.errors ?? []))
    throw new ConfigError(fetched.url, problems)
  }
  const own = new Set<unknown>(BOOTSTRAP_KEYS)
  const { config, problems: meaning } = validate(joined, {
    file: fetched.url,
    revision: sha256(fetched.bytes),
    // A problem in the bootstrap's sections (a reference from the policy to them) has no place in the fetched text.
    position: (path) => (own.has(path[0]) ? undefined : read.position(path)),
    env,
  })
  add(meaning)
  if (problems.length > 0 || config === null) throw new ConfigError(fetched.url, problems)
  if (!sameManifest(verified.manifest, await policyManifest(fetched.bytes))) throw refused('a trust file the policy names changed while it was being read; it is read again at the next poll')
  config.policyKey = verified.key
  config.policySource = boot.config.policySource
  return config
}

export function parseConfig (file: string, bytes: Buffer, env: NodeJS.ProcessEnv = process.env): Config {
  const read = readYaml(file, bytes, env)
  const { raw, problems, add, position } = read
  const revision = sha256(bytes)
  if (!checkShape(raw)) {
    const shape = checkShape.errors ?? []
    add(shapeProblems(shape))
    // A key the schema does not know is never read: without the unknown keys, the rest is
    // checked too (files, certificates, rules), so that a typo hides no other problem.
    if (shape.every((e) => e.keyword === 'additionalProperties') && withoutUnknownKeys(raw, shape) && checkShape(raw)) {
      add(validate(raw, { file, revision, position, env }).problems)
    }
    throw new ConfigLoadError(file, problems, declaredGeoip(raw), position)
  }
  const { config, problems: meaning } = validate(raw, { file, revision, position, env })
  add(meaning)
  if (problems.length > 0 || config === null) throw new ConfigLoadError(file, problems, geoipFiles(raw.geoip), position)
  return config
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex')

interface ReadYaml {
  /** The document as data, ${ENV} substituted. */
  raw: unknown
  /** Line and column of a key path. */
  position: (path: ReadonlyArray<string | number>) => { line: number, col: number } | undefined
  /** Problems so far (unset variables); `add` appends more, placed in the file. */
  problems: ConfigProblem[]
  add: (found: ConfigProblem[]) => void
}

/** YAML (syntax errors thrown at once), then ${ENV} substitution. */
function readYaml (file: string, bytes: Buffer, env: NodeJS.ProcessEnv): ReadYaml {
  const lineCounter = new LineCounter()
  const doc = parseDocument(bytes.toString('utf8'), { lineCounter, prettyErrors: true, uniqueKeys: true })
  const where = (offset: number): { line: number, col: number } => lineCounter.linePos(offset)

  // After the first few syntax errors the rest are usually echoes of them.
  const problems: ConfigProblem[] = doc.errors.slice(0, 3).map((e) => ({
    path: [],
    message: (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, ''),
    ...(e.linePos === undefined ? {} : { line: e.linePos[0].line, col: e.linePos[0].col }),
  }))
  if (problems.length > 0) throw new ConfigError(file, problems)

  problems.push(...substituteEnv(doc, env, where))
  const raw: unknown = doc.toJS() ?? {}
  const position = (path: ReadonlyArray<string | number>): { line: number, col: number } | undefined => nodePosition(doc, path, where)
  // A value emptied by a missing variable is reported once, as the missing variable.
  const envPaths = new Set(problems.map((p) => formatKeyPath(p.path)))
  const add = (found: ConfigProblem[]): void => {
    for (const p of found) if (!envPaths.has(formatKeyPath(p.path))) problems.push({ ...position(p.path), ...p })
  }
  return { raw, position, problems, add }
}

/** Removes each key an `additionalProperties` error names; false when one cannot be found. */
function withoutUnknownKeys (raw: unknown, errors: readonly ErrorObject[]): boolean {
  for (const e of errors) {
    let node: unknown = raw
    for (const part of e.instancePath.split('/').slice(1)) node = (node as Record<string, unknown> | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')]
    const key = String((e.params as { additionalProperty?: unknown }).additionalProperty)
    if (typeof node !== 'object' || node === null || !Object.hasOwn(node, key)) return false
    Reflect.deleteProperty(node, key)
  }
  return true
}

/** The databases a config that failed its shape names, when its geoip section has the right shape. */
function declaredGeoip (raw: unknown): GeoipFiles | null {
  const geoip = (raw as { geoip?: unknown } | null)?.geoip
  if (geoip === undefined) return geoipFiles(undefined)
  if (typeof geoip !== 'object' || geoip === null) return null
  const { databases, anonymous_ip: anonymousIp } = geoip as { databases?: unknown, anonymous_ip?: unknown }
  if (databases !== undefined && !(Array.isArray(databases) && databases.every((d) => typeof d === 'string'))) return null
  if (anonymousIp !== undefined && typeof anonymousIp !== 'string') return null
  return geoipFiles({ ...(databases === undefined ? {} : { databases: databases as string[] }), ...(anonymousIp === undefined ? {} : { anonymous_ip: anonymousIp }) })
}

/** Replaces ${NAME} in every string value; a variable that is not set is a problem. */
function substituteEnv (doc: Document, env: NodeJS.ProcessEnv, where: (o: number) => { line: number, col: number }): ConfigProblem[] {
  const problems: ConfigProblem[] = []
  visit(doc, {
    Scalar (key, node, path) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('${')) return
      node.value = node.value.replace(ENV_REF, (_m, name: string) => {
        const value = env[name]
        if (value !== undefined) return value
        problems.push({
          path: keyPath(path, node),
          message: `environment variable ${name} is not set`,
          ...(node.range ? where(node.range[0]) : {}),
        })
        return ''
      })
    },
  })
  return problems
}

/** The key path of a node from the visitor's ancestry (maps give keys, sequences give indexes). */
function keyPath (ancestors: readonly unknown[], node: unknown): Array<string | number> {
  const out: Array<string | number> = []
  const chain = [...ancestors, node]
  for (let i = 0; i < chain.length - 1; i++) {
    const parent = chain[i] as { items?: unknown[], key?: unknown } | undefined
    const child = chain[i + 1]
    if (parent && Array.isArray(parent.items)) {
      const idx = parent.items.indexOf(child)
      if (idx >= 0 && !isMap(parent)) out.push(idx)
    }
    if (parent && 'key' in parent && isScalar(parent.key) && (child as unknown) !== parent.key) out.push(String(parent.key.value))
  }
  return out
}

function nodePosition (doc: Document, path: ReadonlyArray<string | number>, where: (o: number) => { line: number, col: number }): { line: number, col: number } | undefined {
  // Point at the deepest part of the path that exists: a map entry by its key, a list item by itself.
  for (let depth = path.length; depth > 0; depth--) {
    const parent = depth === 1 ? doc.contents : doc.getIn(path.slice(0, depth - 1), true)
    const last = path[depth - 1]
    if (isMap(parent)) {
      const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === String(last))
      const keyNode = pair?.key as Node | undefined
      if (keyNode?.range) return where(keyNode.range[0])
    } else if (isSeq(parent) && typeof last === 'number') {
      const item = parent.items[last] as Node | undefined
      if (item?.range) return where(item.range[0])
    }
  }
  const top = doc.contents as Node | null
  return top?.range ? where(top.range[0]) : undefined
}

/** One problem per ajv error, except that a failed anyOf is one problem, not one per branch. */
function shapeProblems (errors: readonly ErrorObject[]): ConfigProblem[] {
  const alternatives = errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath)
  return errors
    .filter((e) => e.keyword === 'anyOf' || !alternatives.some((p) => e.instancePath === p || e.instancePath.startsWith(`${p}/`)))
    .map(shapeProblem)
}

function shapeProblem (e: ErrorObject): ConfigProblem {
  const path: Array<string | number> = e.instancePath === ''
    ? []
    : e.instancePath.slice(1).split('/').map((s) => {
      const k = s.replace(/~1/g, '/').replace(/~0/g, '~')
      return /^\d+$/.test(k) ? Number(k) : k
    })
  const params = e.params as Record<string, unknown>
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(params['additionalProperty'])
      return { path: [...path, key], message: `unknown key "${key}"${suggest(key, e.parentSchema)}` }
    }
    case 'required':
      return { path, message: `missing required key "${String(params['missingProperty'])}"` }
    case 'enum':
      return { path, message: `must be one of: ${(params['allowedValues'] as unknown[]).join(', ')}` }
    case 'type':
      return { path, message: `must be ${[params['type']].flat().join(' or ')}` }
    case 'anyOf':
      return { path, message: path.at(-1) === 'workers' ? 'must be a number of processes (1 to 64) or auto' : 'must be block, or route: { upstream: NAME, model: MODEL }' }
    default:
      return { path, message: e.message ?? e.keyword }
  }
}

function suggest (key: string, parentSchema: unknown): string {
  const props = (parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties
  if (!props) return ''
  const known = Object.keys(props)
  const stem = key.toLowerCase().replace(/-/g, '_').slice(0, Math.max(4, key.length - 2))
  const close = known.find((k) => distance(k, key) <= 2 || k.startsWith(stem))
  return close === undefined ? ` (known keys: ${known.join(', ')})` : ` (did you mean "${close}"?)`
}

function distance (a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] ?? 0
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j] ?? 0
      row[j] = Math.min(cur + 1, (row[j - 1] ?? 0) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = cur
    }
  }
  return row[b.length] ?? 0
}
