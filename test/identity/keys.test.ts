// Keys: fetched once per revision and kept; an unknown key refetches once, within a cooldown,
// by one fetch that concurrent callers share; the last good set outlives a provider outage for
// max_stale, then tokens cannot be checked (503, not 401 and not a pass).
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createIdentityVerifier, type KeyFetchEvent } from '../../src/identity/verifier.js'
import { identityConfig, issuerYaml, keyServer, signingKey } from '../support/key-server.js'

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

t.test('rotation: a token under a new key verifies after exactly one refetch', async (t) => {
  const server = await keyServer(t, [await signingKey('old')])
  const fetches: KeyFetchEvent[] = []
  const verifier = createIdentityVerifier(identityConfig(`  refetch_cooldown: 30s\n  issuers:\n${issuerYaml(server)}`), { observer: { onKeyFetch: (e) => { fetches.push(e) } } })
  t.teardown(() => { verifier.close() })
  await verifier.loaded()
  t.same(fetches, [{ issuer: server.issuer, trigger: 'initial', result: 'ok', keys: 1 }])
  const next = await signingKey('new')
  server.keys = [next]
  t.match(await verifier.verify(await server.token({ ctry: 'GB' }, next)), { ok: true, identity: { country: 'GB' } })
  t.equal(server.jwksFetches, 2)
  t.equal(server.discoveryFetches, 1, 'the discovered jwks_uri is kept')
  t.match(fetches[1], { trigger: 'unknown_key', result: 'ok' })
  t.match(await verifier.verify(await server.token({ ctry: 'GB' }, next)), { ok: true })
  t.equal(server.jwksFetches, 2, 'known now: no more fetches')
})

t.test('50 concurrent tokens with unknown keys share one fetch; later ones wait for the cooldown', async (t) => {
  const server = await keyServer(t, [await signingKey('k1')])
  const verifier = createIdentityVerifier(identityConfig(`  refetch_cooldown: 30s\n  issuers:\n${issuerYaml(server)}`))
  t.teardown(() => { verifier.close() })
  await verifier.loaded()
  server.delayMs = 50
  const strangers = await Promise.all(Array.from({ length: 50 }, async (_, i) => signingKey(`stranger-${i}`)))
  const tokens = await Promise.all(strangers.map(async (k) => server.token({ ctry: 'US' }, k)))
  const results = await Promise.all(tokens.map(async (tok) => verifier.verify(tok)))
  t.ok(results.every((r) => !r.ok && r.result === 'unknown_key'), 'all refused as unknown_key')
  t.equal(server.jwksFetches, 2, 'one refetch for all 50')
  t.match(await verifier.verify(tokens[0] ?? ''), { ok: false, result: 'unknown_key' })
  t.equal(server.jwksFetches, 2, 'within the cooldown no further fetch')
})

t.test('provider down: the last good set keeps verifying; past max_stale, keys_unavailable (503)', async (t) => {
  const server = await keyServer(t, [await signingKey('k1')])
  const fetches: KeyFetchEvent[] = []
  const verifier = createIdentityVerifier(
    identityConfig(`  refresh: 100ms\n  max_stale: 1500ms\n  refetch_cooldown: 100ms\n  issuers:\n${issuerYaml(server)}`),
    { observer: { onKeyFetch: (e) => { fetches.push(e) } } })
  t.teardown(() => { verifier.close() })
  await verifier.loaded()
  const token = await server.token({ ctry: 'US' })
  server.down = true
  await sleep(300)
  t.ok(fetches.some((f) => f.trigger === 'refresh' && f.result === 'error'), 'refreshes failed meanwhile')
  t.match(fetches.find((f) => f.result === 'error'), { error: /status 503/ })
  t.match(await verifier.verify(token), { ok: true }, 'the last good set still verifies')
  t.match(await verifier.verify(await server.token({ ctry: 'US' }, await signingKey('rotated'))), { ok: false, kind: 'identity_unavailable', result: 'keys_unavailable', reason: /a key not in the set held, and .* cannot be reached for a new one \(.*status 503\)/ },
    'a key the set lacks while the provider is down: 503, not 401')
  await sleep(1400)
  const stale = await verifier.verify(token)
  t.match(stale, { ok: false, kind: 'identity_unavailable', result: 'keys_unavailable', issuer: server.issuer, reason: /cannot be checked now: the keys of .* were last fetched \d+ s ago, past identity\.max_stale \(.*status 503\)/ })
  t.ok(verifier.ready(), 'readiness stays: the keys were loaded once')
  server.down = false
  await sleep(400)
  t.match(await verifier.verify(token), { ok: true }, 'back once the provider is')
})

t.test('not ready until every issuer\'s keys loaded once; before that, keys_unavailable', async (t) => {
  const up = await keyServer(t, [await signingKey('k1')])
  const down = await keyServer(t, [await signingKey('k2')])
  down.down = true
  const verifier = createIdentityVerifier(identityConfig(`  refetch_cooldown: 10s\n  issuers:\n${issuerYaml(up)}${issuerYaml(down)}`))
  t.teardown(() => { verifier.close() })
  t.notOk(verifier.ready(), 'not ready while fetching')
  await verifier.loaded()
  t.notOk(verifier.ready(), 'one issuer has no keys')
  t.match(await verifier.verify(await up.token({ ctry: 'US' })), { ok: true }, 'the other issuer works')
  t.match(await verifier.verify(await down.token({ ctry: 'US' })), { ok: false, kind: 'identity_unavailable', result: 'keys_unavailable', reason: /no keys yet from .*status 503/ })
  t.equal(down.discoveryFetches, 2, 'the request tried once more')
  t.match(await verifier.verify(await down.token({ ctry: 'US' })), { ok: false, result: 'keys_unavailable' })
  t.equal(down.discoveryFetches, 2, 'within the cooldown a request does not fetch again')
})

t.test('a verify while the first load is under way waits for it', async (t) => {
  const server = await keyServer(t, [await signingKey('k1')])
  server.delayMs = 100
  const verifier = createIdentityVerifier(identityConfig(`  issuers:\n${issuerYaml(server)}`))
  t.teardown(() => { verifier.close() })
  t.match(await verifier.verify(await server.token({ ctry: 'US' })), { ok: true })
  t.equal(server.jwksFetches, 1)
})

t.test('a new revision takes over the previous one\'s keys instead of fetching them', async (t) => {
  const server = await keyServer(t, [await signingKey('k1')])
  const config = identityConfig(`  issuers:\n${issuerYaml(server)}`)
  const first = createIdentityVerifier(config)
  await first.loaded()
  first.close()
  server.down = true
  const second = createIdentityVerifier(config, { previous: first })
  t.teardown(() => { second.close() })
  t.ok(second.ready(), 'ready at once')
  t.match(await second.verify(await server.token({ ctry: 'US' })), { ok: true })
  t.equal(server.jwksFetches, 1)
})

t.test('jwks_uri without discovery, an injected fetch, and a jwks_file', async (t) => {
  const server = await keyServer(t, [await signingKey('k1')])
  const seen: string[] = []
  const verifier = createIdentityVerifier(identityConfig(`  issuers:\n${issuerYaml(server).replace('discovery: true', `jwks_uri: "${server.jwksUri}"`)}`), {
    fetch: async (url, init) => { seen.push(url); return fetch(url, init) },
  })
  t.teardown(() => { verifier.close() })
  t.match(await verifier.verify(await server.token({ ctry: 'US' })), { ok: true })
  t.same(seen, [server.jwksUri])
  t.equal(server.discoveryFetches, 0)

  const file = join(mkdtempSync(join(tmpdir(), 'geofence-jwks-')), 'jwks.json')
  writeFileSync(file, JSON.stringify({ keys: server.keys.map((k) => k.publicJwk) }))
  const fromFile = createIdentityVerifier(identityConfig(`  issuers:\n${issuerYaml(server).replace('discovery: true', `jwks_file: ${file}`)}`))
  t.teardown(() => { fromFile.close() })
  t.ok(fromFile.ready(), 'a file is read at load: ready at once')
  t.match(await fromFile.verify(await server.token({ ctry: 'US' })), { ok: true })
  t.match(await fromFile.verify(await server.token({ ctry: 'US' }, await signingKey('other'))), { ok: false, result: 'unknown_key' }, 'an unknown key is refused without fetching')
  t.equal(server.jwksFetches, 1)
})

t.test('discovery must name the issuer it was asked for', async (t) => {
  const server = await keyServer(t, [await signingKey('k1')])
  const fetches: KeyFetchEvent[] = []
  // Configured with a trailing slash: the discovery document names it without one.
  const verifier = createIdentityVerifier(identityConfig(`  issuers:\n${issuerYaml(server).replace(`issuer: "${server.issuer}"`, `issuer: "${server.issuer}/"`)}`), { observer: { onKeyFetch: (e) => { fetches.push(e) } } })
  t.teardown(() => { verifier.close() })
  await verifier.loaded()
  t.notOk(verifier.ready())
  t.match(fetches, [{ result: 'error', error: /names issuer "http:\/\/127\.0\.0\.1:\d+", not http:\/\/127\.0\.0\.1:\d+\// }])
})
