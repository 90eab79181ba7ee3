// AWS Signature Version 4 for upstreams that take it (Bedrock). A client's own signature
// cannot survive a proxy: it covers the Host it called (the gateway), and a route rewrites the
// path. With `aws_sigv4` on the upstream, the gateway drops the client's signature and signs
// the request it forwards with credentials it holds (@smithy/signature-v4, as the AWS SDKs do).
import { Hash } from '@smithy/hash-node'
import { SignatureV4 } from '@smithy/signature-v4'
import type { SigV4Credentials } from '../config/upstreams.js'
import { CLIENT_SIGNATURE_HEADERS } from './credentials.js'


/** Headers covered by the gateway's signature besides host: the body's type, and AWS's own. */
const SIGNED = /^(?:content-type|x-amz-.*|x-amzn-.*)$/

export type Signer = (url: string, method: string, headers: Readonly<Record<string, string | string[] | undefined>>, body: Buffer | undefined) => Promise<Record<string, string>>

export function sigv4Signer (creds: SigV4Credentials): Signer {
  const signer = new SignatureV4({
    credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, ...(creds.sessionToken === undefined ? {} : { sessionToken: creds.sessionToken }) },
    region: creds.region,
    service: creds.service,
    sha256: Hash.bind(null, 'sha256'),
  })
  return async (url, method, headers, body) => {
    const u = new URL(url)
    const toSign: Record<string, string> = { host: u.host }
    for (const [name, value] of Object.entries(headers)) {
      if (typeof value === 'string' && SIGNED.test(name) && !CLIENT_SIGNATURE_HEADERS.includes(name)) toSign[name] = value
    }
    const query: Record<string, string | string[]> = {}
    for (const [k, v] of u.searchParams) {
      const prev = query[k]
      query[k] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [prev]), v]
    }
    const signed = await signer.sign({
      method,
      protocol: u.protocol,
      hostname: u.hostname,
      path: u.pathname,
      query,
      headers: toSign,
      body: body ?? '',
    })
    const out: Record<string, string> = {}
    for (const [name, value] of Object.entries(signed.headers)) {
      if (name !== 'host' && toSign[name] === undefined) out[name.toLowerCase()] = value
    }
    return out
  }
}
