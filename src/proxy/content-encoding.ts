// Request bodies in Content-Encoding gzip, deflate or br are decoded before the model is read,
// so a compressed body is decided on what it says, not waved through or refused. Decoding is
// bounded by server.body_limit on the decoded size (a small bomb cannot expand without limit).
// Anything else, or a body that does not decode, is refused.
import { promisify } from 'node:util'
import { brotliDecompress, gunzip, inflate } from 'node:zlib'
import { GatewayError } from '../errors.js'

const DECODERS: Readonly<Record<string, (buf: Buffer, opts: { maxOutputLength: number }) => Promise<Buffer>>> = {
  gzip: promisify(gunzip),
  'x-gzip': promisify(gunzip),
  deflate: promisify(inflate),
  br: promisify(brotliDecompress),
}

export const DECODABLE: ReadonlySet<string> = new Set(Object.keys(DECODERS))

/** The codings of a Content-Encoding header, in the order they were applied; null when none. */
export function codings (header: string | undefined): string[] | null {
  if (header === undefined) return null
  const list = header.split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '' && c !== 'identity')
  return list.length === 0 ? null : list
}

export async function decodeBody (body: Buffer, applied: readonly string[], limit: number): Promise<Buffer> {
  let out = body
  for (const coding of [...applied].reverse()) {
    const decode = DECODERS[coding]
    if (decode === undefined) {
      throw new GatewayError('unsupported_media', `the request body is in Content-Encoding "${coding}", which the gateway does not decode (gzip, deflate and br are decoded)`)
    }
    try {
      out = await decode(out, { maxOutputLength: limit })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
        throw new GatewayError('too_large', 'the decoded request body is larger than server.body_limit', { cause: err })
      }
      throw new GatewayError('invalid_request', `the request body does not decode as ${coding}`, { cause: err })
    }
  }
  return out
}
