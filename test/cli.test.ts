// The geofence command as a user runs it: exit statuses, output, and `explain` agreeing with a
// live `serve` for the same caller and model.
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { createInterface } from 'node:readline'
import t from 'tap'
import { startFakeUpstream } from './support/fake-upstream.js'
import { runCli } from './support/cli.js'
import { baseConfig, startTestGateway, writeConfig } from './support/gateway.js'
import { send } from './support/http.js'

const CLI = ['--import', 'tsx', 'src/cli.ts']
// Some twenty CLI processes start through tsx here (1.5-4 s each on a loaded 2-core machine).
t.setTimeout(180_000)
const run = (...args: string[]): { status: number | null, stdout: string, stderr: string } => {
  const r = spawnSync(process.execPath, [...CLI, ...args], { encoding: 'utf8', timeout: 30_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}
/** As run(), without blocking this process: a gateway it hosts keeps serving meanwhile. */
const runAsync = runCli

t.test('--help documents every command', async (t) => {
  const r = run('--help')
  t.equal(r.status, 0)
  for (const cmd of ['geofence serve --config FILE', 'geofence validate FILE', 'geofence explain --config FILE --ip IP --model MODEL [--upstream NAME] [--client NAME] [--json]', 'geofence test FILE...', 'geofence groups [--json]', 'geofence --version']) {
    t.ok(r.stdout.includes(cmd), cmd)
  }
  const unknown = run('frobnicate')
  t.equal(unknown.status, 2)
  t.match(unknown.stderr, /unknown command "frobnicate"/)
})

t.test('--version and -v print package.json\'s version, from the source and from dist', async (t) => {
  const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }
  const source = run('--version')
  t.equal(source.status, 0)
  t.equal(source.stdout, `${version}\n`, 'src/cli.ts --version')
  // The entry the image runs (npm test builds dist first): package.json is found from dist/ too.
  const built = spawnSync(process.execPath, ['dist/cli.js', '-v'], { encoding: 'utf8', timeout: 30_000 })
  t.equal(built.status, 0, built.stderr)
  t.equal(built.stdout, `${version}\n`, 'dist/cli.js -v')
})

t.test('validate: 0 for a good file, 2 with every problem for a bad one', async (t) => {
  t.equal(run('validate', 'config/example.yaml').status, 0)
  const file = writeConfig(baseConfig('http://127.0.0.1:1').replace('restricted: [CN,', 'restricted: [UK, CN,').replace('upstreams: [anthropic]', 'upstreams: [anthropics]'))
  const r = run('validate', file)
  t.equal(r.status, 2)
  t.match(r.stderr, `${file}:6:16: groups.restricted[0]: "UK" is not a country code`)
  t.match(r.stderr, /:\d+:\d+: policy\.rules\[0\]\.upstreams\[0\]: unknown upstream "anthropics"/)
  t.match(r.stderr, /2 problem\(s\) in .*; nothing was started/)
})

t.test('serve refuses to start on a bad config (exit 2, nothing listens)', async (t) => {
  const file = writeConfig(baseConfig('http://127.0.0.1:1').replace('body_limit: 1mb', 'body_limit: lots'))
  const r = run('serve', '--config', file)
  t.equal(r.status, 2)
  t.match(r.stderr, /server\.body_limit: "lots" is not a size/)
  t.notMatch(r.stdout, /listening/)
})

t.test('explain: the decision and why, as text or one JSON object', async (t) => {
  const json = run('explain', '--config', 'config/example.yaml', '--ip', '203.198.0.1', '--model', 'claude-sonnet-4-5', '--json')
  t.equal(json.status, 0)
  const e = JSON.parse(json.stdout) as Record<string, unknown>
  t.match(e, {
    action: 'block', enforced: true, rule: 'anthropic-frontier', reason: 'country HK is in the deny list of rule anthropic-frontier',
    client_ip: '203.198.0.1', location: { country: 'HK', source: 'geoip' }, upstream: 'anthropic', model: 'claude-sonnet-4-5',
  })
  t.match(e['policy_revision'], /^[0-9a-f]{64}$/)
  const text = run('explain', '--config', 'config/example.yaml', '--ip', '::ffff:8.8.8.8', '--model', 'gpt-4o')
  t.equal(text.status, 0)
  t.match(text.stdout, /decision: +allow/)
  t.match(text.stdout, /client: +8\.8\.8\.8 -> US/)
  t.match(text.stdout, /upstream: +openai/, 'the upstream is inferred from the rule that matches the model')
  const local = JSON.parse(run('explain', '--config', 'config/example.yaml', '--ip', '10.1.2.3', '--model', 'claude-opus-4-1', '--json').stdout) as Record<string, unknown>
  t.match(local, { action: 'block', location: { country: null, source: 'none', reason: 'special-purpose address' } })
  const bad = run('explain', '--config', 'config/example.yaml', '--ip', '1.2.3', '--model', 'x')
  t.equal(bad.status, 2)
  t.match(bad.stderr, /"1\.2\.3" is not an IP address/)
})

t.test('explain and a live serve give the same decision for the same IP and model', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const file = writeConfig(baseConfig(upstream.url))
  const child = spawn(process.execPath, [...CLI, 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: Array<Record<string, unknown>> = []
  const listening = new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>
      lines.push(entry)
      if (entry['msg'] === 'listening') resolve(String(entry['url']))
    })
    child.once('exit', (code) => { reject(new Error(`serve exited with ${String(code)}`)) })
  })
  const url = await listening
  const cases: Array<[string, string, string]> = [
    ['203.198.0.1', 'claude-sonnet-4-5', 'anthropic'],
    ['8.8.8.8', 'claude-sonnet-4-5', 'anthropic'],
    ['114.114.114.114', 'gpt-4o', 'openai'],
    ['81.2.69.142', 'gpt-4o', 'openai'],
    ['77.88.8.8', 'llama-3-70b', 'openai'],
    ['10.9.9.9', 'claude-haiku-4-5', 'anthropic'],
  ]
  for (const [ip, model, upstreamName] of cases) {
    const path = upstreamName === 'anthropic' ? '/anthropic/v1/messages' : '/openai/v1/chat/completions'
    const res = await send(`${url}${path}`, { body: JSON.stringify({ model, messages: [] }), headers: { 'content-type': 'application/json', 'x-forwarded-for': ip } })
    const explained = JSON.parse(run('explain', '--config', file, '--ip', ip, '--model', model, '--upstream', upstreamName, '--json').stdout) as Record<string, unknown>
    await new Promise((resolve) => setTimeout(resolve, 50))
    const live = lines.find((l) => l['decision_id'] === res.headers['x-geofence-decision-id'])
    t.ok(live, `a decision line for ${ip} ${model}`)
    t.same(
      { action: live?.['action'], enforced: live?.['enforced'], rule: live?.['rule'], reason: live?.['reason'], country: live?.['country'], revision: live?.['policy_revision'] },
      { action: explained['action'], enforced: explained['enforced'], rule: explained['rule'], reason: explained['reason'], country: (explained['location'] as Record<string, unknown>)['country'], revision: explained['policy_revision'] },
      `${ip} asking for ${model}: same decision`,
    )
    t.equal(res.status, explained['action'] === 'block' ? 451 : 200)
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'SIGTERM stops the gateway with exit status 0')
})

t.test('explain --request reads a whole request as serve does: path, encoding, body, canonical id', async (t) => {
  const upstream = await startFakeUpstream()
  t.teardown(upstream.close)
  const file = writeConfig(`${baseConfig(upstream.url).replace('upstreams:\n', `upstreams:\n  bedrock: { url: "${upstream.url}", dialect: bedrock }\n`)}`)
  const gw = await startTestGateway('', { file })
  t.teardown(gw.close)
  const dir = dirname(file)
  const HK = '203.198.0.1'
  const cases: Array<{ method: string, path: string, headers: Record<string, string>, body?: Buffer }> = [
    { method: 'POST', path: '/anthropic/v1/messages?beta=true', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: gzipSync('{"model":"claude-sonnet-4-5","messages":[]}') },
    { method: 'POST', path: '/bedrock/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse', headers: { 'content-type': 'application/json' }, body: Buffer.from('{"messages":[]}') },
    { method: 'POST', path: '/anthropic/v1/messages/batches', headers: {}, body: Buffer.from('{"requests":[{"custom_id":"a","params":{"model":"claude-haiku-4-5"}}]}') },
    { method: 'POST', path: '/anthropic/v1/%2e%2e/messages', headers: {}, body: Buffer.from('{}') },
    { method: 'GET', path: '/openai/v1/models', headers: {} },
  ]
  for (const [i, c] of cases.entries()) {
    const args = ['explain', '--config', file, '--ip', HK, '--request', `${c.method} ${c.path}`, '--json']
    for (const [k, v] of Object.entries(c.headers)) args.push('--header', `${k}: ${v}`)
    if (c.body !== undefined) {
      const bodyFile = join(dir, `body-${i}`)
      writeFileSync(bodyFile, c.body)
      args.push('--body', bodyFile)
    }
    const r = await runAsync(...args)
    t.equal(r.status, 0, r.stderr)
    const explained = JSON.parse(r.stdout) as Record<string, unknown>
    const res = await send(`${gw.url}${c.path}`, { method: c.method, ...(c.body === undefined ? {} : { body: c.body }), headers: { ...c.headers, 'x-forwarded-for': HK } })
    const live = gw.decisions().find((l) => l['decision_id'] === res.headers['x-geofence-decision-id'])
    t.same(
      { action: explained['action'], rule: explained['rule'], reason: (explained['reason'] as string).replace(/^refused with \d+: /, ''), model: explained['model'] },
      { action: live?.['action'], rule: live?.['rule'], reason: live?.['reason'], model: live?.['model'] },
      `${c.method} ${c.path}: the same reading and decision`,
    )
  }
  const bedrock = JSON.parse((await runAsync('explain', '--config', file, '--ip', HK, '--request', `POST ${cases[1]?.path ?? ''}`, '--json')).stdout) as Record<string, unknown>
  t.match(bedrock, { upstream: 'bedrock', model: 'us.anthropic.claude-sonnet-4-20250514-v1:0', canonical_model: 'claude-sonnet-4-20250514', request: { endpoint: 'path' } })
  writeFileSync(join(dir, 'message.json'), '{"model":"Claude-Haiku-4-5","messages":[]}')
  const text = await runAsync('explain', '--config', file, '--ip', HK, '--request', 'POST /anthropic/v1/messages', '--header', 'content-type: application/json', '--body', join(dir, 'message.json'))
  t.match(text.stdout, /request: +POST \/v1\/messages \(model read from: json\)/)
  t.match(text.stdout, /model: +Claude-Haiku-4-5 \(canonical: claude-haiku-4-5\)/)
  const unreadable = run('explain', '--config', file, '--ip', HK, '--request', 'POST /anthropic/v1/messages', '--body', join(dir, 'body-2'))
  t.match(unreadable.stdout, /reason: +refused with 400: the request body has no "model"\n[^]*request: +POST \/v1\/messages \(model read from: json\)/)
  t.equal(run('explain', '--config', file, '--ip', HK, '--request', 'POST /nowhere/v1/messages').status, 2)
})
