// Every problem of a config file in one run, databases included: a key the schema does not
// know, a missing GeoIP database, a secret file that cannot be read and a TLS file that holds no
// certificate are reported together by `geofence validate` and by `geofence serve`, each with
// its line, column and key path; exit 2, no stack trace, nothing started.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { runCli } from './support/cli.js'
import { fixtureDir } from './support/fixtures.js'

const dir = fixtureDir()
const notACert = join(dir, 'listener.pem')
writeFileSync(notACert, 'not a certificate\n')
const secretDir = join(dir, 'anthropic-key')
mkdirSync(secretDir)
const file = join(dir, 'config.yaml')
const yaml = `server:
  host: 127.0.0.1
  port: 0
  tls: { cert: "file:${notACert}", key: "file:${join(dir, 'missing.key')}" }
admin: { host: 127.0.0.1, port: 0 }
geoip:
  databases: [${join(dir, 'GeoIP2-City.mmdb')}, embedded]
upstreams:
  anthropic:
    url: https://api.anthropic.com
    dialect: anthropic
    headers: { x-api-key: "file:${secretDir}" }
    timout: 5s
policy:
  rules:
    - { name: r, models: ["claude-*"], deny: [HK], action: block }
`
writeFileSync(file, yaml)
/** file:line:col of the first `token` on line `n` (1-based), as the problems are printed. */
const at = (n: number, token: string): string => `${file}:${n}:${(yaml.split('\n')[n - 1] ?? '').indexOf(token) + 1}`

const expected = [
  `${at(4, 'cert:')}: server.tls.cert: ${notACert} holds no certificate in PEM (-----BEGIN CERTIFICATE-----)`,
  `${at(4, 'key:')}: server.tls.key: cannot read ${join(dir, 'missing.key')}: ENOENT`,
  `${at(7, '/')}: geoip.databases[0]: cannot use the database ${join(dir, 'GeoIP2-City.mmdb')}: no such file`,
  `${at(12, 'x-api-key')}: upstreams.anthropic.headers.x-api-key: cannot read ${secretDir}: EISDIR`,
  `${at(13, 'timout')}: upstreams.anthropic.timout: unknown key "timout" (did you mean "timeouts"?)`,
  `5 problem(s) in ${file}; nothing was started.`,
]

for (const args of [['validate', file], ['serve', '--config', file]]) {
  t.test(`geofence ${args[0]}: every problem in one run, exit 2`, async (t) => {
    const r = await runCli(...args)
    t.equal(r.status, 2)
    t.same(`${r.stdout}${r.stderr}`.trimEnd().split('\n'), expected)
    t.notMatch(r.stderr, /\n\s+at /, 'no stack trace')
  })
}

t.test('a key of the wrong type still hides nothing that can be read around it: the databases are opened', async (t) => {
  const wrong = join(dir, 'wrong-type.yaml')
  writeFileSync(wrong, `server: { host: 127.0.0.1, port: many }
geoip: { databases: [${join(dir, 'GeoIP2-City.mmdb')}] }
upstreams:
  anthropic: { url: https://api.anthropic.com, dialect: anthropic }
policy: { rules: [] }
`)
  const r = await runCli('validate', wrong)
  t.equal(r.status, 2)
  t.match(r.stdout + r.stderr, /wrong-type\.yaml:1:28: server\.port: must be integer\n.*wrong-type\.yaml:2:22: geoip\.databases\[0\]: cannot use the database .*GeoIP2-City\.mmdb: no such file\n2 problem\(s\)/)
})
