// The verifier refuses every token that does not prove who the end user is and where, each
// with its own result: tokens minted with jose against a loopback provider found by discovery.
import { base64url, SignJWT, CompactEncrypt, type JWTPayload } from 'jose'
import t, { type Test } from 'tap'
import { createIdentityVerifier, type IdentityResult, type IdentityVerifier, type TokenResult } from '../../src/identity/verifier.js'
import { identityConfig, issuerYaml, keyServer, signingKey, type KeyServer } from '../support/key-server.js'

async function setup (t: Test, head = ''): Promise<{ server: KeyServer, verifier: IdentityVerifier, results: Array<[TokenResult, string | null]> }> {
  const server = await keyServer(t, [await signingKey('k1')])
  const results: Array<[TokenResult, string | null]> = []
  const verifier = createIdentityVerifier(identityConfig(`${head}  issuers:\n${issuerYaml(server)}`), { observer: { onToken: (r, iss) => { results.push([r, iss]) } } })
  t.teardown(() => { verifier.close() })
  await verifier.loaded()
  return { server, verifier, results }
}

const now = (): number => Math.floor(Date.now() / 1000)

t.test('a good token: where the end user is, from the configured claims', async (t) => {
  const { server, verifier, results } = await setup(t)
  t.ok(verifier.ready())
  t.equal(verifier.header, 'x-geofence-identity')
  const r = await verifier.verify(await server.token({ ctry: 'HK', work_subdivision: 'HK-HCW', legal_entity: 'bank-hk', jti: 'tok-1' }))
  t.same(r, { ok: true, identity: { issuer: server.issuer, subject: 'user-1', country: 'HK', subdivisions: ['HK-HCW'], entity: 'bank-hk', sourceClaim: 'ctry', jti: 'tok-1' } })
  t.same(results, [['ok', server.issuer]])
  t.match(await verifier.verify([await server.token({ ctry: 'HKG-IFC' })]), { ok: true, identity: { country: 'HK', subdivisions: [], entity: null, jti: null } }, 'values maps a site code; one header as an array')
  t.match(await verifier.verify(await server.token({ ctry: 'KYIV-HQ' })), { ok: true, identity: { country: 'UA', subdivisions: ['UA-30'] } }, 'a value may map to a subdivision')
  t.equal(server.discoveryFetches, 1)
  t.equal(server.jwksFetches, 1, 'the keys were fetched once, at build')
})

t.test('absent: 401 when required, identity unknown when not', async (t) => {
  const { verifier } = await setup(t)
  t.same(await verifier.verify(undefined), { ok: false, kind: 'unauthorized', result: 'missing', reason: 'an identity token is required (x-geofence-identity)', issuer: null })
  t.match(await verifier.verify([]), { ok: false, result: 'missing' })
  const open = await setup(t, '  required: false\n')
  t.same(await open.verifier.verify(undefined), { ok: true, identity: null, reason: 'no identity token (x-geofence-identity)' })
  t.same(open.results, [['absent', null]])
  t.match(await open.verifier.verify('not-a-token'), { ok: false, kind: 'unauthorized', result: 'malformed' }, 'required: false never lets a bad token through')
})

t.test('every refusal, with its result', async (t) => {
  const { server, verifier } = await setup(t)
  const key = server.keys[0]
  if (key === undefined) throw new Error('no key')
  const payload = (more: JWTPayload = {}): JWTPayload => ({ iss: server.issuer, aud: 'llm-geofence', sub: 'u', ctry: 'US', exp: now() + 600, ...more })
  const unsigned = `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${base64url.encode(JSON.stringify(payload()))}.`
  // The classic confusion attack: HS256 with the issuer's public key as the shared secret.
  const hsWithPublicKey = await new SignJWT(payload()).setProtectedHeader({ alg: 'HS256', kid: key.kid }).sign(new TextEncoder().encode(JSON.stringify(key.publicJwk)))
  const jwe = await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(payload()))).setProtectedHeader({ alg: 'dir', enc: 'A256GCM' }).encrypt(new Uint8Array(32))
  const foreign = await signingKey('k1')
  const rows: Array<[string, string | string[], TokenResult, RegExp]> = [
    ['alg none', unsigned, 'disallowed_algorithm', /signed with "none", which is not accepted for its issuer \(RS256, ES256, EdDSA\)/],
    ['HS256 signed with the public key', hsWithPublicKey, 'disallowed_algorithm', /signed with "HS256"/],
    ['expired beyond the skew', await server.token({ ctry: 'US', exp: now() - 120 }), 'expired', /has expired/],
    ['nbf beyond the skew', await server.token({ ctry: 'US', nbf: now() + 120 }), 'not_yet_valid', /not valid yet/],
    ['no exp', await new SignJWT(payload({ exp: undefined })).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(key.privateKey), 'malformed', /has no expiry/],
    ['wrong iss', await server.token({ ctry: 'US', iss: 'https://login.other.example' }), 'wrong_issuer', /from an issuer the gateway does not accept/],
    ['no iss', await server.token({ ctry: 'US', iss: undefined }), 'wrong_issuer', /names no issuer/],
    ['wrong aud', await server.token({ ctry: 'US', aud: 'another-api' }), 'wrong_audience', /not meant for this gateway/],
    ['a key with a known kid that is not the issuer\'s', await server.token({ ctry: 'US' }, foreign), 'bad_signature', /signature its issuer's keys do not verify/],
    ['malformed: not a JWT', 'hello', 'malformed', /not a signed JWT/],
    ['malformed: three parts, not JSON', 'abc.def.ghi', 'malformed', /cannot be read/],
    ['malformed: encrypted (JWE)', jwe, 'malformed', /not a signed JWT/],
    ['malformed: Bearer prefix', `Bearer ${await server.token({ ctry: 'US' })}`, 'malformed', /not a signed JWT/],
    ['two headers', [await server.token({ ctry: 'US' }), await server.token({ ctry: 'US' })], 'duplicate', /sent more than once/],
    ['two headers joined by Node', `${await server.token({ ctry: 'US' })}, ${await server.token({ ctry: 'US' })}`, 'duplicate', /sent more than once/],
    ['country not a code nor in values', await server.token({ ctry: 'Hong Kong' }), 'unusable_claim', /the ctry claim "Hong Kong" is not an ISO 3166-1 country code, nor a value identity\.issuers\[0\]\.values maps/],
    ['country in lower case', await server.token({ ctry: 'hk' }), 'unusable_claim', /"hk" is not an ISO 3166-1/],
    ['no country claim', await server.token({}), 'unusable_claim', /has no ctry claim/],
    ['country not a string', await server.token({ ctry: ['HK'] }), 'unusable_claim', /ctry claim is not a string/],
    ['subdivision of another country', await server.token({ ctry: 'GB', work_subdivision: 'HK-HCW' }), 'unusable_claim', /"HK-HCW" is not an ISO 3166-2 subdivision code of GB/],
    ['entity not a name', await server.token({ ctry: 'GB', legal_entity: 42 }), 'unusable_claim', /legal_entity claim is not a name/],
    ['no subject', await server.token({ ctry: 'GB', sub: undefined }), 'unusable_claim', /has no subject \(sub\)/],
  ]
  for (const [name, value, result, reason] of rows) {
    const r: IdentityResult = await verifier.verify(value)
    t.match(r, { ok: false, kind: 'unauthorized', result, reason }, name)
  }
  t.equal(server.jwksFetches, 1, 'none of these fetched the keys again (a known kid, or refused before the keys)')
})

t.test('the clock skew admits tokens just expired or just not yet valid', async (t) => {
  const { server, verifier } = await setup(t, '  clock_skew: 60s\n')
  t.match(await verifier.verify(await server.token({ ctry: 'US', exp: now() - 30 })), { ok: true })
  t.match(await verifier.verify(await server.token({ ctry: 'US', nbf: now() + 30 })), { ok: true })
})

t.test('an issuer\'s tokens verify with its own keys only', async (t) => {
  const a = await keyServer(t, [await signingKey('a1')])
  const b = await keyServer(t, [await signingKey('b1')])
  const verifier = createIdentityVerifier(identityConfig(`  refetch_cooldown: 30s\n  issuers:\n${issuerYaml(a)}${issuerYaml(b)}`))
  t.teardown(() => { verifier.close() })
  await verifier.loaded()
  t.match(await verifier.verify(await a.token({ ctry: 'US' })), { ok: true, identity: { issuer: a.issuer } })
  t.match(await verifier.verify(await b.token({ ctry: 'US' })), { ok: true, identity: { issuer: b.issuer } })
  const bKey = b.keys[0]
  if (bKey === undefined) throw new Error('no key')
  // iss names A, signed by B's key (whose kid A does not publish): refetched once, then refused.
  t.match(await verifier.verify(await a.token({ ctry: 'US' }, bKey)), { ok: false, result: 'unknown_key', issuer: a.issuer })
  t.equal(a.jwksFetches, 2, 'A\'s keys were fetched once more for the unknown kid')
  t.equal(b.jwksFetches, 1, 'B\'s keys are never asked about A\'s tokens')
  // The same, with B's key under A's kid.
  t.match(await verifier.verify(await a.token({ ctry: 'US' }, { ...bKey, kid: 'a1' })), { ok: false, result: 'bad_signature' })
})
