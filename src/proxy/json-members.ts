// Byte offsets of the members of a JSON object, so that the gateway can see every key (JSON.parse
// keeps only the last of duplicates; other parsers keep the first) and rewrite one value while
// leaving every other byte of the body as it was.
// Input must already be valid JSON (JSON.parse succeeded): this scanner does not validate.
// Structural characters are ASCII and never occur inside a multi-byte UTF-8 sequence, so
// scanning bytes is exact.

export interface Member {
  key: string
  /** [start, end) of the value's bytes. */
  start: number
  end: number
}

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const COLON = 0x3a
const OPEN_OBJ = 0x7b
const CLOSE_OBJ = 0x7d
const OPEN_ARR = 0x5b
const CLOSE_ARR = 0x5d

function isWs (b: number | undefined): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09
}

function skipWs (buf: Buffer, i: number): number {
  while (isWs(buf[i])) i++
  return i
}

/**
 * Index just past the string that starts at i (buf[i] is the opening quote). The next quote is
 * found natively (Buffer.indexOf); it closes the string unless an odd run of backslashes
 * escapes it. Prompts are long strings: this keeps the scan far cheaper than JSON.parse.
 */
function endOfString (buf: Buffer, i: number): number {
  let q = buf.indexOf(QUOTE, i + 1)
  while (q !== -1) {
    let backslashes = 0
    for (let k = q - 1; k > i && buf[k] === BACKSLASH; k--) backslashes++
    if (backslashes % 2 === 0) return q + 1
    q = buf.indexOf(QUOTE, q + 1)
  }
  return buf.length
}

function endOfValue (buf: Buffer, i: number): number {
  const first = buf[i]
  if (first === QUOTE) return endOfString(buf, i)
  if (first === OPEN_OBJ || first === OPEN_ARR) {
    let depth = 0
    while (i < buf.length) {
      const b = buf[i]
      if (b === QUOTE) { i = endOfString(buf, i); continue }
      if (b === OPEN_OBJ || b === OPEN_ARR) depth++
      else if (b === CLOSE_OBJ || b === CLOSE_ARR) {
        depth--
        if (depth === 0) return i + 1
      }
      i++
    }
    return i
  }
  while (i < buf.length && buf[i] !== COMMA && buf[i] !== CLOSE_OBJ && buf[i] !== CLOSE_ARR && !isWs(buf[i])) i++
  return i
}

/** The top-level members of the JSON object in `buf`, in order, duplicates included. */
export function topLevelMembers (buf: Buffer): Member[] {
  const members: Member[] = []
  let i = skipWs(buf, 0)
  if (buf[i] !== OPEN_OBJ) return members
  i = skipWs(buf, i + 1)
  while (i < buf.length && buf[i] !== CLOSE_OBJ) {
    const keyStart = i
    i = endOfString(buf, i)
    const raw = buf.toString('utf8', keyStart, i)
    const key = raw.includes('\\') ? JSON.parse(raw) as string : raw.slice(1, -1)
    i = skipWs(buf, i)
    if (buf[i] !== COLON) break
    i = skipWs(buf, i + 1)
    const start = i
    i = endOfValue(buf, i)
    members.push({ key, start, end: i })
    i = skipWs(buf, i)
    if (buf[i] === COMMA) i = skipWs(buf, i + 1)
  }
  return members
}

/** The [start, end) of each element of the JSON array at `member` (start must be its `[`). */
export function arrayElements (buf: Buffer, member: Member): Member[] {
  const out: Member[] = []
  let i = skipWs(buf, member.start + 1)
  while (i < member.end && buf[i] !== CLOSE_ARR) {
    const start = i
    i = endOfValue(buf, i)
    out.push({ key: String(out.length), start, end: i })
    i = skipWs(buf, i)
    if (buf[i] === COMMA) i = skipWs(buf, i + 1)
  }
  return out
}

/**
 * How many object keys `buf` holds, duplicates included: every string followed by a colon.
 * Compared with the keys JSON.parse kept, it tells whether any object repeats a key.
 */
export function keyCount (buf: Buffer): number {
  let n = 0
  let i = buf.indexOf(QUOTE)
  while (i !== -1) {
    const end = endOfString(buf, i)
    if (buf[skipWs(buf, end)] === COLON) n++
    i = buf.indexOf(QUOTE, end)
  }
  return n
}

/**
 * The first key that appears twice in one object, and where that object is (`requests[0].params`,
 * "" for the top level); null when none does. Slow: for the message of a refusal.
 */
export function firstDuplicateKey (buf: Buffer, span: Member = { key: '', start: 0, end: buf.length }, at = ''): { at: string, key: string } | null {
  const first = buf[skipWs(buf, span.start)]
  if (first === OPEN_ARR) {
    for (const element of arrayElements(buf, { ...span, start: skipWs(buf, span.start) })) {
      const found = firstDuplicateKey(buf, element, `${at}[${element.key}]`)
      if (found !== null) return found
    }
    return null
  }
  if (first !== OPEN_OBJ) return null
  const seen = new Set<string>()
  const members = topLevelMembers(buf.subarray(span.start, span.end))
  for (const m of members) {
    if (seen.has(m.key)) return { at, key: m.key }
    seen.add(m.key)
  }
  for (const m of members) {
    const found = firstDuplicateKey(buf, { key: m.key, start: span.start + m.start, end: span.start + m.end }, at === '' ? m.key : `${at}.${m.key}`)
    if (found !== null) return found
  }
  return null
}

/** `buf` with the bytes [start, end) replaced by `value` as JSON. */
export function replaceValue (buf: Buffer, member: Member, value: unknown): Buffer {
  return Buffer.concat([buf.subarray(0, member.start), Buffer.from(JSON.stringify(value), 'utf8'), buf.subarray(member.end)])
}
