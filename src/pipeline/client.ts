// Stage client: which configured client sends the request. A client is known by a token (its
// sha256 in the config; the token is never forwarded) or by its TLS client certificate (the
// subject, or a URI subject alternative name, verified against server.tls.client_ca). With
// clients configured, a request that none of them names is a 401; a certificate and a token
// that name two different clients are refused too.
import { createHash } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import type { CertificateClient } from '../config/validate.js'
import { GatewayError } from '../errors.js'
import { requestKey } from '../proxy/credentials.js'
import type { PeerCertificate } from '../proxy/peer-certificate.js'

export interface ByCertificate {
  clients: readonly CertificateClient[]
  /** The request's client certificate, or null (none sent, or no TLS). */
  peer: PeerCertificate | null
}

/** The client's name; null when clients are not authenticated. A request no client is named by is a 401. */
export function authenticateClient (clients: ReadonlyMap<string, string>, headers: IncomingHttpHeaders, byCertificate: ByCertificate = { clients: [], peer: null }): string | null {
  const { peer } = byCertificate
  if (clients.size === 0 && byCertificate.clients.length === 0) return null
  let fromCertificate: string | undefined
  if (byCertificate.clients.length > 0 && peer !== null) {
    if (!peer.authorized) throw new GatewayError('unauthorized', `the client certificate was not accepted (${peer.error ?? 'not verified'})`)
    fromCertificate = byCertificate.clients.find((c) => (c.subject !== null && c.subject === peer.subject) || (c.sanUri !== null && peer.sanUris.includes(c.sanUri)))?.name
  }
  let fromToken: string | undefined
  if (clients.size > 0) {
    const token = requestKey(headers)
    fromToken = token === null ? undefined : clients.get(createHash('sha256').update(token).digest('hex'))
  }
  if (fromCertificate !== undefined && fromToken !== undefined && fromCertificate !== fromToken) {
    throw new GatewayError('unauthorized', `the client certificate names client "${fromCertificate}" and the token client "${fromToken}"`)
  }
  const name = fromCertificate ?? fromToken
  if (name === undefined) {
    const ways = [...(byCertificate.clients.length > 0 ? ['a client certificate'] : []), ...(clients.size > 0 ? ['a client token'] : [])]
    throw new GatewayError('unauthorized', `${ways.join(' or ')} the gateway knows is required${clients.size > 0 ? ' (Authorization: Bearer, x-api-key or api-key)' : ''}`)
  }
  return name
}
