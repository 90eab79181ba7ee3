// A real OpenID Provider (oidc-provider) on loopback, found through discovery, issuing JWT
// access tokens (resource indicators, client_credentials) that carry the end user's country:
// the verifier reads them as the bank's identity provider would issue them.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair } from 'jose'
import Provider, { errors } from 'oidc-provider'
import t, { type Test } from 'tap'
import { createIdentityVerifier } from '../../src/identity/verifier.js'
import { identityConfig } from '../support/key-server.js'

const RESOURCE = 'urn:llm-geofence'
/** Each client stands for an application whose users sit in one place. */
const CLIENTS: Record<string, { ctry: string, legal_entity: string }> = {
  'payments-hk': { ctry: 'HK', legal_entity: 'bank-hk' },
  'payments-us': { ctry: 'US', legal_entity: 'bank-us' },
  'site-coded': { ctry: 'HKG-IFC', legal_entity: 'bank-hk' },
  'nowhere': { ctry: 'Atlantis', legal_entity: 'bank-x' },
}

async function startProvider (t: Test): Promise<{ issuer: string, token: (client: string, resource?: string) => Promise<string> }> {
  const server: Server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => { resolve() }) }))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const es = await generateKeyPair('ES256', { extractable: true })
  const rs = await generateKeyPair('RS256', { extractable: true })
  const provider = new Provider(issuer, {
    clients: Object.keys(CLIENTS).map((id) => ({ client_id: id, client_secret: `${id}-secret`, grant_types: ['client_credentials'], redirect_uris: [], response_types: [], scope: 'llm' })),
    jwks: { keys: [{ ...(await exportJWK(es.privateKey)), kid: 'es-1', alg: 'ES256', use: 'sig' }, { ...(await exportJWK(rs.privateKey)), kid: 'rs-1', alg: 'RS256', use: 'sig' }] as never },
    scopes: ['llm'],
    ttl: { ClientCredentials: 300 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => {
          if (resource !== RESOURCE && resource !== 'urn:another-api') throw new errors.InvalidTarget()
          return { scope: 'llm', audience: resource === RESOURCE ? 'llm-geofence' : 'another-api', accessTokenFormat: 'jwt', accessTokenTTL: 300, jwt: { sign: { alg: 'ES256' } } }
        },
      },
    },
    extraTokenClaims: (_ctx, token) => {
      const client = 'clientId' in token && typeof token.clientId === 'string' ? CLIENTS[token.clientId] : undefined
      return client === undefined ? undefined : { ...client }
    },
  })
  provider.on('server_error', (_ctx, err) => { t.fail(String(err)) })
  server.on('request', provider.callback())
  const token = async (client: string, resource = RESOURCE): Promise<string> => {
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client}:${client}-secret`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'llm', resource }),
    })
    const body = await res.json() as { access_token?: string, error?: string, error_description?: string }
    if (body.access_token === undefined) throw new Error(`token endpoint: ${res.status} ${body.error ?? ''} ${body.error_description ?? ''}`)
    return body.access_token
  }
  return { issuer, token }
}

t.test('JWT access tokens from a real OpenID provider, found through discovery', async (t) => {
  const op = await startProvider(t)
  const verifier = createIdentityVerifier(identityConfig(`  issuers:
    - issuer: "${op.issuer}"
      discovery: true
      audiences: [llm-geofence]
      algorithms: [ES256]
      claims: { country: ctry, entity: legal_entity, subject: client_id }
      values: { HKG-IFC: HK }
`))
  t.teardown(() => { verifier.close() })
  await verifier.loaded()
  t.ok(verifier.ready(), 'keys loaded from the provider\'s jwks_uri')

  const hk = await op.token('payments-hk')
  t.match(await verifier.verify(hk), { ok: true, identity: { issuer: op.issuer, subject: 'payments-hk', country: 'HK', subdivisions: [], entity: 'bank-hk', sourceClaim: 'ctry', jti: /.+/ } })
  t.match(await verifier.verify(await op.token('payments-us')), { ok: true, identity: { country: 'US', entity: 'bank-us' } })
  t.match(await verifier.verify(await op.token('site-coded')), { ok: true, identity: { country: 'HK' } }, 'a site code mapped by values')
  t.match(await verifier.verify(await op.token('nowhere')), { ok: false, kind: 'unauthorized', result: 'unusable_claim', reason: /"Atlantis" is not an ISO 3166-1 country code/ })
  t.match(await verifier.verify(await op.token('payments-hk', 'urn:another-api')), { ok: false, result: 'wrong_audience' }, 'a token for another API is not accepted here')
  t.match(await verifier.verify(`${hk.slice(0, -4)}AAAA`), { ok: false, result: 'bad_signature' })
})

t.test('a provider whose algorithm the issuer does not list is refused before any key is used', async (t) => {
  const op = await startProvider(t)
  const verifier = createIdentityVerifier(identityConfig(`  issuers:
    - { issuer: "${op.issuer}", discovery: true, audiences: [llm-geofence], algorithms: [RS256], claims: { country: ctry } }
`))
  t.teardown(() => { verifier.close() })
  await verifier.loaded()
  t.match(await verifier.verify(await op.token('payments-hk')), { ok: false, result: 'disallowed_algorithm', reason: /signed with "ES256", which is not accepted for its issuer \(RS256\)/ })
})
