// The Kubernetes example: every manifest parses, the probes and ports agree with the
// gateway's defaults and with the policy in the ConfigMap, and that policy is valid.
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { parseConfig } from '../src/config/load.js'
import { DEFAULT_ADMIN_PORT, DEFAULT_PORT, DEFAULT_SHUTDOWN_GRACE_MS } from '../src/config/validate.js'

type Obj = Record<string, any>
const dir = 'config/kubernetes'
const docs: Obj[] = readdirSync(dir).filter((f) => f.endsWith('.yaml')).flatMap((f) => {
  const parsed = parseAllDocuments(readFileSync(join(dir, f), 'utf8'))
  if (!Array.isArray(parsed)) throw new Error(`${f} does not parse`)
  return parsed.map((d) => {
    if (d.errors.length > 0) throw new Error(`${f}: ${d.errors[0]?.message ?? ''}`)
    return d.toJS() as Obj
  })
})
const deployment = docs.find((d) => d['kind'] === 'Deployment') as Obj
const configMap = docs.find((d) => d['kind'] === 'ConfigMap') as Obj
const secret = docs.find((d) => d['kind'] === 'Secret') as Obj
const pod = deployment['spec']['template'] as Obj
const sidecar = (pod['spec']['containers'] as Obj[]).find((c) => c['name'] === 'llm-geofence') as Obj

t.test('every manifest parses and has a kind', async (t) => {
  t.ok(docs.length >= 3)
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
  for (const c of pod['spec']['containers'] as Obj[]) t.ok(c['resources']?.['requests']?.['cpu'] && c['resources']?.['requests']?.['memory'], `${String(c['name'])} has resource requests`)
  t.equal(sidecar['securityContext']['readOnlyRootFilesystem'], true)
  t.ok(pod['spec']['terminationGracePeriodSeconds'] * 1000 > DEFAULT_SHUTDOWN_GRACE_MS, 'the pod waits longer than the gateway drains')
})

t.test('the policy in the ConfigMap is valid and matches the pod', async (t) => {
  const policyMount = (sidecar['volumeMounts'] as Obj[]).find((m) => m['name'] === 'policy') as Obj
  const args = sidecar['args'] as string[]
  const configPath = args[args.indexOf('--config') + 1] ?? ''
  t.ok(configPath.startsWith(`${String(policyMount['mountPath'])}/`), 'serve reads the mounted ConfigMap')
  const key = configPath.slice(String(policyMount['mountPath']).length + 1)
  let text = String(configMap['data'][key])
  // The provider keys come from the Secret's mount: give them a temporary home here.
  const keysMount = String((sidecar['volumeMounts'] as Obj[]).find((m) => m['name'] === 'provider-keys')?.['mountPath'])
  const keys = mkdtempSync(join(tmpdir(), 'geofence-keys-'))
  for (const name of Object.keys(secret['stringData'] as Obj)) writeFileSync(join(keys, name), 'test-value')
  text = text.split(keysMount).join(keys)
  const config = parseConfig('policy.yaml', Buffer.from(text), {})
  t.equal(config.server.port, DEFAULT_PORT)
  t.equal(config.admin.port, DEFAULT_ADMIN_PORT)
  t.equal(config.admin.host, '0.0.0.0', 'the kubelet probes from outside the pod\'s loopback')
  for (const up of config.upstreams.values()) {
    t.equal(up.stripClientCredentials, true, `${up.name}: the application holds no key`)
    t.equal(up.headers.length, 1, `${up.name}: the key comes from the Secret`)
  }
})
