// Who is the caller? The socket peer, unless that peer is a configured proxy: then the
// forwarding headers are walked from the right, skipping trusted hops, and the first untrusted
// address is the caller. The leftmost entries are whatever the client wrote, so they are only
// reached when every hop to their right is trusted.
import type { IncomingHttpHeaders } from 'node:http'
import { canonicalAddress, type AddressSet } from './address.js'

export type IpSource = 'socket' | 'x-forwarded-for' | 'forwarded'
export type ForwardingHeader = 'x-forwarded-for' | 'forwarded'

export interface ClientAddress {
  /** Canonical address, or null when it cannot be known (the location is then unknown). */
  ip: string | null
  source: IpSource
  /** Why `ip` is null. */
  problem?: string
}

export interface ClientIpOptions {
  trusted: AddressSet
  headers: readonly ForwardingHeader[]
}

export function resolveClientIp (peer: string | undefined, headers: IncomingHttpHeaders, opts: ClientIpOptions): ClientAddress {
  const socketIp = peer === undefined ? null : canonicalAddress(peer)
  if (socketIp === null) return { ip: null, source: 'socket', problem: 'the socket peer address cannot be read' }
  if (!opts.trusted.has(socketIp)) return { ip: socketIp, source: 'socket' }

  let found: ClientAddress | undefined
  for (const name of opts.headers) {
    const value = headers[name]
    if (value === undefined) continue
    const text = Array.isArray(value) ? value.join(',') : value
    const hops = name === 'forwarded' ? forwardedFor(text) : text.split(',')
    const result = walk(hops, opts.trusted, name)
    if (found === undefined) {
      found = result
    } else if (found.ip !== result.ip) {
      // A trusted proxy writes one of the two; the other may be the client's own invention.
      return { ip: null, source: found.source, problem: 'X-Forwarded-For and Forwarded name different callers' }
    }
  }
  return found ?? { ip: socketIp, source: 'socket' }
}

function walk (hops: ReadonlyArray<string | null>, trusted: AddressSet, source: ForwardingHeader): ClientAddress {
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]
    const ip = hop === null || hop === undefined ? null : canonicalAddress(hop)
    if (ip === null) {
      return { ip: null, source, problem: `${source} holds an entry that is not an IP address` }
    }
    if (i > 0 && trusted.has(ip)) continue
    return { ip, source }
  }
  return { ip: null, source, problem: `${source} is empty` }
}

/**
 * The `for=` value of each element of an RFC 7239 Forwarded header, left to right; null for an
 * element without one (the walk then stops there: a hop that hides its client is not skipped).
 */
export function forwardedFor (header: string): Array<string | null> {
  const out: Array<string | null> = []
  let value: string | null = null
  let i = 0
  const n = header.length
  while (i < n) {
    // one pair: token "=" ( token / quoted-string )
    while (i < n && (header[i] === ' ' || header[i] === '\t' || header[i] === ';')) i++
    if (i >= n) break
    if (header[i] === ',') { out.push(value); value = null; i++; continue }
    const eq = header.indexOf('=', i)
    if (eq === -1) return [...out, null]
    const key = header.slice(i, eq).trim().toLowerCase()
    i = eq + 1
    let v = ''
    if (header[i] === '"') {
      i++
      while (i < n && header[i] !== '"') {
        if (header[i] === '\\') i++
        v += header[i] ?? ''
        i++
      }
      if (i >= n) return [...out, null] // unterminated quoted-string
      i++
    } else {
      while (i < n && header[i] !== ';' && header[i] !== ',') v += header[i++]
      v = v.trim()
    }
    if (key === 'for') value = value === null ? v : '' // a repeated for= makes the element unreadable
  }
  out.push(value)
  return out
}
