// IP address text -> one canonical spelling, and whether it is a special-purpose address.
// Everything downstream (trust checks, the LRU, the databases) sees only canonical text:
// IPv4 dotted quads, and IPv6 in RFC 5952 form (lower case, longest zero run compressed).
import { BlockList, isIP, isIPv4, isIPv6 } from 'node:net'

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
  if (isIPv4(s)) return s
  const zone = s.indexOf('%')
  if (zone !== -1) s = s.slice(0, zone)
  if (!isIPv6(s)) return null
  const words = ipv6Words(s)
  if (words === null) return null
  if (words[0] === 0 && words[1] === 0 && words[2] === 0 && words[3] === 0 && words[4] === 0 && words[5] === 0xffff) {
    const hi = words[6] ?? 0
    const lo = words[7] ?? 0
    return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`
  }
  return formatIpv6(words)
}

/** The eight 16-bit words of a valid IPv6 address (embedded IPv4 tail allowed). */
function ipv6Words (s: string): number[] | null {
  let text = s.toLowerCase()
  const tail: number[] = []
  const lastColon = text.lastIndexOf(':')
  const maybeV4 = text.slice(lastColon + 1)
  if (maybeV4.includes('.')) {
    if (!isIPv4(maybeV4)) return null
    const o = maybeV4.split('.').map(Number)
    tail.push(((o[0] ?? 0) << 8) | (o[1] ?? 0), ((o[2] ?? 0) << 8) | (o[3] ?? 0))
    // keep a "::" that ends right before the IPv4 tail, drop a single ":"
    text = text[lastColon - 1] === ':' ? text.slice(0, lastColon + 1) : text.slice(0, lastColon)
  }
  const want = 8 - tail.length
  const halves = text.split('::')
  if (halves.length > 2) return null
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((h) => parseInt(h, 16)))
  const head = parse(halves[0] ?? '')
  const rest = halves.length === 2 ? parse(halves[1] ?? '') : []
  const fill = halves.length === 2 ? want - head.length - rest.length : 0
  if (fill < 0 || (halves.length === 1 && head.length !== want)) return null
  const words = [...head, ...new Array<number>(fill).fill(0), ...rest, ...tail]
  return words.length === 8 && words.every((w) => w >= 0 && w <= 0xffff) ? words : null
}

/** RFC 5952 text for eight words: lower-case hex, the longest run (>= 2) of zero words as `::`. */
function formatIpv6 (words: number[]): string {
  let bestStart = -1
  let bestLen = 1
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && words[j] === 0) j++
    if (j - i > bestLen) { bestStart = i; bestLen = j - i }
    i = j
  }
  const hex = words.map((w) => w.toString(16))
  if (bestStart < 0) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`
}

/** The network part of a canonical address, as CIDR text: `203.198.0.0/24`, `2001:db8:1::/48`. */
export function truncateAddress (canonical: string, v4Bits: number, v6Bits: number): string {
  if (!canonical.includes(':')) {
    const n = canonical.split('.').reduce((acc, o) => acc * 256 + Number(o), 0)
    const masked = v4Bits === 0 ? 0 : Math.floor(n / 2 ** (32 - v4Bits)) * 2 ** (32 - v4Bits)
    return `${[24, 16, 8, 0].map((shift) => Math.floor(masked / 2 ** shift) % 256).join('.')}/${v4Bits}`
  }
  const words = ipv6Words(canonical) ?? []
  const kept = words.map((w, i) => {
    const bitsLeft = v6Bits - i * 16
    if (bitsLeft >= 16) return w
    if (bitsLeft <= 0) return 0
    return w & (0xffff << (16 - bitsLeft)) & 0xffff
  })
  return `${formatIpv6(kept)}/${v6Bits}`
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
