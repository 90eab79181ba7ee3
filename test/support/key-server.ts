// A loopback identity provider's key endpoints for the verifier's tests: OpenID discovery and
// a JSON Web Key Set that a test can rotate or take down, counting every fetch; and tokens
// minted with jose against its keys.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose'
import type { Test } from 'tap'
import { parseConfig } from '../../src/config/load.js'
import type { IdentityConfig } from '../../src/config/identity.js'

export interface SigningKey {
  kid: string
  alg: string
  privateKey: CryptoKey
  publicJwk: JWK
}

export async function signingKey (kid: string, alg = 'ES256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } }
}

export interface KeyServer {
  /** http://127.0.0.1:PORT, also the issuer its discovery document names. */
  issuer: string
  jwksUri: string
  /** The keys it publishes (replace to rotate). */
  keys: SigningKey[]
  /** While true, every endpoint answers 503. */
  down: boolean
  /** Held back before each key set answer, to let concurrent callers pile up. */
  delayMs: number
  jwksFetches: number
  discoveryFetches: number
  /** A signed token: iss, aud llm-geofence, exp in 10 minutes, unless `claims` says otherwise. */
  token: (claims?: JWTPayload, key?: SigningKey) => Promise<string>
}

export async function keyServer (t: Test, keys: SigningKey[]): Promise<KeyServer> {
  let server: Server | null = null
  const state: KeyServer = {
    issuer: '',
    jwksUri: '',
    keys,
    down: false,
    delayMs: 0,
    jwksFetches: 0,
    discoveryFetches: 0,
    token: async (claims = {}, key = state.keys[0]) => {
      if (key === undefined) throw new Error('no key')
      const now = Math.floor(Date.now() / 1000)
      return new SignJWT({ iss: state.issuer, aud: 'llm-geofence', sub: 'user-1', exp: now + 600, iat: now, ...claims })
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
        .sign(key.privateKey)
    },
  }
  server = createServer((req, res) => {
    void (async () => {
      if (req.url === '/.well-known/openid-configuration') state.discoveryFetches++
      if (req.url === '/jwks') {
        state.jwksFetches++
        if (state.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, state.delayMs))
      }
      if (state.down) {
        res.writeHead(503).end()
        return
      }
      const body = req.url === '/.well-known/openid-configuration'
        ? { issuer: state.issuer, jwks_uri: state.jwksUri, token_endpoint: `${state.issuer}/token` }
        : req.url === '/jwks' ? { keys: state.keys.map((k) => k.publicJwk) } : null
      if (body === null) {
        res.writeHead(404).end()
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body))
    })()
  })
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server?.closeAllConnections(); server?.close(() => { resolve() }) }))
  const { port } = server.address() as AddressInfo
  state.issuer = `http://127.0.0.1:${port}`
  state.jwksUri = `${state.issuer}/jwks`
  return state
}

/** The identity section of a minimal config, through the same loader as a config file. */
export function identityConfig (identityYaml: string): IdentityConfig {
  const config = parseConfig('identity.yaml', Buffer.from(`upstreams:
  anthropic: { url: "http://127.0.0.1:1", dialect: anthropic }
policy:
  rules: []
identity:
${identityYaml}`), {})
  if (config.identity === null) throw new Error('no identity section')
  return config.identity
}

/** One issuer's YAML entry (indented for identity.issuers). */
export function issuerYaml (server: KeyServer, more = ''): string {
  return `    - issuer: "${server.issuer}"
      discovery: true
      audiences: [llm-geofence]
      claims: { country: ctry, subdivision: work_subdivision, entity: legal_entity }
      values: { HKG-IFC: HK, KYIV-HQ: UA-30 }
${more}`
}
