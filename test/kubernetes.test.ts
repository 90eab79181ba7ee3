// The Kubernetes example: every manifest parses, the probes and ports agree with the
// gateway's defaults and with the policy in the ConfigMap, that policy is valid, the gateway's
// user can read every file the policy names as the kubelet lays the volumes out, and
// geoipupdate writes the databases the policy lists.
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { parseConfig } from '../src/config/load.js'
import { DEFAULT_ADMIN_PORT, DEFAULT_PORT, DEFAULT_SHUTDOWN_GRACE_MS, EMBEDDED_DATABASE } from '../src/config/validate.js'
import { AddressSet } from '../src/geo/address.js'

type Obj = Record<string, any>
const dir = 'config/kubernetes'
// kubectl reads manifests as YAML 1.1, where `defaultMode: 0440` is octal (288); YAML 1.2, the
// yaml package's default, would read it as the decimal 440.
const docs: Obj[] = readdirSync(dir).filter((f) => f.endsWith('.yaml')).flatMap((f) => {
  const parsed = parseAllDocuments(readFileSync(join(dir, f), 'utf8'), { version: '1.1' })
  if (!Array.isArray(parsed)) throw new Error(`${f} does not parse`)
  return parsed.map((d) => {
    if (d.errors.length > 0) throw new Error(`${f}: ${d.errors[0]?.message ?? ''}`)
    return d.toJS() as Obj
  })
})
const named = (kind: string, name: unknown): Obj | undefined => docs.find((d) => d['kind'] === kind && d['metadata']?.['name'] === name)
const deployment = docs.find((d) => d['kind'] === 'Deployment') as Obj
const pod = deployment['spec']['template'] as Obj
const podSpec = pod['spec'] as Obj
const containers = podSpec['containers'] as Obj[]
const initContainers = (podSpec['initContainers'] ?? []) as Obj[]
const volumes = podSpec['volumes'] as Obj[]
const sidecar = containers.find((c) => c['name'] === 'llm-geofence') as Obj
const mountOf = (c: Obj, volume: string): Obj | undefined => (c['volumeMounts'] as Obj[] | undefined)?.find((m) => m['name'] === volume)
const volumeOf = (name: string): Obj => volumes.find((v) => v['name'] === name) as Obj
const configMap = named('ConfigMap', volumeOf('policy')['configMap']?.['name']) as Obj
const secret = named('Secret', volumeOf('provider-keys')['secret']?.['secretName']) as Obj
const args = sidecar['args'] as string[]
const configPath = args[args.indexOf('--config') + 1] ?? ''
const policyText = String(configMap['data'][configPath.slice(String(mountOf(sidecar, 'policy')?.['mountPath']).length + 1)])

/** The policy, parsed as serve would, with the Secret's files given a temporary home. */
function loadPolicy (): ReturnType<typeof parseConfig> {
  const keysMount = String(mountOf(sidecar, 'provider-keys')?.['mountPath'])
  const keys = mkdtempSync(join(tmpdir(), 'geofence-keys-'))
  for (const name of Object.keys(secret['stringData'] as Obj)) writeFileSync(join(keys, name), 'test-value')
  return parseConfig('policy.yaml', Buffer.from(policyText.split(keysMount).join(keys)), {})
}

t.test('every manifest parses and has a kind', async (t) => {
  t.ok(docs.length >= 4)
  for (const d of docs) t.ok(typeof d['kind'] === 'string' && typeof d['apiVersion'] === 'string')
  t.ok(deployment && configMap && secret && sidecar)
})

t.test('ports and probes agree with the gateway defaults', async (t) => {
  const ports = Object.fromEntries((sidecar['ports'] as Obj[]).map((p) => [p['name'], p['containerPort']]))
  t.same(ports, { proxy: DEFAULT_PORT, admin: DEFAULT_ADMIN_PORT })
  t.same(sidecar['livenessProbe']['httpGet'], { path: '/healthz', port: 'admin' })
  t.same(sidecar['readinessProbe']['httpGet'], { path: '/readyz', port: 'admin' })
  const annotations = pod['metadata']['annotations'] as Obj
  t.equal(annotations['prometheus.io/scrape'], 'true')
  t.equal(Number(annotations['prometheus.io/port']), DEFAULT_ADMIN_PORT)
  t.equal(annotations['prometheus.io/path'], '/metrics')
  for (const c of [...initContainers, ...containers]) t.ok(c['resources']?.['requests']?.['cpu'] && c['resources']?.['requests']?.['memory'], `${String(c['name'])} has resource requests`)
  t.equal(sidecar['securityContext']['readOnlyRootFilesystem'], true)
  t.ok(podSpec['terminationGracePeriodSeconds'] * 1000 > DEFAULT_SHUTDOWN_GRACE_MS, 'the pod waits longer than the gateway drains')
})

t.test('the policy in the ConfigMap is valid and matches the pod', async (t) => {
  t.ok(configPath.startsWith(`${String(mountOf(sidecar, 'policy')?.['mountPath'])}/`), 'serve reads the mounted ConfigMap')
  const config = loadPolicy()
  t.equal(config.server.port, DEFAULT_PORT)
  t.equal(config.admin.port, DEFAULT_ADMIN_PORT)
  t.equal(config.admin.host, '0.0.0.0', 'the kubelet probes from outside the pod\'s loopback')
  for (const up of config.upstreams.values()) {
    t.equal(up.stripClientCredentials, true, `${up.name}: the application holds no key`)
    t.equal(up.headers.length, 1, `${up.name}: the key comes from the Secret`)
  }
})

t.test('the application calls the sidecar over loopback, from where the policy believes the end user\'s address and requires their identity token', async (t) => {
  const config = loadPolicy()
  const app = containers.find((c) => c !== sidecar) as Obj
  const env = new Map(((app['env'] ?? []) as Obj[]).map((e) => [String(e['name']), String(e['value'])]))
  for (const [name, upstream] of [['ANTHROPIC_BASE_URL', 'anthropic'], ['OPENAI_BASE_URL', 'openai']] as const) {
    const url = new URL(env.get(name) ?? 'http://missing')
    t.equal(`${url.hostname}:${url.port}`, `127.0.0.1:${config.server.port}`, `${name} is the sidecar on loopback`)
    t.equal(url.pathname.split('/')[1], upstream, `${name} is mounted at the ${upstream} upstream`)
    t.ok(config.upstreams.has(upstream))
  }
  // The sidecar sees the application as 127.0.0.1: a trusted proxy, so the X-Forwarded-For it
  // sends (the end user's address, as its ingress saw it) is the caller, not the pod itself.
  t.ok(new AddressSet(config.clientIp.trustedProxies).has('127.0.0.1'), 'the application is a trusted proxy')
  t.ok(config.clientIp.headers.includes('x-forwarded-for'))
  // And the end user's token (x-geofence-identity) must come with every call, and is judged.
  t.equal(config.identity?.required, true, 'a call without the end user\'s identity token is refused')
  for (const rule of config.policy.rules) t.ok(rule.jurisdiction.includes('identity') && rule.jurisdiction.includes('network'), `${rule.name} judges the token and the address`)
  const forwarded = String(readFileSync(join(dir, 'deployment.yaml'), 'utf8'))
  t.match(forwarded, /X-Forwarded-For \(the user's address[^)]*\) and x-geofence-identity/, 'the manifest tells the application what to forward')
})

// Who may read a mounted file, as the kubelet and the container runtime set it up.

/** The identity a container's process runs with. */
interface Identity { uid: number | undefined, groups: ReadonlySet<number> }
/** A file as `ls -ln` would show it inside the pod, and why. */
interface FileOwner { uid: number, gid: number, mode: number, why: string }

const ROOT = 0
/** Secret and configMap volumes: the mode of a file when neither items[].mode nor defaultMode says. */
const DEFAULT_MODE = 0o644
/** With fsGroup, the kubelet chowns every file of a volume to root:fsGroup and ORs this into its mode on
 * volumes it mounts read-only (secret, configMap): kubernetes pkg/volume/volume_linux.go, roMask. */
const FS_GROUP_READ_ONLY_MASK = 0o440
/** The mode a writer in the pod creates its files with: geoipupdate opens each database 0644 and
 * renames it into place (geoipupdate internal/geoipupdate/database/local_file_writer.go). */
const WRITER_FILE_MODE: ReadonlyArray<readonly [RegExp, number]> = [[/^(docker\.io\/)?maxmindinc\/geoipupdate[:@]|^ghcr\.io\/maxmind\/geoipupdate[:@]/, 0o644]]

function identity (c: Obj): Identity {
  const pod = (podSpec['securityContext'] ?? {}) as Obj
  const own = (c['securityContext'] ?? {}) as Obj
  // A gid that neither runAsGroup names comes from the image's /etc/passwd, which this test does
  // not see: it is not counted. fsGroup and supplementalGroups are added to every container.
  const groups = [own['runAsGroup'] ?? pod['runAsGroup'], pod['fsGroup'], ...((pod['supplementalGroups'] ?? []) as number[])]
  return { uid: own['runAsUser'] ?? pod['runAsUser'], groups: new Set(groups.filter((g): g is number => typeof g === 'number')) }
}

const octal = (mode: number): string => `0${mode.toString(8)}`

/** The owner, group and mode `path` has inside container `c`. */
function fileOwner (c: Obj, path: string): FileOwner {
  const mounts = ((c['volumeMounts'] ?? []) as Obj[]).filter((m) => path.startsWith(`${String(m['mountPath'])}/`))
  const mount = mounts.sort((a, b) => String(b['mountPath']).length - String(a['mountPath']).length)[0]
  if (mount === undefined) throw new Error(`${path} is on no volume ${String(c['name'])} mounts`)
  const rel = path.slice(String(mount['mountPath']).length + 1)
  const volume = volumeOf(String(mount['name']))
  const fsGroup = podSpec['securityContext']?.['fsGroup'] as number | undefined
  const projected = volume['secret'] === undefined ? volume['configMap'] : volume['secret']
  if (projected !== undefined) {
    const source = volume['secret'] === undefined ? named('ConfigMap', projected['name']) : named('Secret', projected['secretName'])
    const item = (projected['items'] as Obj[] | undefined)?.find((i) => i['path'] === rel)
    const key = projected['items'] === undefined ? rel : item?.['key']
    const keys = Object.keys({ ...source?.['data'], ...source?.['stringData'] })
    if (typeof key !== 'string' || !keys.includes(key)) throw new Error(`${path}: volume ${String(volume['name'])} has no file ${rel}`)
    const mode = (item?.['mode'] ?? projected['defaultMode'] ?? DEFAULT_MODE) as number
    const why = `volume ${String(volume['name'])}, ${item?.['mode'] === undefined ? `defaultMode ${projected['defaultMode'] === undefined ? 'unset' : octal(mode)}` : `items mode ${octal(mode)}`}, fsGroup ${fsGroup ?? 'unset'}`
    return fsGroup === undefined
      ? { uid: ROOT, gid: ROOT, mode, why }
      : { uid: ROOT, gid: fsGroup, mode: mode | FS_GROUP_READ_ONLY_MASK, why }
  }
  if (volume['emptyDir'] !== undefined) {
    const writers = [...initContainers, ...containers].filter((w) => w !== c && mountOf(w, String(volume['name'])) !== undefined && mountOf(w, String(volume['name']))?.['readOnly'] !== true)
    if (writers.length !== 1) throw new Error(`${path}: emptyDir ${String(volume['name'])} needs one writer, has ${writers.length}`)
    const writer = writers[0] as Obj
    const mode = WRITER_FILE_MODE.find(([image]) => image.test(String(writer['image'])))?.[1]
    if (mode === undefined) throw new Error(`${path}: the file mode ${String(writer['image'])} writes with is not known here`)
    const w = identity(writer)
    if (w.uid === undefined) throw new Error(`${path}: ${String(writer['name'])} runs as the image's user`)
    // The emptyDir's directory is setgid fsGroup, so what is created in it takes that group.
    const gid = fsGroup ?? writer['securityContext']?.['runAsGroup'] ?? podSpec['securityContext']?.['runAsGroup'] ?? ROOT
    return { uid: w.uid, gid, mode, why: `emptyDir ${String(volume['name'])} written by ${String(writer['name'])}, fsGroup ${fsGroup ?? 'unset'}` }
  }
  throw new Error(`${path}: volume ${String(volume['name'])} is of a kind this test does not model`)
}

/** Linux: the owner's bits if the uid owns it, else the group's if one of its groups does, else the others'. */
const canRead = (who: Identity, f: FileOwner): boolean =>
  (who.uid === f.uid ? f.mode & 0o400 : who.groups.has(f.gid) ? f.mode & 0o040 : f.mode & 0o004) !== 0

t.test('the gateway\'s user can read every mounted file its config names', async (t) => {
  const config = loadPolicy()
  const files = new Set([
    configPath,
    ...config.geoip.databases.filter((d) => d !== EMBEDDED_DATABASE),
    ...(config.geoip.anonymousIp === null ? [] : [config.geoip.anonymousIp]),
    ...[...policyText.matchAll(/\bfile:(\/[^\s"',}\]]+)/g)].map((m) => m[1] as string),
  ])
  t.ok(files.size >= 4, 'the config, the keys and a database')
  const who = identity(sidecar)
  t.ok(who.uid !== undefined && who.uid !== ROOT, 'the gateway runs as a named non-root user (capabilities dropped: no DAC override)')
  for (const file of files) {
    const f = fileOwner(sidecar, file)
    t.ok(canRead(who, f), `${file}: ${f.uid}:${f.gid} ${octal(f.mode)} (${f.why}) readable by uid ${String(who.uid)}, groups ${[...who.groups].join(',') || 'none'}`)
  }
})

t.test('the read check follows the kubelet\'s rules', async (t) => {
  const gateway: Identity = { uid: 1000, groups: new Set([1000]) }
  const cases: ReadonlyArray<readonly [Identity, FileOwner, boolean]> = [
    [gateway, { uid: ROOT, gid: ROOT, mode: 0o400, why: 'a 0400 secret without fsGroup' }, false],
    [gateway, { uid: ROOT, gid: ROOT, mode: DEFAULT_MODE, why: 'a configMap without defaultMode' }, true],
    [gateway, { uid: ROOT, gid: 1000, mode: 0o400 | FS_GROUP_READ_ONLY_MASK, why: 'a 0400 secret with fsGroup 1000' }, true],
    [{ uid: 1000, groups: new Set() }, { uid: ROOT, gid: 1000, mode: 0o440, why: 'a group the process is not in' }, false],
    [gateway, { uid: 1000, gid: 1000, mode: 0o044, why: 'the owner bits decide for the owner' }, false],
  ]
  for (const [who, file, readable] of cases) t.equal(canRead(who, file), readable, file.why)
})

t.test('geoipupdate writes the databases the policy lists, with its own credentials', async (t) => {
  const updater = [...initContainers, ...containers].find((c) => WRITER_FILE_MODE.some(([image]) => image.test(String(c['image']))))
  if (updater === undefined) return t.fail('a geoipupdate container')
  t.ok(initContainers.includes(updater) && updater['restartPolicy'] === 'Always', 'a native sidecar: it runs before the gateway starts and for the pod\'s lifetime')
  const env = new Map((updater['env'] as Obj[]).map((e) => [String(e['name']), e]))
  for (const name of ['GEOIPUPDATE_ACCOUNT_ID', 'GEOIPUPDATE_LICENSE_KEY']) {
    const ref = env.get(name)?.['valueFrom']?.['secretKeyRef'] as Obj | undefined
    const held = named('Secret', ref?.['name'])
    t.ok(ref !== undefined && held !== undefined && ref['key'] in { ...held['data'], ...held['stringData'] }, `${name} comes from a Secret in ${dir}`)
    t.not(ref?.['name'], secret['metadata']['name'], `${name}: not in the gateway's Secret`)
  }
  const editions = String(env.get('GEOIPUPDATE_EDITION_IDS')?.['value'] ?? '').split(/\s+/).filter((e) => e !== '')
  const dbDir = String(env.get('GEOIPUPDATE_DB_DIR')?.['value'] ?? '/usr/share/GeoIP')
  const shared = (updater['volumeMounts'] as Obj[]).find((m) => m['mountPath'] === dbDir)
  t.ok(shared !== undefined && shared['readOnly'] !== true, `${dbDir} is a volume geoipupdate writes`)
  const gatewayMount = mountOf(sidecar, String(shared?.['name']))
  t.equal(gatewayMount?.['readOnly'], true, 'the gateway mounts it read-only')
  const databases = loadPolicy().geoip.databases.filter((d) => d.startsWith(`${String(gatewayMount?.['mountPath'])}/`))
  t.ok(databases.length > 0, 'the policy reads a database geoipupdate keeps current')
  for (const d of databases) t.ok(editions.some((e) => d === `${String(gatewayMount?.['mountPath'])}/${e}.mmdb`), `${d} is an edition geoipupdate downloads (${editions.join(' ')})`)
  const probe = (updater['startupProbe']?.['exec']?.['command'] ?? []) as string[]
  const first = databases[0]?.slice(String(gatewayMount?.['mountPath']).length + 1)
  t.ok(first !== undefined && probe.join(' ').includes(`${dbDir}/${first}`), 'its startupProbe waits for the database, so the gateway does not start without it')
  t.equal(mountOf(updater, 'provider-keys'), undefined, 'geoipupdate does not see the provider keys')
  const sc = updater['securityContext'] as Obj
  t.ok(identity(updater).uid !== undefined && identity(updater).uid !== ROOT, 'geoipupdate runs as a non-root user')
  t.equal(sc['readOnlyRootFilesystem'], true)
  t.ok((updater['volumeMounts'] as Obj[]).some((m) => m['mountPath'] === '/tmp' && volumeOf(String(m['name']))['emptyDir'] !== undefined), 'its entry script\'s state file (/tmp/geoipupdate) has a writable home')
})
