// What can be checked of the container without a Docker engine: every path the Dockerfile
// copies exists, it runs as a non-root user and exposes both ports with a health check, and its
// entry point starts the gateway from a production-only install.
import { spawn, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import t from 'tap'
import { DEFAULT_ADMIN_PORT, DEFAULT_PORT } from '../src/config/validate.js'
import { send } from './support/http.js'

const dockerfile = readFileSync('Dockerfile', 'utf8').replace(/\\\n/g, ' ')
const instructions = dockerfile.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
const final = instructions.slice(instructions.map((l) => l.startsWith('FROM ')).lastIndexOf(true))

t.test('the Dockerfile is a multi-stage build whose copies exist', async (t) => {
  const froms = instructions.filter((l) => l.startsWith('FROM '))
  t.ok(froms.length >= 2, 'multi-stage')
  const bases = new Set(froms.map((f) => f.split(/\s+/)[1]))
  t.equal(bases.size, 1, 'one base image: dist and node_modules are built on the Node that runs them')
  const base = [...bases][0] ?? ''
  t.match(base, /^node:24(\.\d+){0,2}-[a-z]+-slim(@sha256:[0-9a-f]{64})?$/, 'Node 24 LTS on a slim Debian (Node 20 reached end of life on 2026-04-30)')
  t.match(readFileSync('README.md', 'utf8'), `Multi-stage on \`${base}\``, 'the README names the base image')
  t.ok(instructions.some((l) => /RUN .*npm ci/.test(l)), 'npm ci in the build stage')
  t.ok(instructions.some((l) => /--omit=dev/.test(l)), 'production dependencies only')
  for (const copy of instructions.filter((l) => l.startsWith('COPY ') && !l.includes('--from'))) {
    const parts = copy.split(/\s+/).slice(1, -1)
    for (const src of parts) t.ok(existsSync(src), `${src} exists`)
  }
  t.ok(existsSync('.dockerignore'))
  t.match(readFileSync('.dockerignore', 'utf8'), /^node_modules$/m)
})

t.test('the final stage runs as a non-root user, exposes both ports, checks /healthz', async (t) => {
  const user = final.filter((l) => l.startsWith('USER ')).at(-1)
  t.ok(user, 'USER is set')
  t.notMatch(user, /^USER\s+(root|0)(:|\s|$)/, 'not root')
  const exposed = final.filter((l) => l.startsWith('EXPOSE ')).flatMap((l) => l.split(/\s+/).slice(1).map(Number))
  t.same(exposed.sort(), [DEFAULT_PORT, DEFAULT_ADMIN_PORT].sort())
  t.match(final.find((l) => l.startsWith('HEALTHCHECK')), new RegExp(`127\\.0\\.0\\.1:${DEFAULT_ADMIN_PORT}/healthz`))
  t.match(final.find((l) => l.startsWith('ENTRYPOINT')), /"node", "dist\/cli\.js"/)
})

t.test('the entry point starts the gateway from a production-only install', async (t) => {
  t.ok(existsSync('dist/cli.js'), 'dist is built (npm test builds it first)')
  const dir = mkdtempSync(join(tmpdir(), 'geofence-prod-'))
  for (const p of ['package.json', 'package-lock.json', 'dist', 'config', 'geoip-data']) cpSync(p, join(dir, p), { recursive: true })
  const install = spawnSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: dir, encoding: 'utf8', timeout: 240_000 })
  t.equal(install.status, 0, install.stderr)
  t.notOk(existsSync(join(dir, 'node_modules', 'typescript')), 'no dev dependency was installed')
  t.notOk(existsSync(join(dir, 'node_modules', 'tap')), 'no test runner was installed')
  writeFileSync(join(dir, 'config', 'test.yaml'), readFileSync('config/example.yaml', 'utf8')
    .replace('port: 8080', 'port: 0') + '\nadmin: { host: 127.0.0.1, port: 0 }\n')
  const entry = final.find((l) => l.startsWith('ENTRYPOINT')) ?? ''
  const argv = JSON.parse(entry.slice('ENTRYPOINT'.length)) as string[]
  const child = spawn(argv[0] ?? 'node', [...argv.slice(1), 'serve', '--config', 'config/test.yaml'], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_ENV: 'production' } })
  t.teardown(() => { child.kill('SIGKILL') })
  const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (l) => {
      const entryLine = JSON.parse(l) as Record<string, unknown>
      if (entryLine['msg'] === 'listening') resolve(entryLine)
    })
    child.once('exit', (code) => { reject(new Error(`exited with ${String(code)}`)) })
  })
  t.same((await send(`${String(listening['admin'])}/healthz`)).json(), { status: 'ok' })
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  t.equal(await exited, 0)
})
