// A small MaxMind DB writer for test fixtures (format: maxmind.github.io/MaxMind-DB/), so that
// the gateway is tested against real .mmdb files of every record schema it claims to read.
// IPv6 tree, 32-bit records, IPv4 networks stored at ::a.b.c.d/96+n, no data pointers.
import { isIPv4 } from 'node:net'

/** A uint16 field (metadata's record_size, ip_version, format versions); plain numbers are uint32. */
export class Uint16 { constructor (readonly value: number) {} }

export type MmdbValue = string | number | boolean | bigint | Uint16 | MmdbValue[] | { [key: string]: MmdbValue }

export interface MmdbEntry {
  cidr: string
  data: { [key: string]: MmdbValue }
}

export interface MmdbOptions {
  databaseType: string
  buildEpoch?: number
  description?: string
}

interface TreeNode { children: [Child, Child] }
type Child = TreeNode | { data: number } | null

export function buildMmdb (entries: readonly MmdbEntry[], opts: MmdbOptions): Buffer {
  const dataChunks: Buffer[] = []
  const dataOffsets = new Map<string, number>()
  let dataSize = 0
  const dataIndex = (data: MmdbEntry['data']): number => {
    const key = JSON.stringify(data, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))
    let offset = dataOffsets.get(key)
    if (offset === undefined) {
      const bytes = encode(data)
      offset = dataSize
      dataOffsets.set(key, offset)
      dataChunks.push(bytes)
      dataSize += bytes.length
    }
    return offset
  }

  const root: TreeNode = { children: [null, null] }
  const parsed = entries.map((e) => ({ ...parseNetwork(e.cidr), data: e.data }))
  parsed.sort((a, b) => a.bits - b.bits) // less specific first, so more specific ones split them
  for (const { address, bits, data } of parsed) {
    const leaf = { data: dataIndex(data) }
    let node = root
    for (let depth = 0; depth < bits; depth++) {
      const bit = bitAt(address, depth)
      if (depth === bits - 1) {
        node.children[bit] = leaf
        break
      }
      const next = node.children[bit]
      if (next === null || next === undefined || 'data' in next) {
        const split: TreeNode = { children: [next ?? null, next ?? null] }
        node.children[bit] = split
        node = split
      } else {
        node = next
      }
    }
  }

  // Number the nodes breadth first, then write each as two 32-bit records.
  const order: TreeNode[] = [root]
  const number = new Map<TreeNode, number>([[root, 0]])
  for (let i = 0; i < order.length; i++) {
    for (const child of order[i]?.children ?? []) {
      if (child !== null && !('data' in child)) {
        number.set(child, order.length)
        order.push(child)
      }
    }
  }
  const nodeCount = order.length
  const tree = Buffer.alloc(nodeCount * 8)
  order.forEach((node, i) => {
    node.children.forEach((child, side) => {
      const value = child === null ? nodeCount : 'data' in child ? nodeCount + 16 + child.data : number.get(child) ?? nodeCount
      tree.writeUInt32BE(value, i * 8 + side * 4)
    })
  })

  const metadata = encode({
    node_count: nodeCount,
    record_size: new Uint16(32),
    ip_version: new Uint16(6),
    database_type: opts.databaseType,
    languages: ['en'],
    binary_format_major_version: new Uint16(2),
    binary_format_minor_version: new Uint16(0),
    build_epoch: BigInt(opts.buildEpoch ?? 1_763_000_000),
    description: { en: opts.description ?? 'llm-geofence test fixture' },
  })
  return Buffer.concat([tree, Buffer.alloc(16), ...dataChunks, Buffer.from('\xab\xcd\xefMaxMind.com', 'latin1'), metadata])
}

function parseNetwork (cidr: string): { address: Uint8Array, bits: number } {
  const [addr = '', bitsText = ''] = cidr.split('/')
  const bytes = new Uint8Array(16)
  if (isIPv4(addr)) {
    addr.split('.').forEach((o, i) => { bytes[12 + i] = Number(o) })
    return { address: bytes, bits: 96 + Number(bitsText) }
  }
  const [head = '', tail = ''] = addr.split('::')
  const h = head === '' ? [] : head.split(':')
  const t = tail === '' ? [] : tail.split(':')
  const words = [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t]
  words.forEach((w, i) => { const v = parseInt(w, 16); bytes[i * 2] = v >> 8; bytes[i * 2 + 1] = v & 0xff })
  return { address: bytes, bits: Number(bitsText) }
}

function bitAt (address: Uint8Array, i: number): 0 | 1 {
  return (((address[i >> 3] ?? 0) >> (7 - (i & 7))) & 1) as 0 | 1
}

// Data section encoding: a control byte (type, size), extended types in a second byte.
function control (type: number, size: number): Buffer {
  let sizeBits: number
  let extra: Buffer
  if (size < 29) { sizeBits = size; extra = Buffer.alloc(0) } else if (size < 285) { sizeBits = 29; extra = Buffer.from([size - 29]) } else if (size < 65_821) {
    sizeBits = 30; extra = Buffer.alloc(2); extra.writeUInt16BE(size - 285)
  } else { sizeBits = 31; extra = Buffer.alloc(3); extra.writeUIntBE(size - 65_821, 0, 3) }
  const head = type <= 7 ? Buffer.from([(type << 5) | sizeBits]) : Buffer.from([sizeBits, type - 7])
  return Buffer.concat([head, extra])
}

function uint (type: number, value: bigint): Buffer {
  const bytes: number[] = []
  for (let v = value; v > 0n; v >>= 8n) bytes.unshift(Number(v & 0xffn))
  return Buffer.concat([control(type, bytes.length), Buffer.from(bytes)])
}

function encode (value: MmdbValue): Buffer {
  if (typeof value === 'string') {
    const s = Buffer.from(value, 'utf8')
    return Buffer.concat([control(2, s.length), s])
  }
  if (typeof value === 'boolean') return control(14, value ? 1 : 0)
  if (typeof value === 'bigint') return uint(9, value)
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= 0 && value < 2 ** 32) return uint(6, BigInt(value))
    const d = Buffer.alloc(8)
    d.writeDoubleBE(value)
    return Buffer.concat([control(3, 8), d])
  }
  if (Array.isArray(value)) return Buffer.concat([control(11, value.length), ...value.map(encode)])
  if (value instanceof Uint16) return uint(5, BigInt(value.value))
  const keys = Object.keys(value)
  return Buffer.concat([control(7, keys.length), ...keys.flatMap((k) => [encode(k), encode(value[k] as MmdbValue)])])
}
