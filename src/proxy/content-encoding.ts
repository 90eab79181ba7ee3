// Request bodies in Content-Encoding gzip, deflate or br are decoded before the model is read,
// so a compressed body is decided on what it says, not waved through or refused. Decoding is
// a stream (zlib works in libuv's thread pool; the event loop only copies each chunk out), and
// it is stopped the moment its output crosses a bound: the endpoint's limit on the decoded
// size, or the expansion ratio (server.max_expansion_ratio) past LARGE_BODY_BYTES, so a small
// bomb costs neither time nor memory. Anything else, or a body that does not decode, is refused.
import { createBrotliDecompress, createGunzip, createInflate, type Gunzip } from 'node:zlib'
import { GatewayError } from '../errors.js'
import { BodyBuffer, LARGE_BODY_BYTES } from './body-buffer.js'

/** The size of each piece of output: each is copied on the event loop, so it stays small. */
const CHUNK = 64 * 1024

const DECODERS: Readonly<Record<string, () => Pick<Gunzip, 'on' | 'end' | 'destroy'>>> = {
  gzip: () => createGunzip({ chunkSize: CHUNK }),
  'x-gzip': () => createGunzip({ chunkSize: CHUNK }),
  deflate: () => createInflate({ chunkSize: CHUNK }),
  br: () => createBrotliDecompress({ chunkSize: CHUNK }),
}

export const DECODABLE: ReadonlySet<string> = new Set(Object.keys(DECODERS))

/** The codings of a Content-Encoding header, in the order they were applied; null when none. */
export function codings (header: string | undefined): string[] | null {
  if (header === undefined) return null
  const list = header.split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '' && c !== 'identity')
  return list.length === 0 ? null : list
}

export interface DecodeBounds {
  /** The endpoint's limit on the decoded body, and the setting that names it. */
  limit: number
  limitSetting: string
  /** server.max_expansion_ratio: past LARGE_BODY_BYTES, a body decodes to at most this many times its size on the wire. */
  ratio: number
  /** Called once when the decoded body grows past LARGE_BODY_BYTES; it throws to refuse it (no slot free). */
  onLarge: () => void
}

export async function decodeBody (body: Buffer, applied: readonly string[], bounds: DecodeBounds): Promise<Buffer> {
  const byRatio = Math.max(LARGE_BODY_BYTES, bounds.ratio * body.length)
  const bound = Math.min(bounds.limit, byRatio)
  const tooLarge = (): GatewayError => new GatewayError('too_large', bound < bounds.limit
    ? `the request body expands more than server.max_expansion_ratio (${bounds.ratio}) times its ${body.length} bytes when decoded; the gateway stopped decoding it`
    : `the decoded request body is larger than ${bounds.limitSetting}; the gateway stopped decoding it`)
  let out = body
  let large = false
  const grew = (): void => {
    if (large) return
    large = true
    bounds.onLarge()
  }
  for (const coding of [...applied].reverse()) {
    const decoder = DECODERS[coding]
    if (decoder === undefined) {
      throw new GatewayError('unsupported_media', `the request body is in Content-Encoding "${coding}", which the gateway does not decode (gzip, deflate and br are decoded)`)
    }
    out = await decodeOne(out, coding, decoder(), bound, tooLarge, grew)
  }
  return out
}

function decodeOne (input: Buffer, coding: string, decoder: Pick<Gunzip, 'on' | 'end' | 'destroy'>, bound: number, tooLarge: () => GatewayError, grew: () => void): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const out = new BodyBuffer(bound)
    let settled = false
    const fail = (err: unknown): void => {
      if (settled) return
      settled = true
      decoder.destroy()
      reject(err)
    }
    decoder.on('data', (chunk: Buffer) => {
      if (settled) return
      if (out.length + chunk.length > bound) {
        fail(tooLarge())
        return
      }
      out.push(chunk)
      if (out.large) {
        try {
          grew()
        } catch (err) {
          fail(err)
        }
      }
    })
    decoder.on('error', (err) => { fail(new GatewayError('invalid_request', `the request body does not decode as ${coding}`, { cause: err })) })
    decoder.on('end', () => {
      if (settled) return
      settled = true
      resolve(out.bytes())
    })
    decoder.end(input)
  })
}
