// The built-in jurisdiction groups: sourced, dated, valid codes, complements that add up.
import { spawnSync } from 'node:child_process'
import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { BUILTIN_GROUPS } from '../../src/policy/builtin-groups.js'
import { COUNTRY_CODES } from '../../src/policy/countries.js'
import { loadRuntime } from '../../src/runtime.js'
import { writeConfig } from '../support/gateway.js'

t.test('every group the issue asks for exists, with a source, a date and valid codes', async (t) => {
  for (const name of ['eu', 'eea', 'five-eyes', 'gcc', 'asean', 'ofac-comprehensive', 'ear-d1', 'ear-d4', 'ear-d5', 'ear-e1', 'ear-e2',
    'anthropic-supported', 'openai-supported', 'gemini-supported', 'anthropic-unsupported', 'openai-unsupported', 'gemini-unsupported']) {
    const g = BUILTIN_GROUPS.get(name)
    t.ok(g, name)
    t.ok((g?.source.length ?? 0) > 5, `${name} has a source`)
    t.match(g?.date, /^\d{4}(-\d{2}){0,2}$/, `${name} has a date`)
    t.ok((g?.members.size ?? 0) > 0, `${name} has members`)
  }
  for (const g of BUILTIN_GROUPS.values()) {
    const invalid = [...g.members].filter((m) => !COUNTRY_CODES.has(m) && !(/^[A-Z]{2}-[A-Z0-9]{1,3}$/.test(m) && COUNTRY_CODES.has(m.slice(0, 2))))
    t.same(invalid, [], `${g.name}: every member is an ISO 3166-1 or 3166-2 code`)
  }
})

t.test('facts: sizes and members from the sourced lists', async (t) => {
  t.equal(BUILTIN_GROUPS.get('eu')?.members.size, 27)
  t.equal(BUILTIN_GROUPS.get('eea')?.members.size, 30)
  t.same([...(BUILTIN_GROUPS.get('five-eyes')?.members ?? [])].sort(), ['AU', 'CA', 'GB', 'NZ', 'US'])
  t.same([...(BUILTIN_GROUPS.get('ofac-comprehensive')?.members ?? [])].sort(), ['CU', 'IR', 'KP', 'UA-09', 'UA-14', 'UA-40', 'UA-43'])
  t.same([...(BUILTIN_GROUPS.get('ofac-comprehensive-countries')?.members ?? [])].sort(), ['CU', 'IR', 'KP'])
  t.ok(BUILTIN_GROUPS.get('ear-d1')?.members.has('HK'), 'EAR treats HK as CN')
  t.notOk(BUILTIN_GROUPS.get('ear-e1')?.members.has('HK'))
  t.ok(BUILTIN_GROUPS.get('asean')?.members.has('TL'), 'Timor-Leste joined 2025-10-26')
})

t.test('unsupported is the complement of supported, plus the excluded regions', async (t) => {
  for (const provider of ['anthropic', 'openai', 'gemini']) {
    const supported = BUILTIN_GROUPS.get(`${provider}-supported`)?.members ?? new Set()
    const unsupported = BUILTIN_GROUPS.get(`${provider}-unsupported-countries`)?.members ?? new Set()
    t.equal(supported.size + unsupported.size, COUNTRY_CODES.size, provider)
    for (const c of supported) t.notOk(unsupported.has(c))
  }
  const anthropic = BUILTIN_GROUPS.get('anthropic-unsupported')?.members
  for (const c of ['CN', 'HK', 'MO', 'RU', 'KP', 'UA-43', 'UA-14', 'UA-09', 'UA-65', 'UA-23']) t.ok(anthropic?.has(c), c)
  for (const c of ['US', 'GB', 'UA', 'TW', 'SG']) t.notOk(anthropic?.has(c), c)
})

t.test('groups in a config: built-ins are usable, never silently shadowed, subdivisions need a City database', async (t) => {
  const head = 'upstreams: { a: { url: "http://127.0.0.1:1", dialect: openai } }\n'
  const config = parseConfig('p.yaml', Buffer.from(`${head}groups:\n  mine: [group:eu, NO]\npolicy:\n  rules:\n    - { name: r, allow: [group:mine, group:five-eyes], action: block }\n`), {})
  t.ok(config.policy.rules[0]?.allow?.has('DE'))
  t.ok(config.policy.rules[0]?.allow?.has('NZ'))
  t.throws(() => parseConfig('p.yaml', Buffer.from(`${head}groups:\n  eu: [FR]\npolicy: { rules: [] }\n`), {}), /groups\.eu: "eu" is a built-in group/)
  const file = writeConfig(`${head}policy:\n  rules:\n    - { name: r, deny: [group:ofac-comprehensive], action: block }\n`)
  const err = await loadRuntime(file).then(() => null, (e: unknown) => e as Error)
  t.match(err?.message, /:4:25: policy\.rules\[0\]\.deny\[0\]: rule "r" names subdivisions \(ISO 3166-2\), but no configured database carries them/)
  const direct = writeConfig(`${head}policy:\n  rules:\n    - { name: r, deny: [UA-43], action: block }\n`)
  t.match((await loadRuntime(direct).then(() => null, (e: unknown) => e as Error))?.message, /names subdivisions/)
  const countriesOnly = writeConfig(`${head}policy:\n  rules:\n    - { name: r, deny: [group:ofac-comprehensive-countries], action: block }\n`)
  t.ok(await loadRuntime(countriesOnly), 'the -countries twin loads without a City database')
})

t.test('geofence groups lists every group with source and date', async (t) => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'groups', '--json'], { encoding: 'utf8' })
  t.equal(r.status, 0)
  const list = JSON.parse(r.stdout) as Array<{ name: string, source: string, date: string, members: string[] }>
  t.equal(list.length, BUILTIN_GROUPS.size)
  t.match(list.find((g) => g.name === 'gemini-supported'), { date: '2025-11-19', source: /ai\.google\.dev/ })
  const text = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'groups'], { encoding: 'utf8' }).stdout
  t.match(text, /group:ear-d5 \(\d+\)\n {2}source: 15 CFR 740/)
})
