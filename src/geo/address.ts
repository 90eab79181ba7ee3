// IP address text -> one canonical spelling, and whether it is a special-purpose address.
// Everything downstream (trust checks, the LRU, the databases) sees only canonical text:
// IPv4 dotted quads, and IPv6 in RFC 5952 form (lower case, longest zero run compressed).
// Node's net module says what is an address and checks ranges (BlockList); ipaddr.js reads and
// writes IPv6 and masks prefixes.
import { BlockList, isIP, isIPv4, isIPv6 } from 'node:net'
import ipaddr from 'ipaddr.js'

/**
 * The canonical form of an address as it may appear in a socket, X-Forwarded-For or Forwarded:
 * brackets, a port and an IPv6 zone id are removed, IPv4-mapped IPv6 (`::ffff:1.2.3.4`, which
 * Node reports for IPv4 peers on a dual-stack listener) becomes IPv4. Null when it is not an address.
 */
export function canonicalAddress (text: string): string | null {
  let s = text.trim()
  if (s.startsWith('[')) {
    const end = s.indexOf(']')
    if (end < 0) return null
    const rest = s.slice(end + 1)
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return null
    s = s.slice(1, end)
    if (!s.includes(':')) return null // brackets are for IPv6 only
  } else if (s.indexOf(':') !== -1 && s.indexOf(':') === s.lastIndexOf(':')) {
    // one colon: IPv4 with a port (an IPv6 address has at least two)
    const [host, port] = s.split(':') as [string, string]
    if (!/^\d{1,5}$/.test(port)) return null
    s = host
  }
  // Node's isIPv4/isIPv6 decide what is an address (ipaddr.js alone would also take `0x7f.1`,
  // `01.2.3.4` or `2130706433`), and they are the fast path: a valid dotted quad is already
  // canonical, and so is the one inside `::ffff:a.b.c.d`, which is how a dual-stack listener
  // reports every IPv4 peer. Those two cases, nearly every call, never reach ipaddr.js, which
  // takes about 2 us to parse and format an IPv6 address (Node's isIPv4 about 30 ns).
  if (isIPv4(s)) return s
  const zone = s.indexOf('%')
  if (zone !== -1) s = s.slice(0, zone)
  if (s.length > 7 && s.slice(0, 7).toLowerCase() === '::ffff:' && isIPv4(s.slice(7))) return s.slice(7)
  if (!isIPv6(s)) return null
  const addr = ipaddr.IPv6.parse(s)
  // ipaddr.js reads the deprecated IPv4-compatible `::1.2.3.4` as IPv4-mapped; it is ::102:304
  // (RFC 4291 2.5.5.1), as Node reads it, and special-purpose. Mapped, `::10.0.0.1` written in a
  // forwarding header would pass for a trusted 10.0.0.0/8 hop.
  if (addr.parts[5] === 0xffff && s.lastIndexOf(':') === 1 && s.includes('.')) addr.parts[5] = 0
  return addr.isIPv4MappedAddress() ? addr.toIPv4Address().toString() : addr.toRFC5952String()
}

/** The network part of a canonical address, as CIDR text: `203.198.0.0/24`, `2001:db8:1::/48`. */
export function truncateAddress (canonical: string, v4Bits: number, v6Bits: number): string {
  if (!canonical.includes(':')) return `${ipaddr.IPv4.networkAddressFromCIDR(`${canonical}/${v4Bits}`).toString()}/${v4Bits}`
  return `${ipaddr.IPv6.networkAddressFromCIDR(`${canonical}/${v6Bits}`).toRFC5952String()}/${v6Bits}`
}

/** 4 or 6 for canonical text (the caller has already canonicalised it). */
export function family (canonical: string): 'ipv4' | 'ipv6' {
  return canonical.includes(':') ? 'ipv6' : 'ipv4'
}

// IANA IPv4 and IPv6 Special-Purpose Address Registries (2026 copies), plus multicast and the
// reserved 240/4. None of these is a place on the public internet, whatever a database says.
const SPECIAL_V4: ReadonlyArray<[string, number]> = [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.31.196.0', 24], ['192.52.193.0', 24],
  ['192.88.99.0', 24], ['192.168.0.0', 16], ['192.175.48.0', 24], ['198.18.0.0', 15],
  ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
]
// Outside 2000::/3 nothing is global unicast; inside it, these blocks are special-purpose.
const SPECIAL_V6: ReadonlyArray<[string, number]> = [
  ['::', 3], ['4000::', 2], ['8000::', 1],
  ['2001::', 23], ['2001:db8::', 32], ['2002::', 16], ['2620:4f:8000::', 48], ['3fff::', 20],
]

/** True for private, loopback, link-local, CGNAT, documentation, multicast and other special ranges. */
export function isSpecialPurpose (canonical: string): boolean {
  return SPECIAL.has(canonical)
}

/** Parses `10.0.0.0/8`, `::1/128` or a bare address into [canonical network, prefix bits]. */
export function parseCidr (text: string): [string, number] | null {
  const slash = text.indexOf('/')
  const addrText = (slash === -1 ? text : text.slice(0, slash)).trim()
  if (isIP(addrText) === 0 || addrText.includes('%')) return null
  const addr = canonicalAddress(addrText)
  if (addr === null) return null
  const max = family(addr) === 'ipv4' ? 32 : 128
  if (slash === -1) return [addr, max]
  const bitsText = text.slice(slash + 1)
  if (!/^\d{1,3}$/.test(bitsText)) return null
  const bits = Number(bitsText)
  return bits <= max ? [addr, bits] : null
}

const MEMO_LIMIT = 4096

/**
 * A set of CIDRs, checked in one native call. One BlockList per family: a single BlockList
 * matches IPv4 addresses against IPv6 ranges through their mapped form (`::/3` would hold 1.2.3.4).
 */
export class AddressSet {
  readonly #v4 = new BlockList()
  readonly #v6 = new BlockList()
  /** BlockList.check builds a SocketAddress per call; callers repeat (peers, proxies): memoise. */
  readonly #seen = new Map<string, boolean>()
  constructor (cidrs: Iterable<string | readonly [string, number]>) {
    for (const cidr of cidrs) {
      const parsed = typeof cidr === 'string' ? parseCidr(cidr) : cidr
      if (parsed === null) throw new Error(`not a CIDR: ${String(cidr)}`)
      const [net, bits] = parsed
      if (family(net) === 'ipv4') this.#v4.addSubnet(net, bits, 'ipv4')
      else this.#v6.addSubnet(net, bits, 'ipv6')
    }
  }

  /** `canonical` must come from canonicalAddress(). */
  has (canonical: string): boolean {
    const known = this.#seen.get(canonical)
    if (known !== undefined) return known
    const result = canonical.includes(':') ? this.#v6.check(canonical, 'ipv6') : this.#v4.check(canonical, 'ipv4')
    if (this.#seen.size >= MEMO_LIMIT) this.#seen.clear()
    this.#seen.set(canonical, result)
    return result
  }
}

const SPECIAL = new AddressSet([...SPECIAL_V4, ...SPECIAL_V6])
