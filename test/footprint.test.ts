// Start loads what the configuration needs: a gateway in front of Anthropic alone never loads
// what only identity, WebSockets, SigV4 signing, a signed log or large bodies need (jose, ws,
// the SigV4 signer, the log chain, piscina). The same check on a configuration that does need
// them shows that it can fail.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { writeConfig } from './support/gateway.js'

/** The module URLs `serve` resolved by the time it was listening. */
async function modulesAtStart (config: string): Promise<string[]> {
  const log = join(mkdtempSync(join(tmpdir(), 'geofence-modules-')), 'modules.txt')
  const child = spawn(process.execPath, ['--import', './test/support/module-log-register.mjs', 'dist/cli.js', 'serve', '--config', config], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, GEOFENCE_MODULE_LOG: log },
  })
  let out = ''
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      out += String(c)
      if (out.includes('"msg":"listening"')) resolve()
    })
    child.once('close', (code) => { reject(new Error(`serve exited ${String(code)} before listening: ${out}`)) })
  })
  child.kill('SIGTERM')
  await once(child, 'close')
  return readFileSync(log, 'utf8').split('\n').filter((u) => u !== '')
}

/** A config with one upstream of `dialect` (nothing listens behind it: only start is looked at). */
const oneUpstream = (dialect: string): string => writeConfig(`
server: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  ${dialect}: { url: "http://127.0.0.1:1", dialect: ${dialect} }
policy: { rules: [] }
`)

const ONLY_SOME = [/\/node_modules\/jose\//, /\/node_modules\/ws\//, /\/node_modules\/@smithy\/signature-v4\//, /\/node_modules\/piscina\//, /\/dist\/evidence\/log-chain\.js$/]
const loaded = (urls: string[]): string[] => ONLY_SOME.filter((re) => urls.some((u) => re.test(u))).map(String)

t.test('an Anthropic-only gateway starts without the modules only some configurations need', async (t) => {
  const urls = await modulesAtStart(oneUpstream('anthropic'))
  t.ok(urls.some((u) => u.includes('/node_modules/fastify/')), 'the log saw the modules start loads')
  t.same(loaded(urls), [], 'none of jose, ws, the SigV4 signer, piscina or the log chain')
})

t.test('a gateway in front of OpenAI (Realtime) loads ws at start', async (t) => {
  const urls = await modulesAtStart(oneUpstream('openai'))
  t.same(loaded(urls), [String(/\/node_modules\/ws\//)], 'ws, and nothing else of the list')
})
