// geofence test: table-driven policy cases, as a compliance team runs them in CI.
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { fixtureDir } from './support/fixtures.js'

const run = (...args: string[]): { status: number | null, stdout: string, stderr: string } => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'test', ...args], { encoding: 'utf8', timeout: 30_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

const dir = fixtureDir()
writeFileSync(join(dir, 'policy.yaml'), `
upstreams:
  anthropic: { url: "http://127.0.0.1:1", dialect: anthropic }
policy:
  rules:
    - { name: frontier, models: ["claude-*"], deny: [HK, CN], action: block }
`)

t.test('the shipped example passes its own tests', async (t) => {
  const r = run('config/hong-kong-bank.test.yaml')
  t.equal(r.status, 0, r.stdout + r.stderr)
  t.match(r.stdout, /^34 passed, 0 failed\n$/)
})

t.test('passing cases: exit 0 and the summary', async (t) => {
  const file = join(dir, 'pass.test.yaml')
  writeFileSync(file, `config: policy.yaml
cases:
  - { name: HK is blocked, ip: 203.198.0.1, model: claude-sonnet-5-5, expect: block }
  - { name: US is served, ip: 8.8.8.8, model: claude-sonnet-5-5, expect: allow }
`)
  const r = run(file)
  t.equal(r.status, 0)
  t.equal(r.stdout, '2 passed, 0 failed\n')
})

t.test('a failing case prints the decision it got and why; exit 1', async (t) => {
  const file = join(dir, 'fail.test.yaml')
  writeFileSync(file, `config: policy.yaml
cases:
  - { name: HK is served (wrong), ip: 203.198.0.1, model: claude-sonnet-5-5, expect: allow }
  - { name: US is served, ip: 8.8.8.8, model: claude-sonnet-5-5, expect: allow }
  - { name: a route that is not there, ip: 8.8.8.8, model: claude-sonnet-5-5, expect: "route:local" }
`)
  const r = run(file)
  t.equal(r.status, 1)
  t.match(r.stdout, `FAIL ${file}: HK is served (wrong)\n     expected allow, got block: rule frontier: country HK is in the deny list of rule frontier; caller 203.198.0.1 -> HK`)
  t.match(r.stdout, /FAIL .*: a route that is not there\n {5}expected route:local, got allow/)
  t.match(r.stdout, /1 passed, 2 failed\n$/)
})

t.test('zero cases is a failure, not a pass', async (t) => {
  const file = join(dir, 'empty.test.yaml')
  writeFileSync(file, 'config: policy.yaml\ncases: []\n')
  const r = run(file)
  t.equal(r.status, 1)
  t.equal(r.stdout, '0 passed, 0 failed\n')
})

t.test('a malformed test file is exit 2 with the line of each problem', async (t) => {
  const file = join(dir, 'bad.test.yaml')
  writeFileSync(file, 'config: policy.yaml\ncases:\n  - { name: x, ip: 8.8.8.8, model: m, expect: maybe, extra: 1 }\n')
  const r = run(file)
  t.equal(r.status, 2)
  t.match(r.stderr, `${file}:3:47: cases[0].expect: must be allow, block or route:MODEL`)
  t.match(r.stderr, /cases\[0\]\.extra: unknown key "extra"/)
  t.match(r.stderr, /no test was run/)
})

t.test('cases can name the authenticated client, for rules that name clients', async (t) => {
  writeFileSync(join(dir, 'clients.yaml'), `
clients:
  research-app: { token_sha256: ${'a'.repeat(64)} }
  payments-app: { token_sha256: ${'b'.repeat(64)} }
upstreams:
  anthropic: { url: "http://127.0.0.1:1", dialect: anthropic }
policy:
  rules:
    - { name: opus-research, models: ["claude-opus-*"], clients: [research-app], deny: [], action: block }
    - { name: no-opus, models: ["claude-opus-*"], allow: [], action: block }
`)
  const file = join(dir, 'clients.test.yaml')
  writeFileSync(file, `config: clients.yaml
cases:
  - { name: research may use Opus, ip: 8.8.8.8, model: claude-opus-5-5, client: research-app, expect: allow }
  - { name: payments may not, ip: 8.8.8.8, model: claude-opus-5-5, client: payments-app, expect: block }
  - { name: nor an unauthenticated caller, ip: 8.8.8.8, model: claude-opus-5-5, expect: block }
`)
  const r = run(file)
  t.equal(r.status, 0, r.stdout)
  t.equal(r.stdout, '3 passed, 0 failed\n')
  const explained = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'explain', '--config', join(dir, 'clients.yaml'), '--ip', '8.8.8.8', '--model', 'claude-opus-5-5', '--client', 'research-app', '--json'], { encoding: 'utf8' })
  t.match(JSON.parse(explained.stdout), { action: 'allow', rule: 'opus-research', client: 'research-app' })
})

t.test('cases can be whole requests, read as serve reads them', async (t) => {
  writeFileSync(join(dir, 'requests.yaml'), `
upstreams:
  anthropic: { url: "http://127.0.0.1:1", dialect: anthropic }
  bedrock: { url: "http://127.0.0.1:1", dialect: bedrock }
policy:
  rules:
    - { name: frontier, models: ["claude-*"], deny: [HK, CN], action: block }
    - { name: others, deny: [], action: block }
`)
  const file = join(dir, 'requests.test.yaml')
  writeFileSync(file, `config: requests.yaml
cases:
  - { name: Claude on Bedrock by its SDK's encoded id, ip: 203.198.0.1, request: "POST /bedrock/model/global.anthropic.claude-sonnet-5-5/converse", body: { messages: [] }, expect: block }
  - { name: the same from the US, ip: 8.8.8.8, request: "POST /bedrock/model/global.anthropic.claude-sonnet-5-5/converse", body: { messages: [] }, expect: allow }
  - { name: a body that names two models is refused, ip: 8.8.8.8, request: "POST /anthropic/v1/messages", headers: { Content-Type: application/json }, body: '{"model":"x","model":"claude-sonnet-5-5"}', expect: block }
  - { name: a double-encoded path is refused, ip: 8.8.8.8, request: "POST /anthropic/v1%252Fmessages", body: { model: claude-sonnet-5-5 }, expect: block }
  - { name: a wrong expectation, ip: 8.8.8.8, request: "POST /anthropic/v1/messages", body: { model: claude-sonnet-5-5 }, expect: block }
  - { name: an opaque ARN wrongly expected to pass, ip: 8.8.8.8, request: "POST /bedrock/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Aapplication-inference-profile%2Fx/converse", body: {}, expect: allow }
`)
  const r = run(file)
  t.equal(r.status, 1, r.stdout + r.stderr)
  t.match(r.stdout, /FAIL .*: a wrong expectation\n {5}expected block, got allow: rule frontier: country US passes rule frontier/)
  t.match(r.stdout, /FAIL .*: an opaque ARN wrongly expected to pass\n {5}expected allow, got block: policy\.unknown_model: the model cannot be seen/)
  t.match(r.stdout, /^4 passed, 2 failed\n$/m)

  const bad = join(dir, 'requests-bad.test.yaml')
  writeFileSync(bad, `config: requests.yaml
cases:
  - { name: both, ip: 8.8.8.8, model: m, request: "POST /anthropic/v1/messages", expect: allow }
  - { name: a body without a request, ip: 8.8.8.8, model: m, body: {}, expect: allow }
  - { name: not a request line, ip: 8.8.8.8, request: "post anthropic", expect: allow }
`)
  const b = run(bad)
  t.equal(b.status, 2)
  t.match(b.stderr, /cases\[0\]: a case names a model, or a whole request/)
  t.match(b.stderr, /cases\[1\]: headers and body go with request/)
  t.match(b.stderr, /cases\[2\]\.request: must be "METHOD \/upstream\/path\?query"/)
})
