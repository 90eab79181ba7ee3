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
    const result = Array.isArray(hops) ? walk(hops, opts.trusted, name) : { ip: null, source: name, problem: hops.problem }
    // A header that cannot be read is the answer, with its own problem (not "different callers").
    if (result.ip === null) return result
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

/** Why a Forwarded header could not be read. */
export interface ForwardedProblem { problem: string }

/**
 * The `for=` value of each element of an RFC 7239 Forwarded header, left to right; null for an
 * element without one (the walk then stops there: a hop that hides its client is not skipped).
 *
 * The header is read strictly, to its last character, or not at all (a problem): a trusted
 * proxy appends its element after whatever the client sent (`, for=...`, or a second header
 * line, which Node joins with ", "), so a client's unterminated quote or stray text must not be
 * able to swallow or shift that element. The grammar (RFC 7239 section 4, over RFC 7230):
 *   Forwarded         = 1#forwarded-element          (OWS around the commas, nowhere else)
 *   forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
 *   forwarded-pair    = token "=" ( token / quoted-string )
 * A comma or semicolon inside a quoted-string is part of the value; `\x` stands for x. A
 * parameter named twice in one element (`for=a;for=b`) is unreadable too (section 4: MUST NOT).
 */
export function forwardedFor (header: string): Array<string | null> | ForwardedProblem {
  const bad = (what: string, at: number): ForwardedProblem => ({ problem: `forwarded cannot be parsed (RFC 7239): ${what} at offset ${at}` })
  const out: Array<string | null> = []
  const n = header.length
  let i = skipOws(header, 0)
  for (;;) {
    // one forwarded-element
    let forValue: string | null = null
    const names = new Set<string>()
    for (;;) {
      if (i < n && isTchar(header.charCodeAt(i))) {
        const nameStart = i
        while (i < n && isTchar(header.charCodeAt(i))) i++
        const name = header.slice(nameStart, i).toLowerCase()
        if (header.charCodeAt(i) !== EQUALS) return bad('a parameter without "="', i)
        i++
        let value: string
        if (header.charCodeAt(i) === DQUOTE) {
          const quoted = quotedString(header, i)
          if ('error' in quoted) return bad(quoted.error, quoted.at)
          value = quoted.value
          i = quoted.end
        } else {
          const valueStart = i
          while (i < n && isTchar(header.charCodeAt(i))) i++
          if (i === valueStart) return bad('a value that is neither a token nor a quoted-string', i)
          value = header.slice(valueStart, i)
        }
        if (names.has(name)) return bad('a parameter named twice in one element', nameStart)
        names.add(name)
        if (name === 'for') forValue = value
      }
      if (header.charCodeAt(i) !== SEMICOLON) break
      i++
    }
    out.push(forValue)
    i = skipOws(header, i)
    if (i >= n) return out
    if (header.charCodeAt(i) !== COMMA) return bad('a character that cannot follow an element', i)
    i = skipOws(header, i + 1)
  }
}

const HTAB = 0x09
const SP = 0x20
const DQUOTE = 0x22
const COMMA = 0x2c
const SEMICOLON = 0x3b
const EQUALS = 0x3d
const BACKSLASH = 0x5c

/** RFC 7230 tchar: "!#$%&'*+-.^_`|~", digits and letters. */
const TCHAR = new Uint8Array(128)
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TCHAR[c.charCodeAt(0)] = 1
const isTchar = (c: number): boolean => c < 128 && TCHAR[c] === 1

function skipOws (s: string, i: number): number {
  while (s.charCodeAt(i) === SP || s.charCodeAt(i) === HTAB) i++
  return i
}

/**
 * The quoted-string starting at `start` (a DQUOTE), unescaped, and the offset after its closing
 * DQUOTE; or what is wrong with it, and where. qdtext is HTAB, SP, VCHAR but DQUOTE and `\`,
 * and obs-text; a quoted-pair is `\` before HTAB, SP, VCHAR or obs-text.
 */
function quotedString (s: string, start: number): { value: string, end: number } | { error: string, at: number } {
  let value = ''
  let from = start + 1
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === DQUOTE) return { value: value + s.slice(from, i), end: i + 1 }
    if (c === BACKSLASH) {
      if (i + 1 >= s.length) break
      if (!isFieldText(s.charCodeAt(i + 1))) return { error: 'a character not allowed in a quoted-string', at: i + 1 }
      value += s.slice(from, i)
      from = i + 1
      i++ // the escaped character is taken as it is, a DQUOTE or `\` too
    } else if (!isFieldText(c)) {
      return { error: 'a character not allowed in a quoted-string', at: i }
    }
  }
  return { error: 'an unterminated quoted-string', at: start }
}

/** HTAB, SP, VCHAR (0x21-0x7E) or obs-text (0x80-0xFF): what a quoted-string may hold. */
const isFieldText = (c: number): boolean => c === HTAB || (c >= SP && c <= 0x7e) || (c >= 0x80 && c <= 0xff)
