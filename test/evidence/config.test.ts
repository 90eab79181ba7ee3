// The evidence sections of the config: the keys they name are read and checked at load, and
// every problem names its key path.
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { ConfigError } from '../../src/errors.js'

const dir = mkdtempSync(join(tmpdir(), 'geofence-evidence-config-'))
const pem = (name: string, type: 'ed25519' | 'rsa' | 'ec', part: 'private' | 'public'): string => {
  const pair = type === 'rsa'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-384' }) : generateKeyPairSync('ed25519')
  const file = join(dir, `${name}.pem`)
  writeFileSync(file, part === 'private' ? pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) : pair.publicKey.export({ type: 'spki', format: 'pem' }))
  return file
}
const BASE = `
upstreams: { anthropic: { url: "https://api.anthropic.com", dialect: anthropic } }
policy: { rules: [ { name: frontier, models: ["claude-*"], deny: [HK], action: block } ] }
`
function problems (yaml: string): string[] {
  try {
    parseConfig('policy.yaml', Buffer.from(`${BASE}${yaml}`), {})
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.path.join('.')}: ${p.message}`)
    throw err
  }
  return []
}

t.test('logging.integrity: an Ed25519 or P-256 private key, read at load', async (t) => {
  const good = parseConfig('policy.yaml', Buffer.from(`${BASE}logging: { integrity: { key: "file:${pem('log', 'ed25519', 'private')}" } }`), {})
  t.match(good.logging.integrity, { checkpointEvery: 10_000, checkpointIntervalMs: 60_000, checkpointFile: null, key: { algorithm: 'ed25519', id: /^[0-9a-f]{16}$/ } })
  t.same(problems(`logging: { integrity: { key: "file:${join(dir, 'missing.pem')}" } }`), [`logging.integrity.key: cannot read ${join(dir, 'missing.pem')}: ENOENT (write key: "file:/etc/llm-geofence/log-signing.pem")`])
  t.match(problems(`logging: { integrity: { key: "file:${pem('rsa', 'rsa', 'private')}" } }`), [/logging\.integrity\.key: the key is a rsa key; use an Ed25519 or ECDSA P-256 key/])
  t.match(problems(`logging: { integrity: { key: "file:${pem('p384', 'ec', 'private')}" } }`), [/logging\.integrity\.key: the key is an EC key on secp384r1/])
  t.match(problems(`logging: { integrity: { key: "file:${pem('pub', 'ed25519', 'public')}" } }`), [/logging\.integrity\.key: not a private key/])
  t.match(problems(`logging: { integrity: { key: "file:${pem('log2', 'ed25519', 'private')}", checkpoint_interval: soon, checkpoint_every: 0 } }`), [
    /logging\.integrity\.checkpoint_every: must be >= 1/,
  ])
  t.match(problems(`logging: { integrity: { key: "file:${pem('log3', 'ed25519', 'private')}", checkpoint_interval: soon } }`), [/logging\.integrity\.checkpoint_interval: "soon" is not a duration/])
})
