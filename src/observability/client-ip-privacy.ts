// How a caller's address appears in logs (logging.client_ip): in full; truncated to its /24
// (IPv4) or /48 (IPv6), as analytics tools anonymise; or as an HMAC-SHA256 under a secret key,
// stable, so that one caller's lines can be joined without the address being readable.
import { createHash, createHmac } from 'node:crypto'
import { truncateAddress } from '../geo/address.js'

export type ClientIpMode = 'full' | 'truncated' | 'hashed'

export function clientIpPresenter (mode: ClientIpMode, key: string | null): (ip: string | null) => string | null {
  if (mode === 'truncated') return (ip) => (ip === null ? null : truncateAddress(ip, 24, 48))
  if (mode === 'hashed') {
    if (key === null) throw new Error('client_ip: hashed needs a key')
    return (ip) => (ip === null ? null : `hmac:${createHmac('sha256', key).update(ip).digest('hex').slice(0, 32)}`)
  }
  return (ip) => ip
}

/**
 * How an identity token's subject appears in logs. It names a person, so it is never written as
 * it is unless `full` is set: `hashed` writes the same HMAC as for addresses (lines of one user
 * can be joined, the subject cannot be read), `truncated` a plain SHA-256 prefix.
 */
export function subjectPresenter (mode: ClientIpMode, key: string | null): (subject: string) => string {
  if (mode === 'full') return (subject) => subject
  if (mode === 'hashed' && key !== null) return (subject) => `hmac:${createHmac('sha256', key).update(subject).digest('hex').slice(0, 32)}`
  return (subject) => `sha256:${createHash('sha256').update(subject).digest('hex').slice(0, 32)}`
}
