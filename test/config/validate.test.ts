// Every validation error names the file, line and column, and the key path; all at once.
import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { ConfigError } from '../../src/errors.js'
import { loadRuntime } from '../../src/runtime.js'
import { writeConfig } from '../support/gateway.js'

const GOOD = `server: { host: 127.0.0.1, port: 8080, body_limit: 32mb }
client_ip:
  trusted_proxies: [127.0.0.1/32, "::1/128"]
geoip:
  cache: { max_entries: 100000, ttl: 1h }
groups:
  restricted: [CN, HK, MO, RU, BY, IR, KP, CU, SY]
upstreams:
  anthropic: { url: https://api.anthropic.com, dialect: anthropic }
  openai:    { url: https://api.openai.com, dialect: openai }
policy:
  mode: enforce
  default: block
  unknown_location: block
  rules:
    - name: anthropic-frontier
      upstreams: [anthropic]
      models: ["claude-*"]
      deny: [group:restricted]
      action: block
`

function problems (yaml: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig('policy.yaml', Buffer.from(yaml), env)
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n')
    throw err
  }
  return []
}

t.test('the issue\'s example config is valid, with the documented defaults', async (t) => {
  const config = parseConfig('policy.yaml', Buffer.from(GOOD), {})
  t.equal(config.server.bodyLimit, 32 * 1024 * 1024)
  t.equal(config.geoip.cache.ttlMs, 3_600_000)
  t.same([...(config.groups.get('restricted') ?? [])], ['CN', 'HK', 'MO', 'RU', 'BY', 'IR', 'KP', 'CU', 'SY'])
  t.equal(config.upstreams.get('anthropic')?.url, 'https://api.anthropic.com')
  t.same([...(config.policy.rules[0]?.deny ?? [])].sort(), ['BY', 'CN', 'CU', 'HK', 'IR', 'KP', 'MO', 'RU', 'SY'])
  t.match(config.revision, /^[0-9a-f]{64}$/)
  t.equal(config.policy.unknownEndpoint, 'block', 'an endpoint no dialect lists is blocked unless the config says otherwise')
})

t.test('policy.unknown_endpoint: block or allow', async (t) => {
  t.equal(parseConfig('policy.yaml', Buffer.from(GOOD.replace('  default: block', '  default: block\n  unknown_endpoint: allow')), {}).policy.unknownEndpoint, 'allow')
  t.same(problems(GOOD.replace('  default: block', '  default: block\n  unknown_endpoint: default')), ['policy.yaml:14:3: policy.unknown_endpoint: must be one of: block, allow'])
})

t.test('an unknown key, with the line and a suggestion', async (t) => {
  t.same(problems(GOOD.replace('  trusted_proxies:', '  trusted_proxy:')),
    ['policy.yaml:3:3: client_ip.trusted_proxy: unknown key "trusted_proxy" (did you mean "trusted_proxies"?)'])
  t.same(problems(`${GOOD}logs: {}\n`), ['policy.yaml:21:1: logs: unknown key "logs" (known keys: server, admin, clients, client_ip, geoip, networks, groups, upstreams, policy, logging, identity, policy_signature, egress)'])
  t.same(problems(GOOD.replace('      action: block', '      action: block\n      deny_all: true')),
    ['policy.yaml:21:7: policy.rules[0].deny_all: unknown key "deny_all" (known keys: name, upstreams, models, allow, deny, action, mode, anonymous, clients, jurisdiction)'])
})

t.test('country codes: ISO 3166-1 alpha-2 only, XK allowed, common mistakes explained', async (t) => {
  const withCodes = (codes: string): string => GOOD.replace('restricted: [CN, HK, MO, RU, BY, IR, KP, CU, SY]', `restricted: [${codes}]`)
  t.same(problems(withCodes('CN, XK')), [])
  t.same(problems(withCodes('CN, UK')), ['policy.yaml:7:20: groups.restricted[1]: "UK" is not a country code: UK is not an ISO 3166-1 code; the United Kingdom is GB'])
  t.match(problems(withCodes('EL')), [/7:16: groups\.restricted\[0\]: "EL" is not a country code: .*uses GR/])
  t.match(problems(withCodes('EU')), [/"EU" is not a country code: EU is not a country/])
  t.match(problems(withCodes('cn')), [/"cn" must be written in upper case: CN/])
  t.match(problems(withCodes('ZZ')), [/"ZZ" is not an ISO 3166-1 alpha-2 country code/])
  t.match(problems(GOOD.replace('deny: [group:restricted]', 'allow: [US, GB]\n      deny: [UK]')), [/policy\.yaml:20:14: policy\.rules\[0\]\.deny\[0\]: "UK"/])
})

t.test('unknown groups and upstreams', async (t) => {
  t.same(problems(GOOD.replace('deny: [group:restricted]', 'deny: [group:sanctioned]')),
    ['policy.yaml:19:14: policy.rules[0].deny[0]: unknown group "sanctioned" (groups: restricted; "geofence groups" lists the built-in ones)'])
  t.same(problems(GOOD.replace('upstreams: [anthropic]', 'upstreams: [claude]')),
    ['policy.yaml:17:19: policy.rules[0].upstreams[0]: unknown upstream "claude" (known: anthropic, openai)'])
  t.same(problems(GOOD.replace('restricted: [CN,', 'restricted: [group:restricted, CN,')),
    ['policy.yaml:7:16: groups.restricted[0]: group "restricted" includes itself through "restricted"'])
})

t.test('bad CIDRs', async (t) => {
  t.same(problems(GOOD.replace('[127.0.0.1/32, "::1/128"]', '[127.0.0.1/33, "::1/128", 10.0.0.0/8, nonsense]')), [
    'policy.yaml:3:21: client_ip.trusted_proxies[0]: "127.0.0.1/33" is not a CIDR (write e.g. 10.0.0.0/8, 192.0.2.7 or "::1/128")',
    'policy.yaml:3:58: client_ip.trusted_proxies[3]: "nonsense" is not a CIDR (write e.g. 10.0.0.0/8, 192.0.2.7 or "::1/128")',
  ])
})

t.test('duplicate rule names', async (t) => {
  const rule = GOOD.slice(GOOD.indexOf('    - name: anthropic-frontier'))
  t.same(problems(GOOD + rule), ['policy.yaml:21:7: policy.rules[1].name: duplicate rule name "anthropic-frontier" (also rule 0)'])
})

t.test('shapes and values: types, enums, sizes, durations, URLs, rules without lists', async (t) => {
  t.same(problems(GOOD.replace('dialect: openai', 'dialect: gpt')), ['policy.yaml:10:45: upstreams.openai.dialect: must be one of: anthropic, anthropic-compatible, openai, openai-compatible, azure-openai, gemini, vertex, bedrock'])
  t.same(problems(GOOD.replace('port: 8080', 'port: eighty')), ['policy.yaml:1:28: server.port: must be integer'])
  t.same(problems(GOOD.replace('body_limit: 32mb', 'body_limit: 32 megs')), ['policy.yaml:1:40: server.body_limit: "32 megs" is not a size (write e.g. 32mb, 512kb or a number of bytes)'])
  t.same(problems(GOOD.replace('ttl: 1h', 'ttl: an hour')), ['policy.yaml:5:33: geoip.cache.ttl: "an hour" is not a duration (write e.g. 1h, 30m, 90s or 500ms)'])
  t.same(problems(GOOD.replace('https://api.openai.com', 'api.openai.com')), ['policy.yaml:10:16: upstreams.openai.url: "api.openai.com" is not a URL (write e.g. https://api.anthropic.com)'])
  t.same(problems(GOOD.replace('      deny: [group:restricted]\n', '')), ['policy.yaml:16:7: policy.rules[0]: a rule needs "allow", "deny" or both (write deny: [] to let every location through)'])
  t.same(problems(GOOD.replace('  mode: enforce', '  mode: audit')), ['policy.yaml:12:3: policy.mode: must be one of: enforce, dry-run'])
  t.same(problems(GOOD.replace('      action: block', '      action: route')), ['policy.yaml:20:7: policy.rules[0].action: must be block, or route: { upstream: NAME, model: MODEL }'])
})

t.test('YAML errors and duplicate keys point at the line', async (t) => {
  t.match(problems(GOOD.replace('  default: block', '  default: block\n  default: allow')), ['policy.yaml:14:3: Map keys must be unique'])
  t.match(problems(GOOD.replace('server: {', 'server: {{')), [/^policy\.yaml:2:1: Flow map in block collection must be sufficiently indented and end with a }$/])
})

t.test('${ENV} is substituted in any string; a missing variable is an error', async (t) => {
  const yaml = GOOD.replace('https://api.openai.com', '"${OPENAI_BASE}"').replace('port: 8080', 'port: "${PORT}"')
  const config = parseConfig('policy.yaml', Buffer.from(yaml), { OPENAI_BASE: 'http://127.0.0.1:9999/v1', PORT: '9090' })
  t.equal(config.upstreams.get('openai')?.url, 'http://127.0.0.1:9999/v1')
  t.equal(config.server.port, 9090)
  t.same(problems(yaml, { PORT: '9090' }), ['policy.yaml:10:21: upstreams.openai.url: environment variable OPENAI_BASE is not set'])
})

t.test('every problem is reported at once', async (t) => {
  const yaml = GOOD
    .replace('[127.0.0.1/32, "::1/128"]', '[127.0.0.1/40]')
    .replace('restricted: [CN,', 'restricted: [UK, CN,')
    .replace('upstreams: [anthropic]', 'upstreams: [nowhere]')
  t.equal(problems(yaml).length, 3)
})

t.test('a database that cannot be opened stops the start, pointing at its entry', async (t) => {
  const file = writeConfig(GOOD.replace('geoip:\n', 'geoip:\n  databases: [/nonexistent/GeoLite2-Country.mmdb]\n'))
  const err = await loadRuntime(file).then(() => null, (e: unknown) => e)
  t.ok(err instanceof ConfigError)
  t.equal((err as Error).message, `${file}:5:15: geoip.databases[0]: cannot use the database /nonexistent/GeoLite2-Country.mmdb: no such file`)
})

t.test('upstream keys of the dialects: endpoints, model_aliases, aws_sigv4, batch_body_limit', async (t) => {
  const yaml = GOOD.replace('  openai:    { url: https://api.openai.com, dialect: openai }', `  openai:    { url: https://api.openai.com, dialect: openai, endpoints: ["GET /v1/models", "get /v1/files", "GET /v1//models", "GET v1/models"] }
  azure:     { url: https://x.openai.azure.com, dialect: azure-openai, model_aliases: { prod: "gpt-4o\\n" } }
  bedrock:
    url: https://bedrock-runtime.us-east-1.amazonaws.com
    dialect: bedrock
    aws_sigv4: { region: us-east-1, access_key_id: AKID, secret_access_key: "file:/nonexistent/aws-secret" }`)
    .replace('body_limit: 32mb }', 'body_limit: 32mb, batch_body_limit: lots }')
  const found = problems(yaml)
  t.match(found, [
    /policy\.yaml:1:\d+: server\.batch_body_limit: "lots" is not a size/,
    /upstreams\.openai\.endpoints\[1\]: "get \/v1\/files" is not an endpoint/,
    /upstreams\.openai\.endpoints\[2\]: "GET \/v1\/\/models": write the path decoded, without empty or dot segments/,
    /upstreams\.openai\.endpoints\[3\]: "GET v1\/models" is not an endpoint/,
    /upstreams\.azure\.model_aliases\.prod: "gpt-4o\\n" is not a model id/,
    /upstreams\.bedrock\.aws_sigv4\.secret_access_key: cannot read \/nonexistent\/aws-secret: ENOENT/,
  ])
  t.equal(found.length, 6, found.join('\n'))
})

t.test('the bounds on hostile bodies: documented defaults, and a bad value names its key', async (t) => {
  const config = parseConfig('policy.yaml', Buffer.from(GOOD), {})
  t.equal(config.server.maxExpansionRatio, 100)
  t.equal(config.server.batchMaxItems, 100_000, 'Anthropic\'s documented maximum')
  t.equal(config.server.maxConcurrentLargeBodies, 4)
  const set = (extra: string): string => GOOD.replace('body_limit: 32mb }', `body_limit: 32mb, ${extra} }`)
  t.same(problems(set('max_expansion_ratio: 0.5')), ['policy.yaml:1:58: server.max_expansion_ratio: must be >= 1'])
  t.same(problems(set('batch_max_items: many')), ['policy.yaml:1:58: server.batch_max_items: must be integer'])
  t.same(problems(set('max_concurrent_large_bodies: 0')), ['policy.yaml:1:58: server.max_concurrent_large_bodies: must be >= 1'])
  const ok = parseConfig('policy.yaml', Buffer.from(set('max_expansion_ratio: 20, batch_max_items: 10, max_concurrent_large_bodies: 2')), {})
  t.same([ok.server.maxExpansionRatio, ok.server.batchMaxItems, ok.server.maxConcurrentLargeBodies], [20, 10, 2])
})
