// The client certificate a request came with, read from its TLS connection (HTTP/1.1 or
// HTTP/2) once per connection: whether it verified against server.tls.client_ca, its subject
// in RFC 4514 order (most specific first, the spelling `clients.NAME.certificate.subject`
// uses) and its URI subject alternative names (SPIFFE ids). Reads the wire, decides nothing.
import type { X509Certificate } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Http2ServerRequest } from 'node:http2'
import type { TLSSocket } from 'node:tls'
import { distinguishedName } from '../config/client-certificates.js'

export interface PeerCertificate {
  /** It chains to server.tls.client_ca (and is in date). */
  authorized: boolean
  /** Why it did not verify (OpenSSL's code), or null. */
  error: string | null
  /** Canonical (config/client-certificates.ts distinguishedName), or null if it does not parse. */
  subject: string | null
  sanUris: readonly string[]
}

const seen = new WeakMap<TLSSocket, PeerCertificate | null>()

/** The request's client certificate, or null: no TLS, or no certificate sent. */
export function peerCertificate (req: IncomingMessage | Http2ServerRequest): PeerCertificate | null {
  const socket = tlsSocketOf(req)
  if (socket === null) return null
  const known = seen.get(socket)
  if (known !== undefined) return known
  const cert = socket.getPeerX509Certificate()
  const peer = cert === undefined ? null : read(cert, socket)
  seen.set(socket, peer)
  return peer
}

/** The TLS socket under a request: its own (HTTP/1.1), or its HTTP/2 session's. */
function tlsSocketOf (req: IncomingMessage | Http2ServerRequest): TLSSocket | null {
  const socket = ('stream' in req && req.stream !== undefined ? req.stream.session?.socket : req.socket) as TLSSocket | undefined
  return socket !== undefined && typeof socket.getPeerX509Certificate === 'function' ? socket : null
}

function read (cert: X509Certificate, socket: TLSSocket): PeerCertificate {
  // Node prints the subject one RDN a line, least specific first, each value escaped as RFC 2253 does.
  const subject = distinguishedName(cert.subject.split('\n').reverse().join(','))
  return {
    authorized: socket.authorized,
    error: socket.authorized ? null : String(socket.authorizationError ?? 'not verified'),
    subject,
    sanUris: uris(cert.subjectAltName ?? ''),
  }
}

/** `URI:` entries of Node's subjectAltName text ("DNS:a, URI:spiffe://x"; quoted as JSON when it holds a comma or quote). */
function uris (san: string): string[] {
  const out: string[] = []
  for (const m of san.matchAll(/(?:^|, )URI:("(?:[^"\\]|\\.)*"|[^,]*)/g)) {
    const value = m[1] ?? ''
    try {
      out.push(value.startsWith('"') ? JSON.parse(value) as string : value)
    } catch { /* an entry that does not parse names nothing */ }
  }
  return out
}
